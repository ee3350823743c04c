//! Validation in two steps, as Traefik has one configuration per provider merged into one table:
//!
//! - [`layer`]: one provider's configuration alone. Names are unique within the provider, and
//!   service references do not loop. A strict provider (files) also needs every reference to
//!   its own objects to resolve: an error there fails the load, so a reload keeps the last
//!   good files. A discovered provider (Consul) gets refusals instead, router by router.
//! - [`combine`]: every provider's layer together, names qualified as `name@provider`.
//!   References resolve across providers (`api@consulcatalog` from a file). Nothing here is an
//!   error, since one provider's update must never fail another's: a router whose service or
//!   middleware is missing, or whose configuration betaroute does not implement, is refused by
//!   name (it stays in the table and answers 503), never served without a word.

use std::collections::{BTreeMap, BTreeSet};

use super::drafts::{
    ComparisonDraft, MiddlewareDraft, Named, Part, Ref, RouterDraft, RouterTlsDraft, ServiceDraft,
};
use super::spec::{
    Baseline, BetaSwitch, RouterSpec, RouterTls, RoutingConfig, ServiceSpec, Statics, TlsConfig,
};
use super::tls::{TlsPart, DEFAULT_OPTIONS};
use super::transport::{TransportDraft, TransportSpec, DEFAULT_TRANSPORT};
use crate::config::error::ConfigErrors;
use crate::config::read::{Diagnostic, Severity};
use crate::config::source::Source;

/// Traefik's own provider, for `api@internal`, `noop@internal`.
const INTERNAL: &str = "internal";

/// A reference as written, split: `api` (this provider), `api@file`.
fn split_ref<'a>(name: &'a str, here: &'a str) -> (&'a str, &'a str) {
    match name.rsplit_once('@') {
        None => (name, here),
        Some((n, p)) => (n, p),
    }
}

/// The qualified name of a reference, as Traefik writes it (the provider in lower case).
pub fn qualify(name: &str, here: &str) -> String {
    let (n, p) = split_ref(name, here);
    format!("{n}@{}", p.to_ascii_lowercase())
}

/// One provider's configuration, validated alone.
#[derive(Debug, Clone)]
pub struct Layer {
    provider: String,
    sources: Vec<Source>,
    /// By bare name: the definition and the index of its source.
    routers: BTreeMap<String, (usize, RouterDraft)>,
    services: BTreeMap<String, (usize, ServiceDraft)>,
    middlewares: BTreeMap<String, (usize, MiddlewareDraft)>,
    /// Refusals and warnings found reading and validating this provider.
    diagnostics: Vec<Diagnostic>,
    /// `cohorts.beta.enabled` as this provider sets it (off wins over on among its files).
    beta_enabled: Option<bool>,
    comparisons: BTreeMap<String, (usize, ComparisonDraft)>,
    /// Each file's `tls` section, with the index of its source.
    tls: Vec<(usize, TlsPart)>,
    transports: BTreeMap<String, (usize, TransportDraft)>,
}

impl Layer {
    /// A provider with nothing (yet): Consul before its first answer.
    pub fn empty(provider: &str) -> Layer {
        Layer {
            provider: provider.to_owned(),
            sources: Vec::new(),
            routers: BTreeMap::new(),
            services: BTreeMap::new(),
            middlewares: BTreeMap::new(),
            diagnostics: Vec::new(),
            beta_enabled: None,
            comparisons: BTreeMap::new(),
            tls: Vec::new(),
            transports: BTreeMap::new(),
        }
    }

