//! Reading the transcribed cases (`cases/*.json`): the shapes every harness shares.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

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
