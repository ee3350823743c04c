//! Traefik's API shape (`pkg/api`), so scripts and dashboards written for Traefik work against
//! betaroute: `/api/http/{routers,services,middlewares}[/{name}]`, `/api/tcp/...` and
//! `/api/udp/...` (always empty: betaroute refuses TCP and UDP), `/api/entrypoints[/{name}]`,
//! `/api/overview`, `/api/version` and `/api/rawdata`, with Traefik's pagination
//! (`page`, `per_page`, `X-Next-Page`), filters (`search`, `status`, `serviceName`,
//! `middlewareName`), sorting (`sortBy`, `direction`) and error bodies. Plus betaroute's own
//! `/api/providers` (each provider's health).
//!
//! Pure: the current state in, a status and JSON out; the admin server does the I/O.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::balancer::Service;
use super::metrics::ProviderHealth;
use super::state::State;
use crate::config::{RouterSpec, ServiceSpec};

/// What the API says of the router's setup beyond the routing state.
#[derive(Debug, Clone)]
pub struct ApiInfo {
    /// Entry points in the static configuration: (name, address as configured).
    pub entry_points: Vec<(String, String)>,
    /// Traefik's names of the providers in use (`File`, `ConsulCatalog`).
    pub providers: Vec<&'static str>,
    pub access_log: bool,
    pub started: SystemTime,
}

/// An answer: status, body, and `X-Next-Page` for lists.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    /// Errors are sent as `text/plain` with a JSON body, as Traefik's `http.Error` does.
    pub error: bool,
    pub next_page: Option<usize>,
}

fn ok(v: Value) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: format!("{v}\n"),
        error: false,
        next_page: None,
    }
}

fn fail(status: StatusCode, message: String) -> Answer {
    Answer {
        status,
        body: format!("{}\n", json!({ "message": message })),
        error: true,
        next_page: None,
    }
}

/// Serves `path` (already percent-decoded per segment by [`route`]) with its query.
pub fn route(
    state: &State,
    info: &ApiInfo,
    providers: &BTreeMap<String, ProviderHealth>,
    raw_path: &str,
    query: &str,
) -> Option<Answer> {
    let q = Query::parse(query);
    let segments: Vec<String> = raw_path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match segs.as_slice() {
        ["api", "http", "routers"] => list(routers(state, info), &q, true),
        ["api", "http", "routers", name] => detail(routers(state, info), name, "router"),
        ["api", "http", "services"] => list(services(state), &q, false),
        ["api", "http", "services", name] => detail(services(state), name, "service"),
        ["api", "http", "middlewares"] => list(middlewares(state), &q, false),
        ["api", "http", "middlewares", name] => detail(middlewares(state), name, "middleware"),
        ["api", "tcp", "routers" | "services" | "middlewares"]
        | ["api", "udp", "routers" | "services"] => list(Vec::new(), &q, false),
        ["api", "tcp", kind @ ("routers" | "services" | "middlewares"), name]
        | ["api", "udp", kind @ ("routers" | "services"), name] => fail(
            StatusCode::NOT_FOUND,
            format!("{} not found: {name}", kind.trim_end_matches('s')),
        ),
        ["api", "entrypoints"] => paginate(entry_points(info), &q),
        ["api", "entrypoints", name] => {
            match entry_points(info).into_iter().find(|e| e["name"] == *name) {
                Some(e) => ok(e),
                None => fail(
                    StatusCode::NOT_FOUND,
                    format!("entry point not found: {name}"),
                ),
            }
        }
        ["api", "overview"] => ok(overview(state, info)),
        ["api", "rawdata"] => ok(rawdata(state, info)),
        ["api", "version"] => ok(json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "Codename": "betaroute",
            "startDate": rfc3339(info.started),
        })),
        ["api", "providers"] => ok(Value::Array(
            providers
                .iter()
                .map(|(name, h)| {
                    json!({
                        "name": name,
                        "up": h.up,
                        "error": h.error,
                        "lastChange": h.last_change.map(rfc3339),
                        "lastSuccess": h.last_success.map(rfc3339),
                        "changes": h.changes,
                        "failures": h.failures,
                    })
                })
                .collect(),
        )),
        _ => return None,
    })
}