    /// Sets the provider's `cohorts.beta.enabled` (the Consul provider reads it from a KV key).
    pub fn set_beta_enabled(&mut self, enabled: Option<bool>) {
        self.beta_enabled = enabled;
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// How many routers and services it defines, for logs.
    pub fn size(&self) -> (usize, usize) {
        (self.routers.len(), self.services.len())
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

/// Names are unique within a provider: a second definition is an error at its place.
fn add_unique<T: Named>(
    map: &mut BTreeMap<String, (usize, T)>,
    kind: &str,
    sources: &[Source],
    src: usize,
    item: T,
    d: &mut Diags,
) {
    if let Some((first, _)) = map.get(item.name()) {
        let message = format!(
            "{kind} {:?} is defined more than once (also in {})",
            item.name(),
            sources[*first].file
        );
        d.push(Severity::Error, &sources[src], item.at(), message);
        return;
    }
    map.insert(item.name().to_owned(), (src, item));
}

/// Validates one provider's parts (one per source). `strict`: a reference to a missing object
/// of the same provider is an error (files); otherwise it is left to [`combine`] to refuse.
pub fn layer(
    provider: &str,
    parts: Vec<(Source, Part)>,
    mut diagnostics: Vec<Diagnostic>,
    strict: bool,
) -> Result<Layer, ConfigErrors> {
    let mut out = Layer::empty(provider);
    let mut d = Diags {
        out: &mut diagnostics,
    };
    let mut drafts = Vec::new();
    for (src, part) in parts {
        out.sources.push(src);
        drafts.push(part);
    }
    for (i, part) in drafts.into_iter().enumerate() {
        out.beta_enabled = match (out.beta_enabled, part.beta_enabled) {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        };
        for s in part.services {
            add_unique(&mut out.services, "service", &out.sources, i, s, &mut d);
        }
        for m in part.middlewares {
            add_unique(
                &mut out.middlewares,
                "middleware",
                &out.sources,
                i,
                m,
                &mut d,
            );
        }
        for r in part.routers {
            add_unique(&mut out.routers, "router", &out.sources, i, r, &mut d);
        }
        for c in part.comparisons {
            add_unique(
                &mut out.comparisons,
                "comparison",
                &out.sources,
                i,
                c,
                &mut d,
            );
        }
        if let Some(t) = part.tls {
            out.tls.push((i, t));
        }
        for t in part.transports {
            add_unique(
                &mut out.transports,
                "serversTransport",
                &out.sources,
                i,
                t,
                &mut d,
            );
        }
    }
    tls_unique(&out, &mut d);
    if strict {
        missing_references(&out, &mut d);
    }
    service_cycles(&out, &mut d);
    let (errors, rest): (Vec<Diagnostic>, Vec<Diagnostic>) = diagnostics
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors.into_iter().map(|d| d.error).collect()));
    }
    out.diagnostics = rest;
    Ok(out)
}

/// TLS options are named once per provider, and the default store has one default certificate.
fn tls_unique(l: &Layer, d: &mut Diags) {
    let mut options: BTreeMap<&str, usize> = BTreeMap::new();
    let mut default_cert: Option<usize> = None;
    for (src, t) in &l.tls {
        for (name, at, _) in &t.options {
            if let Some(first) = options.insert(name, *src) {
                let msg = format!(
                    "tls options {name:?} are defined more than once (also in {})",
                    l.sources[first].file
                );
                d.push(Severity::Error, &l.sources[*src], *at, msg);
            }
        }
        if let Some((_, at)) = &t.default_certificate {
            if let Some(first) = default_cert.replace(*src) {
                let msg = format!(
                    "tls store default: defaultCertificate is defined more than once (also in {})",
                    l.sources[first].file
                );
                d.push(Severity::Error, &l.sources[*src], *at, msg);
            }
        }
    }
}

/// Every provider's `tls` sections as one: options named `name@provider` (`default` as is),
/// certificates in the order given.
fn combine_tls(layers: &[&Layer]) -> TlsConfig {
    let mut out = TlsConfig::default();
    for l in layers {
        for (_, t) in &l.tls {
            out.certificates.extend(t.certificates.iter().cloned());
            if let Some((c, _)) = &t.default_certificate {
                out.default_certificate = Some(c.clone());
            }
            for (name, _, o) in &t.options {
                let key = if name == DEFAULT_OPTIONS {
                    name.clone()
                } else {
                    format!("{name}@{}", l.provider)
                };
                out.options.insert(key, o.clone());
            }
        }
    }
    out
}

/// A router as served on some of its entry points: Traefik applies an entry point's model
/// (`http.tls`, `http.middlewares`) to a copy of each router on it, named `ep-name` when the
/// router is on more than one entry point.
struct Instance<'a> {
    name: String,
    at: &'a At<'a, RouterDraft>,
    entry_points: Option<Vec<String>>,
    /// The model's middlewares, before the router's own.
    pre: Vec<Ref>,
    tls: Option<RouterTlsDraft>,
}

