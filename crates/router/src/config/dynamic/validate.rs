//! Validation across files: unique names, references resolved (`name` or `name@provider`),
//! no service cycles, and refusals carried to every router they affect: a router whose
//! middleware, service or own settings betaroute does not implement is refused by name, never
//! served without them.

use std::collections::{BTreeMap, BTreeSet};

use super::drafts::{MiddlewareDraft, Named, Part, Ref, RouterDraft, ServiceDraft};
use super::spec::{RouterSpec, RoutingConfig};
use crate::config::read::{Diagnostic, Severity};
use crate::config::source::Source;

/// What a reference names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// An object of this provider, by its bare name.
    Here(&'a str),
    /// Traefik's own (`api@internal`, `noop@internal`...).
    Internal(&'a str),
    /// Another provider betaroute does not run.
    Elsewhere(&'a str, &'a str),
}

fn target<'a>(name: &'a str, provider: &str) -> Target<'a> {
    match name.rsplit_once('@') {
        None => Target::Here(name),
        Some((n, p)) if p.eq_ignore_ascii_case(provider) => Target::Here(n),
        Some((n, "internal")) => Target::Internal(n),
        Some((n, p)) => Target::Elsewhere(n, p),
    }
}

struct Diags<'d> {
    out: &'d mut Vec<Diagnostic>,
}

impl Diags<'_> {
    fn push(&mut self, severity: Severity, src: &Source, at: usize, message: String) {
        self.out.push(Diagnostic {
            severity,
            error: src.error(at, message),
        });
    }
}

/// Names are unique across files: a second definition is an error at its place.
fn add_unique<'s, T: Named>(
    map: &mut BTreeMap<String, (&'s Source, T)>,
    kind: &str,
    src: &'s Source,
    item: T,
    d: &mut Diags,
) {
    if let Some((first, _)) = map.get(item.name()) {
        let message = format!(
            "{kind} {:?} is defined more than once (also in {})",
            item.name(),
            first.file
        );
        d.push(Severity::Error, src, item.at(), message);
        return;
    }
    map.insert(item.name().to_owned(), (src, item));
}