/// Traefik's query parameters (the first value of each wins; empty is absent).
#[derive(Default)]
struct Query {
    values: BTreeMap<String, String>,
}

impl Query {
    fn parse(q: &str) -> Query {
        let mut values = BTreeMap::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = query_decode(k);
            let v = query_decode(v);
            if !v.is_empty() {
                values.entry(k).or_insert(v);
            }
        }
        Query { values }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Go's RFC 3339 with nanoseconds, in UTC.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    let nanos = d.subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn go_duration(d: std::time::Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".into();
    }
    if total < 1_000_000_000 {
        return if total.is_multiple_of(1_000_000) {
            format!("{}ms", total / 1_000_000)
        } else if total.is_multiple_of(1_000) {
            format!("{}µs", total / 1_000)
        } else {
            format!("{total}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sub = d.subsec_nanos();
    let s_text = if sub == 0 {
        format!("{s}")
    } else {
        format!("{s}.{sub:09}").trim_end_matches('0').to_owned()
    };
    match (h, m) {
        (0, 0) => format!("{s_text}s"),
        (0, m) => format!("{m}m{s_text}s"),
        (h, m) => format!("{h}h{m}m{s_text}s"),
    }
}

fn provider_of(name: &str) -> &str {
    name.split_once('@').map_or("", |(_, p)| p)
}

fn status(errors: &[String]) -> &'static str {
    if errors.is_empty() {
        "enabled"
    } else {
        "disabled"
    }
}

fn router_errors(r: &RouterSpec) -> Vec<String> {
    r.refused
        .as_ref()
        .map(|s| s.split("; ").map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Every router in Traefik's shape, with `name`, `provider` and `priorityStr`.
fn routers(state: &State, info: &ApiInfo) -> Vec<Value> {
    let all_eps: Vec<String> = {
        let mut v: Vec<String> = info.entry_points.iter().map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    };
    state
        .config
        .routers
        .iter()
        .map(|r| {
            let eps = r.entry_points.clone().unwrap_or_else(|| all_eps.clone());
            let mut using: Vec<String> = eps
                .iter()
                .filter(|e| all_eps.contains(e))
                .cloned()
                .collect();
            using.sort();
            using.dedup();
            let priority = r
                .priority
                .filter(|p| *p != 0)
                .unwrap_or_else(|| r.rule.default_priority());
            let errors = router_errors(r);
            let mut v = Map::new();
            v.insert("entryPoints".into(), json!(eps));
            if !r.middlewares.is_empty() {
                v.insert("middlewares".into(), json!(r.middlewares));
            }
            v.insert("service".into(), json!(r.service_written));
            v.insert("rule".into(), json!(r.rule.text()));
            if let Some(t) = &r.tls {
                // Traefik shows the options as resolved (`default`, `name@provider`).
                v.insert("tls".into(), json!({"options": t.options}));
            }
            if priority != 0 {
                v.insert("priority".into(), json!(priority));
            }
            if !errors.is_empty() {
                v.insert("error".into(), json!(errors));
            }
            v.insert("status".into(), json!(status(&errors)));
            if !using.is_empty() {
                v.insert("using".into(), json!(using));
            }
            v.insert("name".into(), json!(r.name));
            v.insert("provider".into(), json!(provider_of(&r.name)));
            v.insert("priorityStr".into(), json!(priority.to_string()));
            Value::Object(v)
        })
        .collect()
}

fn used_by(state: &State, service: &str) -> Vec<String> {
    let mut v: Vec<String> = state
        .config
        .routers
        .iter()
        .filter(|r| r.service == service)
        .map(|r| r.name.clone())
        .collect();
    v.sort();
    v
}

/// Every service in Traefik's shape; refused ones are `disabled` with their reason.
fn services(state: &State) -> Vec<Value> {
    let c = &state.config;
    let mut out = Vec::new();
    for (name, spec) in &c.services {
        let mut v = Map::new();
        let kind = match spec {
            ServiceSpec::LoadBalancer(lb) => {
                let servers: Vec<Value> = lb
                    .servers
                    .iter()
                    .map(|s| {
                        let mut o = json!({"url": s.url.to_string()});
                        if s.weight != 1 {
                            o["weight"] = json!(s.weight);
                        }
                        o
                    })
                    .collect();
                let mut lbv = json!({"servers": servers, "strategy": "wrr"});
                if let Some(h) = &lb.health {
                    let mut hc = json!({
                        "path": h.path,
                        "method": h.method,
                        "interval": go_duration(h.interval),
                        "unhealthyInterval": go_duration(h.unhealthy_interval),
                        "timeout": go_duration(h.timeout),
                    });
                    if let Some(p) = h.port {
                        hc["port"] = json!(p);
                    }
                    if let Some(s) = h.status {
                        hc["status"] = json!(s);
                    }
                    if let Some(host) = &h.hostname {
                        hc["hostname"] = json!(host);
                    }
                    if !h.headers.is_empty() {
                        hc["headers"] = Value::Object(
                            h.headers
                                .iter()
                                .map(|(k, v)| (k.clone(), json!(v)))
                                .collect(),
                        );
                    }
                    lbv["healthCheck"] = hc;
                }
                lbv["passHostHeader"] = json!(lb.pass_host_header);
                v.insert("loadBalancer".into(), lbv);
                "loadbalancer"
            }
            ServiceSpec::Weighted(children) => {
                let services: Vec<Value> = children
                    .iter()
                    .map(|(n, w)| json!({"name": n, "weight": w}))
                    .collect();
                v.insert("weighted".into(), json!({ "services": services }));
                "weighted"
            }
            ServiceSpec::Failover { service, fallback } => {
                v.insert(
                    "failover".into(),
                    json!({"service": service, "fallback": fallback}),
                );
                "failover"
            }
        };
        v.insert("status".into(), json!("enabled"));
        let users = used_by(state, name);
        if !users.is_empty() {
            v.insert("usedBy".into(), json!(users));
        }
        v.insert("name".into(), json!(name));
        v.insert("provider".into(), json!(provider_of(name)));
        v.insert("type".into(), json!(kind));
        if let Some(Service::LoadBalancer(lb)) = state.services.get(name).map(|s| &**s) {
            let status: Map<String, Value> = lb
                .servers
                .iter()
                .map(|s| {
                    let up = if s.available() { "UP" } else { "DOWN" };
                    (s.url.to_string(), json!(up))
                })
                .collect();
            v.insert("serverStatus".into(), Value::Object(status));
        }
        out.push(Value::Object(v));
    }
    for (name, why) in &c.refused_services {
        let mut v = Map::new();
        v.insert("error".into(), json!([why]));
        v.insert("status".into(), json!("disabled"));
        let users = used_by(state, name);
        if !users.is_empty() {
            v.insert("usedBy".into(), json!(users));
        }
        v.insert("name".into(), json!(name));
        v.insert("provider".into(), json!(provider_of(name)));
        out.push(Value::Object(v));
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// Middlewares: defined, none served yet, so each is `disabled` with the reason.
fn middlewares(state: &State) -> Vec<Value> {
    state
        .config
        .middlewares
        .iter()
        .map(|(name, kind)| {
            let mut users: Vec<String> = state
                .config
                .routers
                .iter()
                .filter(|r| r.middlewares.iter().any(|m| m == name))
                .map(|r| r.name.clone())
                .collect();
            users.sort();
            let mut v = Map::new();
            v.insert(kind.clone(), json!({}));
            v.insert(
                "error".into(),
                json!([format!("middleware {kind} is not supported yet")]),
            );
            v.insert("status".into(), json!("disabled"));
            if !users.is_empty() {
                v.insert("usedBy".into(), json!(users));
            }
            v.insert("name".into(), json!(name));
            v.insert("provider".into(), json!(provider_of(name)));
            v.insert("type".into(), json!(kind.to_ascii_lowercase()));
            Value::Object(v)
        })
        .collect()
}

fn entry_points(info: &ApiInfo) -> Vec<Value> {
    let mut v: Vec<Value> = info
        .entry_points
        .iter()
        .map(|(name, address)| json!({"address": address, "http": {}, "name": name}))
        .collect();
    v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    v
}

fn counts(items: &[Value]) -> Value {
    let n = |s: &str| items.iter().filter(|i| i["status"] == s).count();
    json!({"total": items.len(), "warnings": n("warning"), "errors": n("disabled")})
}

fn overview(state: &State, info: &ApiInfo) -> Value {
    let zero = json!({"total": 0, "warnings": 0, "errors": 0});
    let mut v = json!({
        "http": {
            "routers": counts(&routers(state, info)),
            "services": counts(&services(state)),
            "middlewares": counts(&middlewares(state)),
        },
        "tcp": {"routers": zero, "services": zero, "middlewares": zero},
        "udp": {"routers": zero, "services": zero},
        "certificates": zero,
        "features": {"tracing": "", "metrics": "Prometheus", "accessLog": info.access_log},
    });
    if !info.providers.is_empty() {
        v["providers"] = json!(info.providers);
    }
    v
}

/// Traefik's `/api/rawdata`: the runtime configuration keyed by qualified name, without the
/// representation extras.
fn rawdata(state: &State, info: &ApiInfo) -> Value {
    let strip = |items: Vec<Value>, extras: &[&str]| -> Map<String, Value> {
        items
            .into_iter()
            .map(|mut v| {
                let name = v["name"].as_str().unwrap_or_default().to_owned();
                if let Some(o) = v.as_object_mut() {
                    for e in extras {
                        o.remove(*e);
                    }
                }
                (name, v)
            })
            .collect()
    };
    let mut out = Map::new();
    for (key, map) in [
        (
            "routers",
            strip(routers(state, info), &["name", "provider", "priorityStr"]),
        ),
        (
            "middlewares",
            strip(middlewares(state), &["name", "provider", "type"]),
        ),
        (
            "services",
            strip(services(state), &["name", "provider", "type"]),
        ),
    ] {
        if !map.is_empty() {
            out.insert(key.into(), Value::Object(map));
        }
    }
    Value::Object(out)
}

/// Filters, sorts and pages a list, as Traefik's `criterion.go` and `sort.go`.
fn list(mut items: Vec<Value>, q: &Query, is_router: bool) -> Answer {
    let lower = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_lowercase();
    if let Some(s) = q.get("search") {
        let s = s.to_lowercase();
        items.retain(|v| {
            lower(v, "name").contains(&s) || (is_router && lower(v, "rule").contains(&s))
        });
    }
    if let Some(st) = q.get("status") {
        items.retain(|v| {
            v["status"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(st))
        });
    }
    if is_router {
        if let Some(sn) = q.get("serviceName") {
            items.retain(|v| {
                let svc = v["service"].as_str().unwrap_or_default();
                if svc.contains('@') {
                    svc == sn
                } else {
                    sn.split('@').next() == Some(svc)
                }
            });
        }
        if let Some(mn) = q.get("middlewareName") {
            items.retain(|v| {
                v["middlewares"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x == mn))
            });
        }
    }
    let by = q.get("sortBy").unwrap_or("name");
    let asc = q.get("direction").is_none_or(|d| d == "asc");
    let key = |v: &Value| -> (String, i64) {
        match by {
            "priority" => (String::new(), v["priority"].as_i64().unwrap_or(0)),
            "entryPoints" => (
                String::new(),
                v["entryPoints"].as_array().map_or(0, |a| a.len() as i64),
            ),
            "servers" => (
                String::new(),
                v["loadBalancer"]["servers"]
                    .as_array()
                    .map_or(0, |a| a.len() as i64),
            ),
            "provider" | "status" | "rule" | "service" | "type" => {
                (v[by].as_str().unwrap_or_default().to_owned(), 0)
            }
            _ => (v["name"].as_str().unwrap_or_default().to_owned(), 0),
        }
    };
    items.sort_by(|a, b| {
        let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_owned();
        let o = key(a).cmp(&key(b)).then_with(|| name(a).cmp(&name(b)));
        if asc {
            o
        } else {
            o.reverse()
        }
    });
    paginate(items, q)
}

fn paginate(items: Vec<Value>, q: &Query) -> Answer {
    let number = |k: &str, default: i64| -> Result<i64, i64> {
        match q.get(k) {
            None => Ok(default),
            Some(t) => match t.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                Ok(n) => Err(n),
                Err(_) => Err(0),
            },
        }
    };
    let per_page = match number("per_page", 100) {
        Ok(n) => n as usize,
        Err(n) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("invalid request: per_page: {n}"),
            )
        }
    };
    let page = match number("page", 1) {
        Ok(n) => n as usize,
        Err(n) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("invalid request: page: {n}"),
            )
        }
    };
    let start = (page - 1).saturating_mul(per_page);
    if start != 0 && start >= items.len() {
        return fail(
            StatusCode::BAD_REQUEST,
            format!("invalid request: page: {page}, per_page: {per_page}"),
        );
    }
    let end = (start + per_page).min(items.len());
    let next = if page.saturating_mul(per_page) < items.len() {
        page + 1
    } else {
        1
    };
    let mut a = ok(Value::Array(items[start..end].to_vec()));
    a.next_page = Some(next);
    a
}