fn instances<'a>(
    routers: &'a BTreeMap<String, At<'a, RouterDraft>>,
    statics: &Statics,
) -> Vec<Instance<'a>> {
    let mut out = Vec::new();
    for (qname, at) in routers {
        let r = at.item;
        let eps: Vec<String> = match &r.entry_points {
            Some(eps) => eps.clone(),
            None => statics.entry_points.clone(),
        };
        let plain = Instance {
            name: qname.clone(),
            at,
            entry_points: r.entry_points.clone(),
            pre: Vec::new(),
            tls: r.tls.clone(),
        };
        if !eps.iter().any(|ep| statics.model(ep).is_some()) {
            out.push(plain);
            continue;
        }
        let mut rest = Vec::new();
        for ep in &eps {
            let Some(m) = statics.model(ep) else {
                rest.push(ep.clone());
                continue;
            };
            let name = if eps.len() > 1 {
                format!("{ep}-{qname}")
            } else {
                qname.clone()
            };
            let tls = r.tls.clone().or_else(|| {
                m.tls.as_ref().map(|o| RouterTlsDraft {
                    options: o.clone().map(|name| Ref { name, at: r.at }),
                })
            });
            out.push(Instance {
                name,
                at,
                entry_points: Some(vec![ep.clone()]),
                pre: m
                    .middlewares
                    .iter()
                    .map(|name| Ref {
                        name: name.clone(),
                        at: r.at,
                    })
                    .collect(),
                tls,
            });
        }
        if !rest.is_empty() {
            out.push(Instance {
                entry_points: Some(rest),
                ..plain
            });
        }
    }
    out
}

/// Traefik's entry point redirection: a router on the entry point for every host, above every
/// user router, redirecting to the other entry point's scheme and port.
fn redirect_routers(statics: &Statics) -> Vec<RouterSpec> {
    let mut out = Vec::new();
    for m in &statics.models {
        let Some(r) = &m.redirect else { continue };
        let name = format!("{}-to-{}@internal", m.entry_point, r.to);
        let rule =
            betaroute_core::rules::Rule::compile("HostRegexp(`^.+$`)").expect("a valid rule");
        let redirect =
            crate::middleware::Redirect::scheme(&r.scheme, Some(&r.port), r.permanent, false);
        out.push(RouterSpec {
            name,
            rule,
            priority: Some(r.priority),
            service: "noop@internal".to_owned(),
            service_written: "noop@internal".to_owned(),
            middlewares: vec![format!("redirect-{}-to-{}@internal", m.entry_point, r.to)],
            entry_points: Some(vec![m.entry_point.clone()]),
            refused: None,
            chain: vec![std::sync::Arc::new(
                crate::middleware::Middleware::Redirect(redirect),
            )],
            tls: None,
        });
    }
    out
}

/// Traefik's arbitration of TLS options: on each entry point, a host served by TLS routers
/// with different options is served with the default options by all of them; a router with
/// other options but no host cannot have them chosen by SNI, so it uses the default too.
fn arbitrate_tls(routers: &mut [RouterSpec], statics: &Statics, d: &mut Vec<Diagnostic>) {
    let all = |r: &RouterSpec| -> Vec<String> {
        r.entry_points
            .clone()
            .unwrap_or_else(|| statics.entry_points.clone())
    };
    let mut eps: BTreeSet<String> = BTreeSet::new();
    for r in routers.iter().filter(|r| r.tls.is_some()) {
        eps.extend(all(r));
    }
    for ep in eps {
        let mut by_host: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        let mut conflicting: BTreeSet<usize> = BTreeSet::new();
        for (i, r) in routers.iter().enumerate() {
            let Some(t) = &r.tls else { continue };
            if !all(r).contains(&ep) {
                continue;
            }
            let domains = r.rule.host_domains();
            if domains.is_empty() && t.options != DEFAULT_OPTIONS {
                d.push(Diagnostic {
                    severity: Severity::Warning,
                    error: crate::config::error::ConfigError::whole(
                        "dynamic configuration".to_owned(),
                        format!("router {}: no Host in its rule, so its TLS options {} cannot be chosen by SNI: the default options are used on entry point {ep}, as in Traefik", r.name, t.options),
                    ),
                });
                conflicting.insert(i);
                continue;
            }
            for host in domains {
                by_host
                    .entry(host)
                    .or_default()
                    .entry(t.options.clone())
                    .or_default()
                    .push(i);
            }
        }
        for (host, by_option) in &by_host {
            if by_option.len() < 2 {
                continue;
            }
            let names: Vec<&str> = by_option
                .values()
                .flatten()
                .map(|i| routers[*i].name.as_str())
                .collect();
            d.push(Diagnostic {
                severity: Severity::Warning,
                error: crate::config::error::ConfigError::whole(
                    "dynamic configuration".to_owned(),
                    format!("entry point {ep}: host {host:?} is served by routers with different TLS options ({}): they use the default options there, as in Traefik", names.join(", ")),
                ),
            });
            conflicting.extend(by_option.values().flatten().copied());
        }
        for i in conflicting {
            if let Some(t) = &mut routers[i].tls {
                t.default_on.push(ep.clone());
            }
        }
    }
}

