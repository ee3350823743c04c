//! `http.services.NAME`: load balancers (servers, health checks), weighted and failover
//! services; what betaroute does not implement is refused by name.

use std::time::Duration;

use super::drafts::{Ref, ServiceDraft};
use super::spec::{HealthSpec, LoadBalancerSpec, ServerSpec, ServiceSpec};
use crate::config::read::{self, Cx, Obj};
use crate::config::source::{Entry, Node, Value};

const SERVICE_KINDS: &[&str] = &[
    "loadBalancer",
    "weighted",
    "failover",
    "mirroring",
    "highestRandomWeight",
];

pub fn read(cx: &mut Cx, e: &Entry) -> ServiceDraft {
    let name = &e.key;
    let mut draft = ServiceDraft {
        name: name.clone(),
        at: e.at,
        spec: None,
        refs: Vec::new(),
        refused: Vec::new(),
    };
    if name.contains('@') {
        cx.error(
            e.at,
            format!("service name {name:?} must not contain '@' (the provider is added to it)"),
        );
    }
    let Some(mut o) = Obj::of(cx, &e.value, format!("service {name}")) else {
        return draft;
    };
    let kinds: Vec<&str> = SERVICE_KINDS
        .iter()
        .copied()
        .filter(|k| o.entry(k).is_some())
        .collect();
    // A misspelt kind is reported as an unknown key at its line; "none" would only repeat it.
    let unknown_keys = match &e.value.value {
        Value::Map(entries) => entries.iter().any(|k| {
            !SERVICE_KINDS
                .iter()
                .chain(&["middlewares"])
                .any(|known| known.eq_ignore_ascii_case(&k.key))
        }),
        _ => false,
    };
    if kinds.len() > 1 || (kinds.is_empty() && !unknown_keys) {
        cx.error(
            e.at,
            format!(
                "service {name}: define exactly one of loadBalancer, weighted, failover, mirroring or highestRandomWeight (found {})",
                if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") }
            ),
        );
    }
    if let Some(r) = o.refuse(
        cx,
        "middlewares",
        "(service middlewares) are not supported yet",
    ) {
        draft.refused.push(r.message);
    }
    for (kind, why) in [
        (
            "mirroring",
            "is not supported yet: traffic mirroring is not implemented",
        ),
        ("highestRandomWeight", "is not supported yet: use weighted"),
    ] {
        if let Some(r) = o.refuse(cx, kind, why) {
            draft.refused.push(r.message);
        }
    }
    if kinds.len() == 1 {
        draft.spec = match kinds[0] {
            "loadBalancer" => o
                .obj(cx, "loadBalancer")
                .and_then(|lb| load_balancer(cx, lb, &mut draft.refused))
                .map(ServiceSpec::LoadBalancer),
            "weighted" => o
                .obj(cx, "weighted")
                .and_then(|w| weighted(cx, w, &mut draft)),
            "failover" => o
                .obj(cx, "failover")
                .and_then(|f| failover(cx, f, &mut draft)),
            _ => None,
        };
    }
    o.finish(
        cx,
        &[
            "loadBalancer",
            "weighted",
            "failover",
            "mirroring",
            "highestRandomWeight",
            "middlewares",
        ],
    );
    if !draft.refused.is_empty() {
        draft.spec = None;
    }
    draft
}

