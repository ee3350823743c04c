//! Admission of routing headers: before anything looks at them, remove what the entry point does
//! not vouch for (every spelling: any case, `_` for `-`), and the signature header itself, which
//! backends never see. Returns why a signature was refused, for the metrics.

use http::header::HeaderName;
use http::request::Parts;

use crate::config::static_config::{RoutingTrust, TrustMode};
use betaroute_core::signature::{self, Rejected};

pub fn apply(t: &RoutingTrust, parts: &mut Parts, now: u64) -> Option<Rejected> {
    let sig_name = t.signature_header.as_str();
    if t.mode == TrustMode::Any {
        parts.headers.remove(sig_name);
        return None;
    }
    let (covered, rejected) = match (t.mode, parts.headers.get(sig_name)) {
        (TrustMode::Signed, Some(value)) => match value.to_str() {
            Ok(value) => match check_signature(t, parts, value, now) {
                Ok(names) => (names, None),
                Err(r) => (Vec::new(), Some(r)),
            },
            Err(_) => (Vec::new(), Some(Rejected::Malformed)),
        },
        (TrustMode::Signed, None) => {
            let forged = parts
                .headers
                .keys()
                .any(|n| t.policy.is_routing_header(n.as_str()));
            (Vec::new(), forged.then_some(Rejected::Missing))
        }
        _ => (Vec::new(), None),
    };
    let doomed: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|n| {
            t.policy.is_routing_header(n.as_str()) && !covered.iter().any(|c| c == n.as_str())
        })
        .cloned()
        .collect();
    for n in doomed {
        parts.headers.remove(n);
    }
    rejected
}

/// The routing header names a valid, fresh signature covers (only names that are routing
/// headers of this entry point are honoured).
fn check_signature(
    t: &RoutingTrust,
    parts: &Parts,
    value: &str,
    now: u64,
) -> Result<Vec<String>, Rejected> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // The host the edge saw and signed: X-Forwarded-Host when it set one, else Host.
    let host = header("x-forwarded-host")
        .map(|h| h.split(',').next().unwrap_or("").trim().to_owned())
        .or_else(|| header("host"))
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let req = signature::Request {
        method: parts.method.as_str(),
        host: &host,
        path: parts.uri.path(),
    };
    let names = signature::verify(&t.keys, value, now, t.fresh, &req, header)?;
    Ok(names
        .into_iter()
        .filter(|n| t.names.iter().any(|r| r == n))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use betaroute_core::signature::RoutingKey;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri("/v1/items");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn trust(mode: TrustMode) -> RoutingTrust {
        let mut t = RoutingTrust::new(&["X-RiksTV-Beta"]);
        t.mode = mode;
        t.keys = vec![RoutingKey::new("k1", vec![7; 32]).unwrap()];
        t
    }

    #[test]
    fn any_keeps_routing_headers_and_drops_the_signature() {
        let mut p = parts(&[("x-rikstv-beta", "true"), ("x-betaroute-signature", "x")]);
        assert_eq!(apply(&trust(TrustMode::Any), &mut p, 1000), None);
        assert!(p.headers.contains_key("x-rikstv-beta"));
        assert!(!p.headers.contains_key("x-betaroute-signature"));
    }

    #[test]
    fn strip_removes_every_spelling() {
        let mut p = parts(&[
            ("X-RiksTV-Beta", "true"),
            ("x_rikstv_beta", "true"),
            ("X-Rikstv_Beta", "true"),
            ("x-other", "1"),
        ]);
        assert_eq!(apply(&trust(TrustMode::Strip), &mut p, 1000), None);
        assert_eq!(p.headers.len(), 1);
        assert!(p.headers.contains_key("x-other"));
    }

    #[test]
    fn signed_without_a_signature_removes_and_counts_the_forgery() {
        let mut p = parts(&[("x_rikstv_beta", "true")]);
        assert_eq!(
            apply(&trust(TrustMode::Signed), &mut p, 1000),
            Some(Rejected::Missing)
        );
        assert!(p.headers.is_empty());
        let mut clean = parts(&[("accept", "*/*")]);
        assert_eq!(apply(&trust(TrustMode::Signed), &mut clean, 1000), None);
    }

    #[test]
    fn signed_keeps_what_a_valid_fresh_signature_covers() {
        let t = trust(TrustMode::Signed);
        let req = signature::Request {
            method: "GET",
            host: "api.example.com",
            path: "/v1/items",
        };
        let sig = signature::sign(&t.keys[0], 1000, &req, &[("X-RiksTV-Beta", Some("true"))]);
        let headers = [
            ("host", "api.example.com"),
            ("x-rikstv-beta", "true"),
            ("x-betaroute-signature", sig.as_str()),
        ];
        let mut p = parts(&headers);
        assert_eq!(apply(&t, &mut p, 1005), None);
        assert_eq!(p.headers.get("x-rikstv-beta").unwrap(), "true");
        assert!(!p.headers.contains_key("x-betaroute-signature"));
        // Too old: removed, and the reason counted.
        let mut stale = parts(&headers);
        assert!(apply(&t, &mut stale, 5000).is_some());
        assert!(!stale.headers.contains_key("x-rikstv-beta"));
    }
}