/// References to this provider's own objects that do not exist.
fn missing_references(l: &Layer, d: &mut Diags) {
    let here = |r: &Ref| -> Option<String> {
        let (n, p) = split_ref(&r.name, &l.provider);
        p.eq_ignore_ascii_case(&l.provider).then(|| n.to_owned())
    };
    for (name, (src, r)) in &l.routers {
        let src = &l.sources[*src];
        if let Some(s) = r.service.as_ref() {
            if here(s).is_some_and(|n| !l.services.contains_key(&n)) {
                let msg = format!("router {name}: service {:?} does not exist", s.name);
                d.push(Severity::Error, src, s.at, msg);
            }
        }
        for m in &r.middlewares {
            if here(m).is_some_and(|n| !l.middlewares.contains_key(&n)) {
                let msg = format!("router {name}: middleware {:?} does not exist", m.name);
                d.push(Severity::Error, src, m.at, msg);
            }
        }
    }
    for (name, (src, s)) in &l.services {
        for r in &s.refs {
            if here(r).is_some_and(|n| !l.services.contains_key(&n)) {
                let msg = format!("service {name}: refers to unknown service {:?}", r.name);
                d.push(Severity::Error, &l.sources[*src], r.at, msg);
            }
        }
    }
}

/// Weighted and failover services that reach themselves (within one provider: only files
/// define such services).
fn service_cycles(l: &Layer, d: &mut Diags) {
    let mut children: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, (_, s)) in &l.services {
        for r in &s.refs {
            let (n, p) = split_ref(&r.name, &l.provider);
            if p.eq_ignore_ascii_case(&l.provider) && l.services.contains_key(n) {
                children.entry(name).or_default().push(n.to_owned());
            }
        }
    }
    for (name, (src, s)) in &l.services {
        if reaches(&children, name, name, &mut BTreeSet::new()) {
            d.push(
                Severity::Error,
                &l.sources[*src],
                s.at,
                format!("service {name}: refers to itself through weighted or failover services"),
            );
        }
    }
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

/// Where a draft is written: its layer's source.
struct At<'a, T> {
    layer: &'a Layer,
    src: usize,
    item: &'a T,
}

impl<T> At<'_, T> {
    fn source(&self) -> &Source {
        &self.layer.sources[self.src]
    }
}

/// What a reference finds among every provider's objects.
enum Found<'a, T> {
    Yes(String, &'a At<'a, T>),
    /// Traefik's `@internal` objects.
    Internal,
    /// The provider is not running here.
    NoProvider(String),
    Missing,
}

fn find<'a, T>(
    map: &'a BTreeMap<String, At<'a, T>>,
    providers: &BTreeSet<String>,
    name: &str,
    here: &str,
) -> Found<'a, T> {
    let (_, p) = split_ref(name, here);
    let p = p.to_ascii_lowercase();
    if p == INTERNAL {
        return Found::Internal;
    }
    if !providers.contains(&p) {
        return Found::NoProvider(p);
    }
    let q = qualify(name, here);
    match map.get(&q) {
        Some(at) => Found::Yes(q, at),
        None => Found::Missing,
    }
}

