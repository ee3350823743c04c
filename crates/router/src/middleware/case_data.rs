//! Reading the transcribed cases (`cases/*.json`): the shapes every harness shares.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::Middleware;
use crate::config::Format;

/// A value or a list of values, as the files write headers and lists.
pub fn values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Headers from `{name: value or [values]}`, every value appended in order.
pub fn header_map(h: &Value) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in h.as_object().into_iter().flatten() {
        let name = HeaderName::from_bytes(k.as_bytes()).unwrap();
        for v in values(v) {
            out.append(name.clone(), HeaderValue::from_str(&v).unwrap());
        }
    }
    out
}

/// Every value of header `k`.
pub fn all(h: &HeaderMap, k: &str) -> Vec<String> {
    h.get_all(k)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The chain of one middleware of `kind` configured as the case says, built by the real
/// configuration reader from a file with one router (and an `error` service for `errors`
/// pages); the router's refusal when it refuses it.
pub fn chain(kind: &str, config: &Value) -> Result<Vec<Arc<Middleware>>, String> {
    let server = serde_json::json!({"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}});
    let config = if config.is_null() {
        serde_json::json!({})
    } else {
        config.clone()
    };
    let doc = serde_json::json!({"http": {
        "routers": {"r": {"rule": "PathPrefix(`/`)", "service": "s", "middlewares": ["m"]}},
        "services": {"s": server, "error": server},
        "middlewares": {"m": {kind: config}},
    }});
    let cfg =
        crate::config::dynamic::parse_dynamic_str("case.yaml", &doc.to_string(), Format::Yaml)
            .map_err(|e| e.to_string())?;
    let r = &cfg.routers[0];
    match &r.refused {
        Some(why) => Err(why.clone()),
        None => Ok(r.chain.clone()),
    }
}
