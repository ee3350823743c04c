//! Traefik's `buildConfiguration` for Consul Catalog, as pure logic: catalog items in, one
//! validated [`Layer`] out.
//!
//! Per instance: filters (enabled, not Connect, constraints, health status in
//! `strictChecks`), its labels decoded as a dynamic configuration, a service named after the
//! Consul service when the labels define none, the instance as that service's server
//! (`server.port` / `server.scheme` / `server.url`), and a router with the default rule when
//! the labels define none. Then every instance's configuration is merged, as Traefik's
//! `provider.Merge`: instances of one service become one load balancer with all their servers;
//! a router, service or middleware that two instances define differently is dropped, with a
//! diagnostic naming them, and the rest stays.
//!
//! Nothing here fails the whole catalog: a bad instance is dropped with a located diagnostic
//! (service, instance, label), since one team's typo must not stop another team's routing.

use std::collections::BTreeMap;

use super::catalog::{Catalog, Item};
use super::labels::{self, extra_conf, Doc};
use super::CONSUL_PROVIDER;
use crate::config::dynamic::drafts::{MiddlewareDraft, Part, RouterDraft, ServiceDraft};
use crate::config::dynamic::http::read_file;
use crate::config::dynamic::{layer, Layer, ServiceSpec};
use crate::config::read::{Cx, Diagnostic, Severity};
use crate::config::source::{Node, Source};
use crate::config::static_config::consul::ConsulOptions;
use crate::config::template::{normalize, Data};
use crate::config::ConfigError;

/// Go's 64-bit FNV-1 (`hash/fnv.New64`), which Traefik's canary names use.
fn fnv1_64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h = h.wrapping_mul(0x100000001b3);
        h ^= u64::from(*b);
    }
    h
}