/// Every provider's layer as one routing configuration, with qualified names. Returns the
/// configuration (its diagnostics: every layer's and the combination's) and what the
/// combination itself found (for the reload log, which logs each layer when it changes).
pub fn combine(layers: &[&Layer], statics: &Statics) -> (RoutingConfig, Vec<Diagnostic>) {
    let providers: BTreeSet<String> = layers.iter().map(|l| l.provider.clone()).collect();
    let mut services: BTreeMap<String, At<ServiceDraft>> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, At<MiddlewareDraft>> = BTreeMap::new();
    let mut routers: BTreeMap<String, At<RouterDraft>> = BTreeMap::new();
    for l in layers {
        for (n, (src, item)) in &l.services {
            let at = At {
                layer: l,
                src: *src,
                item,
            };
            services.insert(format!("{n}@{}", l.provider), at);
        }
        for (n, (src, item)) in &l.middlewares {
            let at = At {
                layer: l,
                src: *src,
                item,
            };
            middlewares.insert(format!("{n}@{}", l.provider), at);
        }
        for (n, (src, item)) in &l.routers {
            let at = At {
                layer: l,
                src: *src,
                item,
            };
            routers.insert(format!("{n}@{}", l.provider), at);
        }
    }
    let mut own = Vec::new();
    let mut own_tls = Vec::new();
    let mut d = Diags { out: &mut own };
    let transports = combine_transports(layers, statics);
    let mut refused = service_refusals(&services, &providers, &mut d);
    transport_refusals(&services, &transports, &mut refused, &mut d);
    let mut used_middlewares = BTreeSet::new();
    let mut out = RoutingConfig {
        tls: combine_tls(layers),
        ..RoutingConfig::default()
    };
    for inst in instances(&routers, statics) {
        let (qname, at) = (&inst.name, inst.at);
        let r = at.item;
        let here = at.layer.provider.as_str();
        let mut reasons = r.refused.clone();
        let tls = inst.tls.as_ref().map(|t| {
            let options = match &t.options {
                None => DEFAULT_OPTIONS.to_owned(),
                Some(o) if o.name == DEFAULT_OPTIONS => DEFAULT_OPTIONS.to_owned(),
                Some(o) => {
                    let q = qualify(&o.name, here);
                    if !out.tls.options.contains_key(&q) {
                        let why =
                            format!("router {qname}: its TLS options {} do not exist", o.name);
                        d.push(Severity::Refused, at.source(), o.at, why.clone());
                        reasons.push(why);
                    }
                    q
                }
            };
            RouterTls {
                options,
                default_on: Vec::new(),
            }
        });
        let Some(s) = r.service.as_ref() else {
            continue;
        };
        let service = match find(&services, &providers, &s.name, here) {
            Found::Yes(q, _) => {
                if let Some(why) = refused.get(&q) {
                    let why = format!("router {qname}: its service {q} is refused ({why})");
                    d.push(Severity::Refused, at.source(), s.at, why.clone());
                    reasons.push(why);
                }
                q
            }
            Found::Internal if crate::config::Internal::of(&qualify(&s.name, here)).is_some() => {
                qualify(&s.name, here)
            }
            other => {
                let why = match other {
                    Found::Internal => format!("router {qname}: service {} is one of Traefik's internal services betaroute does not serve behind a router (it serves noop@internal, ping@internal and prometheus@internal; its API and dashboard are on the admin address)", s.name),
                    Found::NoProvider(p) => format!("router {qname}: service {} is from provider {p:?}, which is not running", s.name),
                    _ => format!("router {qname}: service {} does not exist", s.name),
                };
                d.push(Severity::Refused, at.source(), s.at, why.clone());
                reasons.push(why);
                qualify(&s.name, here)
            }
        };
        let mut chain = Vec::new();
        for m in inst.pre.iter().chain(&r.middlewares) {
            let mut stack = Vec::new();
            let found = flatten(
                &middlewares,
                &services,
                &providers,
                (&m.name, here),
                &mut stack,
                &mut chain,
                &mut used_middlewares,
            );
            if let Err(why) = found {
                let why = format!("router {qname} {why}: the router is not served");
                d.push(Severity::Refused, at.source(), m.at, why.clone());
                reasons.push(why);
            }
        }
        let Some(rule) = r.rule.clone() else {
            continue;
        };
        out.routers.push(RouterSpec {
            name: qname.clone(),
            rule,
            priority: r.priority,
            service,
            service_written: s.name.clone(),
            middlewares: inst
                .pre
                .iter()
                .chain(&r.middlewares)
                .map(|m| qualify(&m.name, here))
                .collect(),
            entry_points: inst.entry_points.clone(),
            refused: (!reasons.is_empty()).then(|| reasons.join("; ")),
            chain: if reasons.is_empty() {
                chain
            } else {
                Vec::new()
            },
            tls,
        });
    }
    out.routers.extend(redirect_routers(statics));
    arbitrate_tls(&mut out.routers, statics, &mut own_tls);
    for (name, at) in &middlewares {
        out.middlewares.insert(name.clone(), at.item.kind.clone());
        let implemented = at.item.spec.is_some() || at.item.kind == "chain";
        if !implemented && !used_middlewares.contains(name) {
            d.push(
                Severity::Warning,
                at.source(),
                at.item.at,
                format!(
                    "middleware {name} ({}) is not supported yet; no router uses it",
                    at.item.kind
                ),
            );
        }
    }
    for (name, at) in &services {
        if let Some(why) = refused.get(name) {
            out.refused_services.insert(name.clone(), why.clone());
            continue;
        }
        if let Some(spec) = &at.item.spec {
            let here = at.layer.provider.as_str();
            out.services.insert(
                name.clone(),
                qualified_spec(spec, here, &transports, statics),
            );
        }
    }
    // Comparisons, their references qualified; one that names nothing known yet is kept (it
    // judges `inconclusive` until traffic arrives) and said so.
    for l in layers {
        for (name, (src, c)) in &l.comparisons {
            let here = l.provider.as_str();
            let mut spec = c.item_spec(here);
            spec.name = format!("{name}@{here}");
            let known = |n: &str| routers.contains_key(n) || services.contains_key(n);
            let mut unknown = Vec::new();
            if !known(&spec.beta) {
                unknown.push(spec.beta.clone());
            }
            if let Baseline::Named(b) = &spec.baseline {
                if !known(b) {
                    unknown.push(b.clone());
                }
            }
            if spec.baseline == Baseline::Default(None) {
                match twin(&out.routers, &spec.beta) {
                    Ok(t) => spec.baseline = Baseline::Default(Some(t)),
                    Err(why) => {
                        let why = format!("comparison {}: no baseline configured, and {why}: set baseline (a router, a service or holdback)", spec.name);
                        d.push(Severity::Warning, &l.sources[*src], c.at, why);
                    }
                }
            }
            for u in unknown {
                let why = format!("comparison {}: {u} is no router or service (yet): nothing to compare until it is", spec.name);
                d.push(Severity::Warning, &l.sources[*src], c.at, why);
            }
            out.comparisons.push(spec);
        }
    }
    own.extend(own_tls);
    out.diagnostics = layers
        .iter()
        .flat_map(|l| l.diagnostics.iter().cloned())
        .chain(own.iter().cloned())
        .collect();
    // The kill switch: any provider turning beta off turns it off (the safe side wins).
    for l in layers {
        if let Some(enabled) = l.beta_enabled {
            if out.beta_switch.as_ref().is_none_or(|s| s.enabled) {
                out.beta_switch = Some(BetaSwitch {
                    enabled,
                    provider: l.provider.clone(),
                });
            }
        }
    }
    (out, own)
}

