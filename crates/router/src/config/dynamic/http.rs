//! One dynamic configuration file, read key by key: Traefik's `http` section as its v3 reference
//! defines it. What betaroute implements is read; what it does not is refused by name at its
//! line (its router is then not served); anything else is an unknown key, as in Traefik.

use std::time::Duration;

use betaroute_core::rules::Rule;

use super::spec::{HealthSpec, LoadBalancerSpec, ServerSpec, ServiceSpec};
use crate::config::read::{self, Cx, Obj};
use crate::config::source::{Entry, Node, Value};

/// Traefik's middleware kinds (v3.7), all refused until betaroute implements them.
pub const MIDDLEWARE_KINDS: &[&str] = &[
    "addPrefix",
    "basicAuth",
    "buffering",
    "chain",
    "circuitBreaker",
    "compress",
    "contentType",
    "digestAuth",
    "encodedCharacters",
    "errors",
    "forwardAuth",
    "grpcWeb",
    "headers",
    "inFlightReq",
    "ipAllowList",
    "ipWhiteList",
    "passTLSClientCert",
    "plugin",
    "rateLimit",
    "redirectRegex",
    "redirectScheme",
    "replacePath",
    "replacePathRegex",
    "retry",
    "stripPrefix",
    "stripPrefixRegex",
    // Kinds Traefik's Kubernetes Gateway and ingress-nginx providers generate.
    "requestHeaderModifier",
    "responseHeaderModifier",
    "requestRedirect",
    "URLRewrite",
    "authTLSPassCertificateToUpstream",
    "snippet",
    "rewriteTarget",
    "upstreamVHost",
    "appRoot",
];

/// A reference to another object, as written (`api`, `api@file`), and where.
#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub at: usize,
}

#[derive(Debug)]
pub struct RouterDraft {
    pub name: String,
    pub at: usize,
    /// `None` when the rule is missing or invalid (already reported).
    pub rule: Option<Rule>,
    pub priority: Option<i64>,
    pub service: Option<Ref>,
    pub entry_points: Option<Vec<String>>,
    pub middlewares: Vec<Ref>,
    /// Features of the router itself that betaroute refuses.
    pub refused: Vec<String>,
}

#[derive(Debug)]
pub struct ServiceDraft {
    pub name: String,
    pub at: usize,
    /// `None` when the service is refused or invalid (already reported).
    pub spec: Option<ServiceSpec>,
    /// Services this one points at (weighted, failover), for reference checks.
    pub refs: Vec<Ref>,
    pub refused: Vec<String>,
}

#[derive(Debug)]
pub struct MiddlewareDraft {
    pub name: String,
    pub at: usize,
    pub kind: String,
}

/// Everything one file defines.
#[derive(Debug, Default)]
pub struct Part {
    pub routers: Vec<RouterDraft>,
    pub services: Vec<ServiceDraft>,
    pub middlewares: Vec<MiddlewareDraft>,
}

/// Traefik refuses priorities above this for user routers (its internal routers sit above).
pub const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;

pub fn read_file(cx: &mut Cx, tree: &Node) -> Part {
    let mut part = Part::default();
    let Some(mut top) = Obj::of(cx, tree, "dynamic configuration") else {
        return part;
    };
    for (key, what) in [
        ("tcp", "TCP routers and services"),
        ("udp", "UDP routers and services"),
        ("tls", "TLS certificates, options and stores"),
    ] {
        top.refuse(
            cx,
            key,
            &format!("is not supported yet: {what} in this file are not served"),
        );
    }
    if let Some(mut http) = top.obj(cx, "http") {
        if let Some(mut routers) = http.obj(cx, "routers") {
            for e in routers.named() {
                if let Some(r) = router(cx, e) {
                    part.routers.push(r);
                }
            }
        }
        if let Some(mut services) = http.obj(cx, "services") {
            for e in services.named() {
                part.services.push(service(cx, e));
            }
        }
        if let Some(mut middlewares) = http.obj(cx, "middlewares") {
            for e in middlewares.named() {
                if let Some(m) = middleware(cx, e) {
                    part.middlewares.push(m);
                }
            }
        }
        if let Some(mut transports) = http.obj(cx, "serversTransports") {
            for e in transports.named() {
                cx.refuse(
                    e.at,
                    format!(
                        "serversTransport {}: servers transports are not supported yet",
                        e.key
                    ),
                );
            }
        }
        http.refuse(
            cx,
            "models",
            "(entry point router models) is not supported yet",
        );
        http.finish(
            cx,
            &[
                "routers",
                "services",
                "middlewares",
                "serversTransports",
                "models",
            ],
        );
    }
    top.finish(cx, &["http", "tcp", "udp", "tls"]);
    part
}

const ROUTER_KEYS: &[&str] = &[
    "rule",
    "service",
    "priority",
    "entryPoints",
    "middlewares",
    "ruleSyntax",
    "tls",
    "observability",
    "parentRefs",
];