/// The default router and service name of an item: the normalized service name, or for a
/// canary instance the name with a hash of its sorted tags (so canaries get their own).
pub fn item_name(item: &Item, canary: bool) -> String {
    if !canary {
        return normalize(&item.name);
    }
    let mut tags = item.tags.clone();
    tags.sort();
    normalize(&format!(
        "{}-{}",
        item.name,
        fnv1_64(tags.join("").as_bytes())
    ))
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What one instance contributes, read.
struct ItemConfig {
    source: Source,
    part: Part,
}

/// Diagnostics of one build.
struct Notes {
    out: Vec<Diagnostic>,
}

impl Notes {
    fn push(&mut self, severity: Severity, error: ConfigError) {
        self.out.push(Diagnostic { severity, error });
    }

    fn whole(&mut self, severity: Severity, file: &str, message: String) {
        self.push(severity, ConfigError::whole(file.to_owned(), message));
    }
}

/// The label line an error points at, shown under it.
fn with_line(src: &Source, mut e: ConfigError) -> ConfigError {
    if e.snippet.is_none() && e.line > 0 {
        e.snippet = src.text.lines().nth(e.line - 1).map(str::to_owned);
    }
    e
}

/// Builds the provider's layer from what the catalog holds.
pub fn build(catalog: &Catalog, opts: &ConsulOptions) -> Layer {
    let mut notes = Notes { out: Vec::new() };
    for (service, why) in &catalog.skipped {
        notes.whole(
            Severity::Refused,
            &format!("consul service {service}"),
            format!("service skipped: {why}"),
        );
    }
    // Traefik keys each instance's configuration by its normalized node-service-id name (two
    // instances with the same key: the later one stays) and merges them in that key's order.
    let mut configs = BTreeMap::new();
    for item in &catalog.items {
        let key = normalize(&format!("{}-{}-{}", item.node, item.name, item.id));
        if let Some(c) = item_config(item, opts, &mut notes) {
            configs.insert(key, c);
        }
    }
    let configs: Vec<ItemConfig> = configs.into_values().collect();
    let parts = merge(configs, &mut notes);
    match layer(CONSUL_PROVIDER, parts, notes.out, false) {
        Ok(mut l) => {
            l.set_beta_enabled(catalog.beta_enabled);
            l
        }
        // Names are unique after the merge and nothing is strict: there is no error to have.
        Err(e) => unreachable!("consul layer without strict checks failed: {e}"),
    }
}

fn source_name(item: &Item) -> String {
    format!(
        "consul service {} instance {} on node {}",
        item.name, item.id, item.node
    )
}

/// One instance's configuration, or `None` when it is filtered out or dropped.
fn item_config(item: &Item, opts: &ConsulOptions, notes: &mut Notes) -> Option<ItemConfig> {
    let file = source_name(item);
    let extra = match extra_conf(&item.labels, opts) {
        Ok(e) => e,
        Err(why) => {
            notes.whole(Severity::Refused, &file, format!("instance dropped: {why}"));
            return None;
        }
    };
    if !extra.enable || extra.connect || !opts.constraints.matches(&item.tags) {
        return None;
    }
    if !opts
        .strict_checks
        .iter()
        .any(|s| s == "any" || s.eq_ignore_ascii_case(&item.status))
    {
        return None;
    }
    let mut doc = Doc::new(&item.labels);
    let name = item_name(item, extra.canary);
    if let Err(why) = complete(item, opts, &name, &mut doc, &file, notes) {
        notes.whole(Severity::Refused, &file, format!("instance dropped: {why}"));
        return None;
    }
    let source = Source::new(file.clone(), doc.text.clone());
    let mut cx = Cx::new(&source);
    for (at, key) in &doc.ignored {
        cx.warn(
            *at,
            format!("label {key} is not one Traefik's decoder reads (http, tcp, udp, tls.stores.default): ignored"),
        );
    }
    let part = read_file(&mut cx, &doc.root);
    let dropped = cx.has_errors();
    for d in cx.diagnostics {
        let error = with_line(&source, d.error);
        if d.severity == Severity::Error {
            let mut error = error;
            error.message = format!("instance dropped: {}", error.message);
            notes.push(Severity::Refused, error);
        } else {
            notes.push(d.severity, error);
        }
    }
    (!dropped).then_some(ItemConfig { source, part })
}

/// Does what Traefik's provider adds to the labels: the default service and its server, the
/// default router, its default rule and its service. `Err` drops the instance.
fn complete(
    item: &Item,
    opts: &ConsulOptions,
    name: &str,
    doc: &mut Doc,
    file: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let has = |root: &Node, section: &str, keys: &[&str]| {
        labels::get(root, section).is_some_and(|s| {
            keys.iter()
                .any(|k| labels::get(s, k).is_some_and(|t| !labels::entries(t).is_empty()))
        })
    };
    let tcp_or_udp = has(&doc.root, "tcp", &["routers", "services"])
        || has(&doc.root, "udp", &["routers", "services"]);
    let http = has(&doc.root, "http", &["routers", "middlewares", "services"]);
    if tcp_or_udp && !http {
        // TCP and UDP only: no HTTP router or service is made (the reader refuses TCP/UDP).
        return Ok(());
    }
    let mut root = std::mem::replace(
        &mut doc.root,
        Node {
            at: 0,
            value: crate::config::source::Value::Null,
        },
    );
    let result = complete_http(item, opts, name, doc, &mut root, file, notes);
    doc.root = root;
    result
}

fn empty_table(at: usize) -> Node {
    Node {
        at,
        value: crate::config::source::Value::Map(Vec::new()),
    }
}

fn complete_http(
    item: &Item,
    opts: &ConsulOptions,
    name: &str,
    doc: &mut Doc,
    root: &mut Node,
    file: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let http = labels::table(root, "http", 0);
    let services = labels::table(http, "services", 0);
    if labels::entries(services).is_empty() {
        let mut svc = empty_table(0);
        labels::set(&mut svc, "loadBalancer", empty_table(0));
        labels::set(services, name, svc);
    }
    let service_names: Vec<String> = labels::entries(services)
        .iter()
        .map(|e| e.key.clone())
        .collect();
    for svc_name in &service_names {
        let svc = labels::get_mut(services, svc_name).expect("listed");
        let Some(lb) = labels::get_mut(svc, "loadBalancer") else {
            return Err(format!("service {svc_name}: load-balancer is not defined"));
        };
        add_server(item, lb, doc).map_err(|e| format!("service {svc_name}: {e}"))?;
    }
    let routers = labels::table(http, "routers", 0);
    if labels::entries(routers).is_empty() {
        if service_names.len() > 1 {
            notes.whole(
                Severity::Warning,
                file,
                format!(
                    "no router made: the labels define several services ({}) and no router",
                    service_names.join(", ")
                ),
            );
        } else {
            labels::set(routers, name, empty_table(0));
        }
    }
    let router_names: Vec<String> = labels::entries(routers)
        .iter()
        .map(|e| e.key.clone())
        .collect();
    for r in router_names {
        let router = labels::get_mut(routers, &r).expect("listed");
        if !matches!(router.value, crate::config::source::Value::Map(_)) {
            *router = empty_table(router.at);
        }
        if labels::get(router, "rule").is_none() {
            let rule = match &opts.default_rule {
                None => Ok(String::new()),
                Some(t) => t.execute(&model(item)).map_err(|e| e.to_string()),
            };
            match rule {
                Err(e) => {
                    drop_router(
                        routers,
                        &r,
                        file,
                        notes,
                        format!("error while executing the default rule: {e}"),
                    );
                    continue;
                }
                Ok(text) if text.is_empty() => {
                    drop_router(
                        routers,
                        &r,
                        file,
                        notes,
                        "undefined rule (the default rule is empty)".into(),
                    );
                    continue;
                }
                Ok(text) => {
                    let node = doc.synthesize(&format!("default rule of router {r}"), &text);
                    labels::set(router, "rule", node);
                }
            }
        }
        if labels::get(router, "service").is_none() {
            if service_names.len() > 1 {
                drop_router(
                    routers,
                    &r,
                    file,
                    notes,
                    format!("it cannot be linked automatically with several services ({}): set its service", service_names.join(", ")),
                );
                continue;
            }
            let node = doc.synthesize(&format!("service of router {r}"), &service_names[0]);
            labels::set(router, "service", node);
        }
    }
    Ok(())
}

fn drop_router(routers: &mut Node, name: &str, file: &str, notes: &mut Notes, why: String) {
    labels::remove(routers, name);
    notes.whole(
        Severity::Refused,
        file,
        format!("router {name} dropped: {why}"),
    );
}

/// The default rule's data: Traefik's `{Name, Labels}`.
fn model(item: &Item) -> Data {
    Data::Struct(vec![
        ("Name".into(), Data::Str(item.name.clone())),
        (
            "Labels".into(),
            Data::Map(
                item.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Data::Str(v.clone())))
                    .collect(),
            ),
        ),
    ])
}