/// Every provider's servers transports by qualified name (the static one as `default@internal`);
/// refused ones map to why.
fn combine_transports(
    layers: &[&Layer],
    statics: &Statics,
) -> BTreeMap<String, Result<std::sync::Arc<TransportSpec>, String>> {
    let mut out = BTreeMap::new();
    if let Some(t) = &statics.default_transport {
        out.insert(DEFAULT_TRANSPORT.to_owned(), Ok(t.clone()));
    }
    for l in layers {
        for (name, (_, t)) in &l.transports {
            let q = format!("{name}@{}", l.provider);
            let v = match (&t.spec, &t.refused) {
                (Some(s), None) => {
                    let mut s = TransportSpec::clone(s);
                    s.name = q.clone();
                    Ok(std::sync::Arc::new(s))
                }
                (_, Some(why)) => Err(why.clone()),
                (None, None) => Err(format!("serversTransport {q} is invalid")),
            };
            out.insert(q, v);
        }
    }
    out
}

/// Load balancers whose `serversTransport` is missing or refused are refused.
fn transport_refusals(
    services: &BTreeMap<String, At<ServiceDraft>>,
    transports: &BTreeMap<String, Result<std::sync::Arc<TransportSpec>, String>>,
    refused: &mut BTreeMap<String, String>,
    d: &mut Diags,
) {
    for (name, at) in services {
        let Some(ServiceSpec::LoadBalancer(lb)) = &at.item.spec else {
            continue;
        };
        let Some(t) = &lb.transport_ref else { continue };
        let q = qualify(t, &at.layer.provider);
        let why = match transports.get(&q) {
            Some(Ok(_)) => continue,
            Some(Err(why)) => {
                format!("service {name}: its serversTransport {q} is refused ({why})")
            }
            None if q == DEFAULT_TRANSPORT => continue,
            None => format!("service {name}: serversTransport {t} does not exist"),
        };
        d.push(Severity::Refused, at.source(), at.item.at, why.clone());
        refused.entry(name.clone()).or_insert(why);
    }
}