fn load_balancer(cx: &mut Cx, mut lb: Obj, refused: &mut Vec<String>) -> Option<LoadBalancerSpec> {
    let mut servers = Vec::new();
    let mut ok = true;
    match lb.get(cx, "servers") {
        None => {
            cx.error(lb.at, format!("{}: no servers", lb.what()));
            ok = false;
        }
        Some(node) => match &node.value {
            Value::List(items) => {
                if items.is_empty() {
                    cx.error(node.at, format!("{}: servers is empty", lb.what()));
                    ok = false;
                }
                for (i, item) in items.iter().enumerate() {
                    match server(cx, item, &format!("{}: servers[{i}]", lb.what()), refused) {
                        Some(s) => servers.push(s),
                        None => ok = false,
                    }
                }
            }
            _ => {
                cx.error(
                    node.at,
                    format!(
                        "{}: servers: expected a list, found {}",
                        lb.what(),
                        node.kind()
                    ),
                );
                ok = false;
            }
        },
    }
    let health = match lb.obj(cx, "healthCheck") {
        None => None,
        Some(hc) => match health_check(cx, hc, refused) {
            Some(h) => Some(h),
            None => {
                ok = false;
                None
            }
        },
    };
    let pass_host_header = lb.boolean(cx, "passHostHeader").unwrap_or(true);
    // Responses are streamed and flushed as they come, which is what any flush interval asks
    // for at most; the value is read to validate it.
    if let Some(mut rf) = lb.obj(cx, "responseForwarding") {
        rf.duration(cx, "flushInterval");
        rf.finish(cx, &["flushInterval"]);
    }
    if let Some(strategy) = lb.string(cx, "strategy") {
        if !strategy.eq_ignore_ascii_case("wrr") {
            refused.push(
                cx.refuse(
                    lb.at_key("strategy"),
                    format!(
                        "{}: strategy {strategy:?} is not supported yet (betaroute balances by weighted round-robin, wrr)",
                        lb.what()
                    ),
                )
                .message,
            );
        }
    }
    for (key, why) in [
        ("sticky", "(sticky sessions) is not supported yet"),
        ("passiveHealthCheck", "is not supported yet"),
        ("nginxUpstreamHashBy", "is not supported"),
    ] {
        if let Some(r) = lb.refuse(cx, key, why) {
            refused.push(r.message);
        }
    }
    let transport_ref = lb.string(cx, "serversTransport").filter(|s| !s.is_empty());
    lb.finish(
        cx,
        &[
            "servers",
            "healthCheck",
            "passHostHeader",
            "responseForwarding",
            "strategy",
            "sticky",
            "serversTransport",
            "passiveHealthCheck",
        ],
    );
    ok.then_some(LoadBalancerSpec {
        servers,
        health,
        pass_host_header,
        transport_ref,
        transport: None,
    })
}

fn server(cx: &mut Cx, node: &Node, what: &str, refused: &mut Vec<String>) -> Option<ServerSpec> {
    let mut o = Obj::of(cx, node, what)?;
    let url_node = o.get(cx, "url");
    let weight: Option<u32> = o.number(cx, "weight");
    for key in ["preservePath", "fenced"] {
        if o.boolean(cx, key) == Some(true) {
            refused.push(
                cx.refuse(o.at_key(key), format!("{what}: {key} is not supported yet"))
                    .message,
            );
        }
    }
    o.finish(cx, &["url", "weight", "preservePath", "fenced"]);
    let Some(url_node) = url_node else {
        cx.error(node.at, format!("{what}: no url"));
        return None;
    };
    let text = read::string(cx, url_node, &format!("{what}: url"))?;
    match text.parse::<::http::Uri>() {
        Ok(u)
            if matches!(u.scheme_str(), Some("http" | "https" | "h2c"))
                && u.authority().is_some() =>
        {
            Some(ServerSpec {
                url: u,
                weight: weight.unwrap_or(1),
            })
        }
        _ => {
            cx.error(
                url_node.at,
                format!(
                    "{what}: url {text:?} is not http(s)://host[:port][/path] or h2c://host[:port]"
                ),
            );
            None
        }
    }
}