/// Traefik's `addServer`: the instance becomes the load balancer's one server.
fn add_server(item: &Item, lb: &mut Node, doc: &mut Doc) -> Result<(), String> {
    if labels::get(lb, "servers").is_some() {
        return Err(
            "labels set a load balancer's server with loadbalancer.server.*, not servers".into(),
        );
    }
    let mut server = labels::remove(lb, "server").unwrap_or_else(|| empty_table(lb.at));
    if !matches!(server.value, crate::config::source::Value::Map(_)) {
        return Err("loadbalancer.server is a table of options (port, scheme, url, weight)".into());
    }
    if item.address.is_empty() {
        return Err("address is missing".into());
    }
    let take = |server: &mut Node, key: &str| {
        labels::remove(server, key).and_then(|n| labels::text(&n).map(str::to_owned))
    };
    let port = take(&mut server, "port").filter(|p| !p.is_empty());
    let scheme = take(&mut server, "scheme").filter(|s| !s.is_empty());
    if labels::get(&server, "url").is_some_and(|u| labels::text(u) != Some("")) {
        if scheme.is_some() || port.is_some() {
            return Err("defining scheme or port is not allowed when URL is defined".into());
        }
    } else {
        let port = port.unwrap_or_else(|| item.port.clone());
        if port.is_empty() {
            return Err("port is missing".into());
        }
        let scheme = scheme.unwrap_or_else(|| "http".into());
        let url = format!("{scheme}://{}", join_host_port(&item.address, &port));
        let node = doc.synthesize("server url", &url);
        labels::set(&mut server, "url", node);
    }
    labels::set(
        lb,
        "servers",
        Node {
            at: server.at,
            value: crate::config::source::Value::List(vec![server]),
        },
    );
    Ok(())
}

// Merging the instances' configurations.

fn same_router(a: &RouterDraft, b: &RouterDraft) -> bool {
    let refs =
        |r: &RouterDraft| -> Vec<String> { r.middlewares.iter().map(|m| m.name.clone()).collect() };
    a.rule.as_ref().map(|r| r.text()) == b.rule.as_ref().map(|r| r.text())
        && a.priority == b.priority
        && a.service.as_ref().map(|s| &s.name) == b.service.as_ref().map(|s| &s.name)
        && a.entry_points == b.entry_points
        && refs(a) == refs(b)
        && a.refused == b.refused
}