/// A service's children named by their qualified names, and its transport resolved.
fn qualified_spec(
    spec: &ServiceSpec,
    here: &str,
    transports: &BTreeMap<String, Result<std::sync::Arc<TransportSpec>, String>>,
    statics: &Statics,
) -> ServiceSpec {
    match spec {
        ServiceSpec::LoadBalancer(lb) => {
            let mut lb = lb.clone();
            lb.transport = match &lb.transport_ref {
                Some(t) => transports
                    .get(&qualify(t, here))
                    .and_then(|r| r.as_ref().ok().cloned())
                    .or_else(|| statics.default_transport.clone()),
                None => statics.default_transport.clone(),
            };
            ServiceSpec::LoadBalancer(lb)
        }
        ServiceSpec::Weighted(children) => ServiceSpec::Weighted(
            children
                .iter()
                .map(|(n, w)| (qualify(n, here), *w))
                .collect(),
        ),
        ServiceSpec::Failover { service, fallback } => ServiceSpec::Failover {
            service: qualify(service, here),
            fallback: qualify(fallback, here),
        },
    }
}

/// Which services cannot be served, and why: their own refusals, references to what is not
/// there, then, transitively, weighted and failover services over refused ones.
fn service_refusals(
    services: &BTreeMap<String, At<ServiceDraft>>,
    providers: &BTreeSet<String>,
    d: &mut Diags,
) -> BTreeMap<String, String> {
    let mut refused: BTreeMap<String, String> = services
        .iter()
        .filter(|(_, at)| !at.item.refused.is_empty())
        .map(|(n, at)| (n.clone(), at.item.refused.join("; ")))
        .collect();
    let mut children: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, at) in services {
        let here = at.layer.provider.as_str();
        for r in &at.item.refs {
            let why = match find(services, providers, &r.name, here) {
                Found::Yes(q, _) => {
                    children.entry(name).or_default().push(q);
                    continue;
                }
                Found::Missing => format!("service {name}: refers to unknown service {}", r.name),
                _ => format!(
                    "service {name}: refers to {}, which betaroute does not provide",
                    r.name
                ),
            };
            d.push(Severity::Refused, at.source(), r.at, why.clone());
            refused.entry(name.clone()).or_insert(why);
        }
    }
    // Propagate until nothing changes. Cycles are errors within a provider, and only files
    // define services over services, so the graph is acyclic here; the bound is a safeguard.
    for _ in 0..=services.len() {
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

/// Appends the middlewares `name` (from provider `here`) stands for to `out`: itself, or a
/// `chain`'s members in order, recursively. Fails naming what cannot run: a kind betaroute does
/// not implement, a missing or internal middleware, a chain that contains itself.
fn flatten(
    middlewares: &BTreeMap<String, At<MiddlewareDraft>>,
    services: &BTreeMap<String, At<ServiceDraft>>,
    providers: &BTreeSet<String>,
    (name, here): (&str, &str),
    stack: &mut Vec<String>,
    out: &mut Vec<std::sync::Arc<crate::middleware::Middleware>>,
    used: &mut BTreeSet<String>,
) -> Result<(), String> {
    let def = match find(middlewares, providers, name, here) {
        Found::Yes(q, def) => (q, def),
        Found::Internal => {
            return Err(format!("uses middleware {name}, one of Traefik's internal middlewares, not provided by betaroute"))
        }
        Found::NoProvider(p) => {
            return Err(format!("uses middleware {name} from provider {p:?}, which is not running"))
        }
        Found::Missing => return Err(format!("uses middleware {name}, which does not exist")),
    };
    let (q, def) = def;
    used.insert(q.clone());
    let item = def.item;
    if item.kind == "chain" {
        if stack.contains(&q) {
            return Err(format!(
                "uses middleware chain {q}, which contains itself ({} -> {q})",
                stack.join(" -> ")
            ));
        }
        stack.push(q);
        for r in &item.chain {
            flatten(
                middlewares,
                services,
                providers,
                (&r.name, &def.layer.provider),
                stack,
                out,
                used,
            )?;
        }
        stack.pop();
        return Ok(());
    }
    match &item.spec {
        // `errors` names its page's service in its own provider's terms.
        Some(m) if matches!(&**m, crate::middleware::Middleware::Errors(_)) => {
            let crate::middleware::Middleware::Errors(e) = &**m else {
                unreachable!()
            };
            let service = match find(services, providers, &e.service, &def.layer.provider) {
                Found::Yes(q, _) => q,
                _ => {
                    return Err(format!(
                        "uses middleware {q} (errors), whose service {} does not exist",
                        e.service
                    ))
                }
            };
            let mut e = (**e).clone();
            e.service = service;
            out.push(std::sync::Arc::new(crate::middleware::Middleware::Errors(
                std::sync::Arc::new(e),
            )));
            Ok(())
        }
        Some(m) => {
            out.push(m.clone());
            Ok(())
        }
        None => Err(format!(
            "uses middleware {q} ({}), {}",
            item.kind,
            item.refusal.as_deref().unwrap_or("not supported yet")
        )),
    }
}

/// The main router of the beta router `beta`: the one router whose rule is beta's without its
/// `Header(..., `true`)` operand.
fn twin(routers: &[RouterSpec], beta: &str) -> Result<String, String> {
    let Some(b) = routers.iter().find(|r| r.name == beta) else {
        return Err(format!(
            "{beta} is no router (a default baseline is the main router of a beta router's rule)"
        ));
    };
    let found: Vec<&str> = routers
        .iter()
        .filter(|r| betaroute_core::rules::is_main_twin(b.rule.text(), r.rule.text()))
        .map(|r| r.name.as_str())
        .collect();
    match found[..] {
        [one] => Ok(one.to_owned()),
        [] => Err(format!(
            "no router has the rule of {beta} without its Header(..., `true`)"
        )),
        _ => Err(format!(
            "several routers have the rule of {beta} without its Header(..., `true`): {}",
            found.join(", ")
        )),
    }
}

impl ComparisonDraft {
    /// The spec with its references qualified by the provider `here`.
    fn item_spec(&self, here: &str) -> super::spec::ComparisonSpec {
        let mut spec = self.spec.clone();
        spec.beta = qualify(&spec.beta, here);
        if let Baseline::Named(b) = &spec.baseline {
            spec.baseline = Baseline::Named(qualify(b, here));
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_qualified_by_provider() {
        assert_eq!(qualify("api", "file"), "api@file");
        assert_eq!(qualify("api@file", "file"), "api@file");
        assert_eq!(qualify("api@File", "file"), "api@file");
        assert_eq!(qualify("api@consulcatalog", "file"), "api@consulcatalog");
        assert_eq!(split_ref("x@docker", "file"), ("x", "docker"));
        assert_eq!(split_ref("a@b@c", "file"), ("a@b", "c"));
    }
}
