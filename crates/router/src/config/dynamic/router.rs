//! `http.routers.NAME`: rule, service, priority, entry points, middlewares, `tls` (its options;
//! `certResolver` refused, as ACME cannot work offline); `parentRefs` refused; `observability`
//! accepted with a warning.

use betaroute_core::rules::Rule;

use super::drafts::{Ref, RouterDraft, RouterTlsDraft};
use crate::config::read::{self, Cx, Obj};
use crate::config::source::{Entry, Node, Value};

/// Traefik refuses priorities above this for user routers (its internal routers sit above).
pub const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;

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

pub fn read(cx: &mut Cx, e: &Entry) -> Option<RouterDraft> {
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
    let tls = router_tls(cx, &mut o, name, &mut refused);
    if let Some(r) = refuse_set(
        cx,
        &mut o,
        "parentRefs",
        "(multi-layer routing) is not supported yet",
    ) {
        refused.push(r);
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
        tls,
    })
}

/// `tls`: `true` or a table (`{}`, `options`, `domains`, `certResolver`) makes the router a TLS
/// router, served on TLS connections only.
fn router_tls(
    cx: &mut Cx,
    o: &mut Obj,
    name: &str,
    refused: &mut Vec<String>,
) -> Option<RouterTlsDraft> {
    let node = o.get(cx, "tls")?;
    if let Value::Scalar { text, .. } = &node.value {
        return match read::boolean(cx, node, &format!("router {name}: tls"))? {
            true => Some(RouterTlsDraft::default()),
            false => {
                let _ = text;
                None
            }
        };
    }
    let mut t = Obj::of(cx, node, format!("router {name}: tls"))?;
    let options = t.get(cx, "options").and_then(|n| {
        read::string(cx, n, &format!("router {name}: tls.options"))
            .filter(|s| !s.is_empty())
            .map(|s| Ref { name: s, at: n.at })
    });
    if let Some(e) = t.refuse(
        cx,
        "certResolver",
        "(ACME) cannot work offline: give the router's certificates in tls.certificates and remove certResolver",
    ) {
        refused.push(e.message);
    }
    if let Some(d) = t.get(cx, "domains") {
        if !matches!(&d.value, Value::Null) {
            cx.warn(
                d.at,
                format!("router {name}: tls.domains only tells a certificate resolver what to ask for; without one it changes nothing, as in Traefik"),
            );
        }
    }
    t.refuse(
        cx,
        "passthrough",
        "is for TCP routers; HTTP routers terminate TLS",
    );
    t.finish(cx, &["options", "certResolver", "domains", "passthrough"]);
    Some(RouterTlsDraft { options })
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