/// Merges `b` into `a` when they can be one service: load balancers equal but for their
/// servers get every server once; anything else must be equal.
fn merge_service(a: &mut ServiceDraft, b: &ServiceDraft) -> bool {
    if a.refused != b.refused {
        return false;
    }
    match (&mut a.spec, &b.spec) {
        (Some(ServiceSpec::LoadBalancer(x)), Some(ServiceSpec::LoadBalancer(y))) => {
            let mut x0 = x.clone();
            x0.servers.clear();
            let mut y0 = y.clone();
            y0.servers.clear();
            if x0 != y0 {
                return false;
            }
            for s in &y.servers {
                if !x.servers.iter().any(|t| t.url == s.url) {
                    x.servers.push(s.clone());
                }
            }
            true
        }
        (x, y) => *x == *y,
    }
}

fn same_middleware(a: &MiddlewareDraft, b: &MiddlewareDraft) -> bool {
    a.kind == b.kind && a.config == b.config
}

/// A definition kept by the merge: where it was first defined, by whom, and whether a later
/// instance contradicted it.
struct Kept<T> {
    item: usize,
    draft: T,
    origins: Vec<String>,
    conflict: bool,
}

fn merge_into<T>(
    map: &mut BTreeMap<String, Kept<T>>,
    item: usize,
    origin: &str,
    draft: T,
    name: &str,
    mut same: impl FnMut(&mut T, &T) -> bool,
) {
    match map.get_mut(name) {
        None => {
            map.insert(
                name.to_owned(),
                Kept {
                    item,
                    draft,
                    origins: vec![origin.to_owned()],
                    conflict: false,
                },
            );
        }
        Some(k) => {
            k.origins.push(origin.to_owned());
            if !same(&mut k.draft, &draft) {
                k.conflict = true;
            }
        }
    }
}

fn merge(configs: Vec<ItemConfig>, notes: &mut Notes) -> Vec<(Source, Part)> {
    let mut routers = BTreeMap::new();
    let mut services = BTreeMap::new();
    let mut middlewares = BTreeMap::new();
    let mut sources = Vec::new();
    for (i, c) in configs.into_iter().enumerate() {
        let origin = c.source.file.clone();
        for r in c.part.routers {
            let name = r.name.clone();
            merge_into(&mut routers, i, &origin, r, &name, |a, b| same_router(a, b));
        }
        for s in c.part.services {
            let name = s.name.clone();
            merge_into(&mut services, i, &origin, s, &name, merge_service);
        }
        for m in c.part.middlewares {
            let name = m.name.clone();
            merge_into(&mut middlewares, i, &origin, m, &name, |a, b| {
                same_middleware(a, b)
            });
        }
        sources.push(c.source);
    }
    let mut parts: Vec<Part> = sources.iter().map(|_| Part::default()).collect();
    let conflict = |notes: &mut Notes, kind: &str, name: &str, origins: &[String]| {
        notes.whole(
            Severity::Refused,
            "consulcatalog",
            format!(
                "{kind} {name} is defined with different configurations by {}: dropped",
                origins.join(" and ")
            ),
        );
    };
    for (name, k) in routers {
        if k.conflict {
            conflict(notes, "router", &name, &k.origins);
        } else {
            parts[k.item].routers.push(k.draft);
        }
    }
    for (name, k) in services {
        if k.conflict {
            conflict(notes, "service", &name, &k.origins);
        } else {
            parts[k.item].services.push(k.draft);
        }
    }
    for (name, k) in middlewares {
        if k.conflict {
            conflict(notes, "middleware", &name, &k.origins);
        } else {
            parts[k.item].middlewares.push(k.draft);
        }
    }
    sources.into_iter().zip(parts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_as_traefik() {
        assert_eq!(normalize("dev/Test"), "dev-Test");
        assert_eq!(normalize("--a..b__c--"), "a-b-c");
        assert_eq!(normalize("Node1-dev/Test-1"), "Node1-dev-Test-1");
        assert_eq!(normalize("héllo wörld"), "héllo-wörld");
    }

    #[test]
    fn fnv1_matches_go() {
        // hash/fnv.New64 of "" is the offset basis; of "a", a published FNV-1 vector.
        assert_eq!(fnv1_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1_64(b"a"), 0xaf63bd4c8601b7be);
    }

    #[test]
    fn join_host_port_brackets_ipv6() {
        assert_eq!(join_host_port("10.0.0.1", "80"), "10.0.0.1:80");
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
    }
}