fn health_check(cx: &mut Cx, mut hc: Obj, refused: &mut Vec<String>) -> Option<HealthSpec> {
    let what = hc.what().to_owned();
    let positive = |cx: &mut Cx, hc: &mut Obj, key: &str, default: u64| -> Option<Duration> {
        match hc.duration(cx, key) {
            None if hc.entry(key).is_some() => None,
            None => Some(Duration::from_secs(default)),
            Some(d) if d.is_zero() => {
                cx.error(hc.at_key(key), format!("{what}: {key} must be positive"));
                None
            }
            Some(d) => Some(d),
        }
    };
    let interval = positive(cx, &mut hc, "interval", 30);
    let timeout = positive(cx, &mut hc, "timeout", 5);
    let unhealthy_interval = if hc.entry("unhealthyInterval").is_some() {
        positive(cx, &mut hc, "unhealthyInterval", 30)
    } else {
        interval
    };
    let path = hc.string(cx, "path").unwrap_or_else(|| "/".into());
    let mut ok = true;
    if !path.starts_with('/') {
        cx.error(
            hc.at_key("path"),
            format!("{what}: path must start with '/'"),
        );
        ok = false;
    }
    if let Some(scheme) = hc.string(cx, "scheme") {
        if !scheme.eq_ignore_ascii_case("http") {
            refused.push(
                cx.refuse(
                    hc.at_key("scheme"),
                    format!("{what}: scheme {scheme:?} is not supported yet (only http)"),
                )
                .message,
            );
        }
    }
    if let Some(mode) = hc.string(cx, "mode") {
        if !mode.eq_ignore_ascii_case("http") {
            refused.push(
                cx.refuse(
                    hc.at_key("mode"),
                    format!("{what}: mode {mode:?} is not supported yet (only http)"),
                )
                .message,
            );
        }
    }
    if hc.boolean(cx, "followRedirects") == Some(true) {
        cx.warn(
            hc.at_key("followRedirects"),
            format!("{what}: redirects are not followed: a 3xx answer counts as healthy"),
        );
    }
    let port: Option<u16> = hc.number(cx, "port").filter(|&p| p != 0);
    let status: Option<u16> = hc.number(cx, "status").filter(|&s| s != 0);
    let hostname = hc.string(cx, "hostname");
    let method = hc
        .string(cx, "method")
        .map_or_else(|| "GET".to_owned(), |m| m.to_ascii_uppercase());
    let mut headers = Vec::new();
    if let Some(mut h) = hc.obj(cx, "headers") {
        for e in h.named() {
            if let Some(v) = read::string(cx, &e.value, &format!("{what}: headers.{}", e.key)) {
                headers.push((e.key.clone(), v));
            }
        }
    }
    hc.finish(
        cx,
        &[
            "path",
            "interval",
            "unhealthyInterval",
            "timeout",
            "hostname",
            "port",
            "status",
            "headers",
            "method",
            "scheme",
            "mode",
            "followRedirects",
        ],
    );
    match (interval, timeout, unhealthy_interval, ok) {
        (Some(interval), Some(timeout), Some(unhealthy_interval), true) => Some(HealthSpec {
            path,
            interval,
            unhealthy_interval,
            timeout,
            hostname,
            port,
            status,
            headers,
            method,
        }),
        _ => None,
    }
}

/// `healthCheck: {}` on weighted and failover services asks Traefik to follow the children's
/// health; betaroute always does, so it is honoured as it is. Anything inside is unknown.
fn composite_health(cx: &mut Cx, o: &mut Obj) {
    if let Some(hc) = o.obj(cx, "healthCheck") {
        hc.finish(cx, &[]);
    }
}

fn weighted(cx: &mut Cx, mut w: Obj, draft: &mut ServiceDraft) -> Option<ServiceSpec> {
    let mut children = Vec::new();
    let mut ok = true;
    match w.get(cx, "services") {
        Some(Node {
            value: Value::List(items),
            ..
        }) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let what = format!("{}: services[{i}]", w.what());
                let Some(mut c) = Obj::of(cx, item, what.clone()) else {
                    ok = false;
                    continue;
                };
                let name = c
                    .get(cx, "name")
                    .and_then(|n| read::string(cx, n, &format!("{what}: name")).map(|s| (s, n.at)));
                let weight: u32 = c.number(cx, "weight").unwrap_or(1);
                c.finish(cx, &["name", "weight"]);
                match name {
                    Some((name, at)) => {
                        draft.refs.push(Ref {
                            name: name.clone(),
                            at,
                        });
                        children.push((name, weight));
                    }
                    None => {
                        cx.error(item.at, format!("{what}: no name"));
                        ok = false;
                    }
                }
            }
        }
        _ => {
            cx.error(w.at, format!("{}: services is missing or empty", w.what()));
            ok = false;
        }
    }
    if let Some(r) = w.refuse(cx, "sticky", "(sticky sessions) is not supported yet") {
        draft.refused.push(r.message);
    }
    composite_health(cx, &mut w);
    w.finish(cx, &["services", "sticky", "healthCheck"]);
    ok.then_some(ServiceSpec::Weighted(children))
}

fn failover(cx: &mut Cx, mut f: Obj, draft: &mut ServiceDraft) -> Option<ServiceSpec> {
    let mut get = |cx: &mut Cx, f: &mut Obj, key: &str| -> Option<String> {
        let node = f.get(cx, key);
        let Some(node) = node else {
            cx.error(f.at, format!("{}: no {key}", f.what()));
            return None;
        };
        let s = read::string(cx, node, &f.child(key))?;
        draft.refs.push(Ref {
            name: s.clone(),
            at: node.at,
        });
        Some(s)
    };
    let service = get(cx, &mut f, "service");
    let fallback = get(cx, &mut f, "fallback");
    if let Some(r) = f.refuse(
        cx,
        "errors",
        "(failover on response status) is not supported yet",
    ) {
        draft.refused.push(r.message);
    }
    composite_health(cx, &mut f);
    f.finish(cx, &["service", "fallback", "healthCheck", "errors"]);
    Some(ServiceSpec::Failover {
        service: service?,
        fallback: fallback?,
    })
}