pub fn merge(
    parts: Vec<(&Source, Part)>,
    provider: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> RoutingConfig {
    let mut d = Diags { out: diagnostics };
    let mut services: BTreeMap<String, (&Source, ServiceDraft)> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, (&Source, MiddlewareDraft)> = BTreeMap::new();
    let mut routers: BTreeMap<String, (&Source, RouterDraft)> = BTreeMap::new();
    for (src, part) in parts {
        for s in part.services {
            add_unique(&mut services, "service", src, s, &mut d);
        }
        for m in part.middlewares {
            add_unique(&mut middlewares, "middleware", src, m, &mut d);
        }
        for r in part.routers {
            add_unique(&mut routers, "router", src, r, &mut d);
        }
    }

    let refused = service_refusals(&services, provider, &mut d);
    let mut used_middlewares = BTreeSet::new();
    let mut out = RoutingConfig::default();
    for (_, (src, r)) in routers {
        let mut reasons = r.refused.clone();
        let service = r.service.as_ref().and_then(|s| {
            router_service(
                src,
                &r.name,
                s,
                provider,
                &services,
                &refused,
                &mut reasons,
                &mut d,
            )
        });
        for m in &r.middlewares {
            let why = match target(&m.name, provider) {
                Target::Here(n) => match middlewares.get(n) {
                    Some((_, def)) => {
                        used_middlewares.insert(n.to_owned());
                        format!(
                            "router {} uses middleware {} ({}), not supported yet: the router is not served",
                            r.name, m.name, def.kind
                        )
                    }
                    None => {
                        d.push(
                            Severity::Error,
                            src,
                            m.at,
                            format!("router {}: middleware {:?} does not exist", r.name, m.name),
                        );
                        continue;
                    }
                },
                Target::Internal(_) => format!(
                    "router {} uses middleware {}, one of Traefik's internal middlewares, not provided by betaroute: the router is not served",
                    r.name, m.name
                ),
                Target::Elsewhere(_, p) => format!(
                    "router {} uses middleware {} from provider {p:?}, which betaroute does not run: the router is not served",
                    r.name, m.name
                ),
            };
            d.push(Severity::Refused, src, m.at, why.clone());
            reasons.push(why);
        }
        let (Some(rule), Some(service)) = (r.rule, service) else {
            continue;
        };
        out.routers.push(RouterSpec {
            name: r.name,
            rule,
            priority: r.priority,
            service,
            entry_points: r.entry_points,
            refused: (!reasons.is_empty()).then(|| reasons.join("; ")),
        });
    }
    for (name, (src, m)) in &middlewares {
        if !used_middlewares.contains(name) {
            d.push(
                Severity::Warning,
                src,
                m.at,
                format!(
                    "middleware {name} ({}) is not supported yet; no router uses it",
                    m.kind
                ),
            );
        }
    }
    for (name, (_, s)) in services {
        if !refused.contains_key(&name) {
            if let Some(spec) = s.spec {
                out.services.insert(name, spec);
            }
        }
    }
    out
}

/// The service a router sends to (its bare name), or `None` with the reason recorded.
#[allow(clippy::too_many_arguments)]
fn router_service(
    src: &Source,
    router: &str,
    s: &Ref,
    provider: &str,
    services: &BTreeMap<String, (&Source, ServiceDraft)>,
    refused: &BTreeMap<String, String>,
    reasons: &mut Vec<String>,
    d: &mut Diags,
) -> Option<String> {
    let why = match target(&s.name, provider) {
        Target::Here(n) if services.contains_key(n) => match refused.get(n) {
            None => return Some(n.to_owned()),
            Some(r) => format!("router {router}: its service {n} is refused ({r})"),
        },
        Target::Here(_) => {
            d.push(
                Severity::Error,
                src,
                s.at,
                format!("router {router}: service {:?} does not exist", s.name),
            );
            return None;
        }
        Target::Internal(_) => format!(
            "router {router}: service {} is one of Traefik's internal services, not provided by betaroute",
            s.name
        ),
        Target::Elsewhere(_, p) => format!(
            "router {router}: service {} is from provider {p:?}, which betaroute does not run",
            s.name
        ),
    };
    d.push(Severity::Refused, src, s.at, why.clone());
    reasons.push(why);
    // The router stays (and answers 503); its service is named but never called.
    Some(match target(&s.name, provider) {
        Target::Here(n) => n.to_owned(),
        _ => s.name.clone(),
    })
}

/// Which services cannot be served, and why: their own refusals, then, transitively, weighted and
/// failover services over them. Unknown references and cycles are errors.
fn service_refusals(
    services: &BTreeMap<String, (&Source, ServiceDraft)>,
    provider: &str,
    d: &mut Diags,
) -> BTreeMap<String, String> {
    let mut refused: BTreeMap<String, String> = services
        .iter()
        .filter(|(_, (_, s))| !s.refused.is_empty())
        .map(|(n, (_, s))| (n.clone(), s.refused.join("; ")))
        .collect();
    let mut children: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, (src, s)) in services {
        for r in &s.refs {
            match target(&r.name, provider) {
                Target::Here(n) if services.contains_key(n) => {
                    children.entry(name).or_default().push(n.to_owned())
                }
                Target::Here(_) => d.push(
                    Severity::Error,
                    src,
                    r.at,
                    format!("service {name}: refers to unknown service {:?}", r.name),
                ),
                _ => {
                    let why = format!(
                        "service {name}: refers to {}, which betaroute does not provide",
                        r.name
                    );
                    d.push(Severity::Refused, src, r.at, why.clone());
                    refused.entry(name.clone()).or_insert(why);
                }
            }
        }
    }
    for (name, (src, s)) in services {
        if reaches(&children, name, name, &mut BTreeSet::new()) {
            d.push(
                Severity::Error,
                src,
                s.at,
                format!("service {name}: refers to itself through weighted or failover services"),
            );
        }
    }
    // Propagate until nothing changes (the graph is small and acyclic once errors are out).
    loop {
        let mut changed = false;
        for (name, kids) in &children {
            if refused.contains_key(*name) {
                continue;
            }
            if let Some(k) = kids.iter().find(|k| refused.contains_key(*k)) {
                refused.insert(
                    (*name).to_owned(),
                    format!("service {name}: uses service {k}, which is refused"),
                );
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    refused
}

fn reaches(
    children: &BTreeMap<&str, Vec<String>>,
    start: &str,
    at: &str,
    seen: &mut BTreeSet<String>,
) -> bool {
    children
        .get(at)
        .into_iter()
        .flatten()
        .any(|c| c == start || (seen.insert(c.clone()) && reaches(children, start, c, seen)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_qualified_by_provider() {
        assert_eq!(target("api", "file"), Target::Here("api"));
        assert_eq!(target("api@file", "file"), Target::Here("api"));
        assert_eq!(target("api@File", "file"), Target::Here("api"));
        assert_eq!(target("api@internal", "file"), Target::Internal("api"));
        assert_eq!(target("x@docker", "file"), Target::Elsewhere("x", "docker"));
    }
}