fn detail(items: Vec<Value>, name: &str, what: &str) -> Answer {
    match items.into_iter().find(|v| v["name"] == name) {
        Some(v) => ok(v),
        None => fail(StatusCode::NOT_FOUND, format!("{what} not found: {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_print_as_go() {
        use std::time::Duration;
        assert_eq!(go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn dates_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_785_000_000, 120_000_000);
        assert_eq!(rfc3339(t), "2026-07-25T17:20:00.12Z");
    }

    #[test]
    fn pages_as_traefik() {
        let items: Vec<Value> = (0..19)
            .map(|i| json!({"name": format!("r{i:02}@file")}))
            .collect();
        let a = paginate(items.clone(), &Query::parse("page=3&per_page=7"));
        assert_eq!(a.next_page, Some(1));
        assert_eq!(
            serde_json::from_str::<Value>(&a.body)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            5
        );
        let a = paginate(items[..3].to_vec(), &Query::parse("page=2&per_page=1"));
        assert_eq!(a.next_page, Some(3));
        let a = paginate(items[..5].to_vec(), &Query::parse("page=2&per_page=10"));
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                "{\"message\":\"invalid request: page: 2, per_page: 10\"}\n"
            )
        );
        let a = paginate(items.clone(), &Query::parse("per_page=abc"));
        assert!(a.body.contains("per_page: 0"));
        let a = paginate(Vec::new(), &Query::parse(""));
        assert_eq!((a.body.as_str(), a.next_page), ("[]\n", Some(1)));
    }

    #[test]
    fn names_decode_and_sort() {
        assert_eq!(percent_decode("bar%40file"), "bar@file");
        assert_eq!(percent_decode("foo%20%2F%20bar@p"), "foo / bar@p");
        assert_eq!(percent_decode("a+b"), "a+b");
        let items = vec![
            json!({"name": "b@file"}),
            json!({"name": "a@file"}),
            json!({"name": "C@file"}),
        ];
        let a = list(items.clone(), &Query::parse(""), false);
        assert_eq!(
            a.body,
            "[{\"name\":\"C@file\"},{\"name\":\"a@file\"},{\"name\":\"b@file\"}]\n"
        );
        let a = list(items, &Query::parse("direction=ASC"), false);
        assert!(
            a.body.starts_with("[{\"name\":\"b@file\"}"),
            "only `asc` is ascending"
        );
    }
}