fn router(cx: &mut Cx, e: &Entry) -> Option<RouterDraft> {
    let name = &e.key;
    if name.contains('@') {
        cx.error(
            e.at,
            format!("router name {name:?} must not contain '@' (the provider is added to it)"),
        );
    }
    let mut o = Obj::of(cx, &e.value, format!("router {name}"))?;
    let mut refused = Vec::new();
    let rule = match o.get(cx, "rule") {
        None => {
            cx.error(
                e.at,
                format!("router {name}: no rule (add rule: Host(`...`))"),
            );
            None
        }
        Some(node) => read::string(cx, node, &o.child("rule"))
            .and_then(|text| compile_rule(cx, name, node, &text)),
    };
    let service = match o.get(cx, "service") {
        None => {
            cx.error(e.at, format!("router {name}: no service"));
            None
        }
        Some(node) => read::string(cx, node, &o.child("service")).map(|s| Ref {
            name: s,
            at: node.at,
        }),
    };
    let priority = o.get(cx, "priority").and_then(|node| {
        let p: i64 = read::number(cx, node, &o.child("priority"))?;
        if p > MAX_USER_PRIORITY {
            cx.error(
                node.at,
                format!(
                    "router {name}: priority {p} exceeds the maximum user-defined priority {MAX_USER_PRIORITY} (higher ones are reserved for internal routers)"
                ),
            );
            return None;
        }
        Some(p)
    });
    let entry_points = o
        .strings(cx, "entryPoints")
        .map(|v| v.into_iter().map(|(s, _)| s).collect());
    let middlewares = o
        .strings(cx, "middlewares")
        .unwrap_or_default()
        .into_iter()
        .map(|(name, at)| Ref { name, at })
        .collect();
    if let Some(syntax) = o.string(cx, "ruleSyntax") {
        if !syntax.eq_ignore_ascii_case("v3") {
            cx.error(
                o.at_key("ruleSyntax"),
                format!("router {name}: ruleSyntax {syntax:?}: only v3 rules are supported"),
            );
        }
    }
    for (key, why) in [
        (
            "tls",
            "is not supported yet: TLS termination at the router is not implemented",
        ),
        ("parentRefs", "(multi-layer routing) is not supported yet"),
    ] {
        if let Some(r) = refuse_set(cx, &mut o, key, why) {
            refused.push(r);
        }
    }
    o.ignore(
        cx,
        "observability",
        "per-router access log, metrics and tracing switches are not implemented; betaroute logs and counts every router",
    );
    o.finish(cx, ROUTER_KEYS);
    Some(RouterDraft {
        name: name.clone(),
        at: e.at,
        rule,
        priority,
        service,
        entry_points,
        middlewares,
        refused,
    })
}

/// Refuses a key set to anything but nothing or `false` (`tls: {}` and `tls: true` both set TLS).
fn refuse_set(cx: &mut Cx, o: &mut Obj, key: &str, why: &str) -> Option<String> {
    if let Some(Node {
        value: Value::Scalar { text, .. },
        ..
    }) = o.entry(key).map(|e| &e.value)
    {
        if text.eq_ignore_ascii_case("false") {
            o.get(cx, key);
            return None;
        }
    }
    o.refuse(cx, key, why).map(|e| e.message)
}

fn compile_rule(cx: &mut Cx, router: &str, node: &Node, text: &str) -> Option<Rule> {
    match Rule::compile(text) {
        Ok(rule) => Some(rule),
        Err(e) => {
            // The value's position is its opening quote when quoted.
            let quoted = cx.src.text[node.at.min(cx.src.text.len())..].starts_with(['"', '\'']);
            let quote = usize::from(quoted);
            let mut err = cx.src.error(
                node.at + quote + e.span.start,
                format!("router {router}: invalid rule: {}", e.kind),
            );
            err.snippet = Some(e.caret(text));
            cx.diagnostics.push(read::Diagnostic {
                severity: read::Severity::Error,
                error: err,
            });
            None
        }
    }
}

const SERVICE_KINDS: &[&str] = &[
    "loadBalancer",
    "weighted",
    "failover",
    "mirroring",
    "highestRandomWeight",
];

fn service(cx: &mut Cx, e: &Entry) -> ServiceDraft {
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
        (
            "serversTransport",
            "is not supported yet: servers transports are not implemented",
        ),
        ("passiveHealthCheck", "is not supported yet"),
        ("nginxUpstreamHashBy", "is not supported"),
    ] {
        if let Some(r) = lb.refuse(cx, key, why) {
            refused.push(r.message);
        }
    }
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
        Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => Some(ServerSpec {
            url: u,
            weight: weight.unwrap_or(1),
        }),
        Ok(u) if matches!(u.scheme_str(), Some("https" | "h2c")) && u.authority().is_some() => {
            refused.push(
                cx.refuse(
                    url_node.at,
                    format!(
                        "{what}: {}:// backends are not supported yet",
                        u.scheme_str().unwrap_or_default()
                    ),
                )
                .message,
            );
            None
        }
        _ => {
            cx.error(
                url_node.at,
                format!("{what}: url {text:?} is not http://host[:port][/path]"),
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

fn middleware(cx: &mut Cx, e: &Entry) -> Option<MiddlewareDraft> {
    let name = &e.key;
    let what = format!("middleware {name}");
    let Value::Map(entries) = &e.value.value else {
        cx.error(
            e.at,
            format!("{what}: expected a table with its type (e.g. basicAuth)"),
        );
        return None;
    };
    let mut kinds = Vec::new();
    for k in entries {
        match MIDDLEWARE_KINDS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(&k.key))
        {
            Some(kind) => kinds.push((*kind, k.at)),
            None => cx.error(k.at, format!("{what}: unknown middleware type {:?}", k.key)),
        }
    }
    match kinds.as_slice() {
        [(kind, _)] => Some(MiddlewareDraft {
            name: name.clone(),
            at: e.at,
            kind: (*kind).to_owned(),
        }),
        [] => {
            cx.error(e.at, format!("{what}: no middleware type (e.g. basicAuth)"));
            None
        }
        [_, (_, at), ..] => {
            cx.error(*at, format!("{what}: one middleware type per middleware"));
            None
        }
    }
}
