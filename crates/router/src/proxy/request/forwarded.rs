//! What a proxy changes in the headers it passes on: hop-by-hop headers removed both ways
//! (RFC 9110 7.6.1, and those the Connection header names), and the X-Forwarded-* family set
//! as Traefik does, replacing what an untrusted peer claims.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The X-Forwarded-* headers betaroute sets; from untrusted peers they are replaced. The two
/// `passTLSClientCert` sets are among them (as in Traefik's `forwardedheaders.XHeadersSet`), so
/// that a client can never hand a backend a certificate of its own making, with or without
/// that middleware on the route.
const FORWARDED: [&str; 8] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-real-ip",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
];

/// Hop-by-hop headers (RFC 9110 7.6.1).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-authorization"
    )
}

/// Removes hop-by-hop headers, those the Connection header names, and, when `forwarded` is set,
/// the X-Forwarded-* family. One pass over the (few) headers present instead of a hash lookup
/// per name that might be: this runs twice per request.
/// Removes an untrusted peer's X-Forwarded-* headers (the forwarded part of
/// [`strip_hop_by_hop`]), before the middlewares read or set them.
pub fn strip_forwarded(h: &mut HeaderMap) {
    for name in FORWARDED {
        h.remove(name as &str);
    }
}

pub fn strip_hop_by_hop(h: &mut HeaderMap, forwarded: bool) {
    // Empty in the common case, and an empty Vec does not allocate.
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in h.keys() {
        if is_hop_by_hop(name) || (forwarded && FORWARDED.contains(&name.as_str())) {
            doomed.push(name.clone());
        }
    }
    if doomed.is_empty() {
        return;
    }
    for v in h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for n in v.split(',') {
            if let Ok(n) = HeaderName::from_bytes(n.trim().as_bytes()) {
                doomed.push(n);
            }
        }
    }
    for n in doomed {
        h.remove(n);
    }
}

/// The protocol an HTTP/1.1 request asks to upgrade to (RFC 9110 7.8): its `Upgrade` value
/// when `Connection` names `upgrade`. Only then are the two headers passed on. `h2c` is not
/// one: RFC 9113 3.1 deprecates that upgrade, so the request is answered in HTTP/1.1 (as
/// Traefik does) rather than tunnelled to a backend whose HTTP/2 streams no rule would see.
pub fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asked = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = h.get(header::UPGRADE).filter(|_| asked)?;
    let h2c = protocol
        .to_str()
        .is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c")));
    (!h2c).then(|| protocol.clone())
}

/// Puts back, after the hop-by-hop headers went, the two that carry an upgrade.
pub fn restore_upgrade(h: &mut HeaderMap, protocol: HeaderValue) {
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, protocol);
}

/// Traefik's X-Forwarded-Proto: `ws`/`wss` for a WebSocket handshake, else `http`/`https`.
pub fn proto(tls: bool, websocket: bool) -> &'static str {
    match (websocket, tls) {
        (true, true) => "wss",
        (true, false) => "ws",
        (false, true) => "https",
        (false, false) => "http",
    }
}

/// Sets X-Forwarded-For (appending the peer), X-Real-IP, and, unless a trusted peer set them,
/// X-Forwarded-Proto and X-Forwarded-Host. Call after [`strip_hop_by_hop`] has removed an
/// untrusted peer's values.
pub fn set_forwarded(
    h: &mut HeaderMap,
    peer: &str,
    peer_value: &HeaderValue,
    original_host: Option<&HeaderValue>,
    proto: &'static str,
) {
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {peer}")).ok(),
        None => Some(peer_value.clone()),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    h.insert(X_REAL_IP.clone(), peer_value.clone());
    if !h.contains_key(&X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if !h.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = original_host {
            h.insert(X_FORWARDED_HOST.clone(), host.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-forwarded-for", "6.6.6.6"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "x-forwarded-for"]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn an_upgrade_is_asked_by_connection_and_upgrade_together() {
        let ws = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(upgrade_of(&ws).unwrap(), "websocket");
        assert_eq!(upgrade_of(&map(&[("upgrade", "websocket")])), None);
        assert_eq!(upgrade_of(&map(&[("connection", "upgrade")])), None);
        assert_eq!(
            upgrade_of(&map(&[
                ("connection", "upgraded"),
                ("upgrade", "websocket")
            ])),
            None
        );
        let h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ]);
        assert_eq!(upgrade_of(&h2c), None, "RFC 9113 3.1: answered in HTTP/1.1");
    }

    #[test]
    fn forwarded_headers_from_untrusted_peers_are_replaced() {
        let peer: HeaderValue = "10.1.2.3".parse().unwrap();
        let host: HeaderValue = "api.example.com".parse().unwrap();
        let mut h = map(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-host", "evil")]);
        strip_hop_by_hop(&mut h, true);
        set_forwarded(&mut h, "10.1.2.3", &peer, Some(&host), "http");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-real-ip"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
    }

    #[test]
    fn client_certificate_headers_from_untrusted_peers_go() {
        let sent = [
            ("x-forwarded-tls-client-cert", "forged"),
            (
                "x-forwarded-tls-client-cert-info",
                "Subject%3D%22CN%3Dadmin%22",
            ),
            ("accept", "*/*"),
        ];
        // Before the middlewares (a route with some), and when preparing (a route without).
        let mut h = map(&sent);
        strip_forwarded(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
        let mut h = map(&sent);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
        // A trusted peer's are kept, as Traefik keeps them.
        let mut h = map(&sent);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn forwarded_headers_from_trusted_peers_are_kept_and_appended() {
        let peer: HeaderValue = "10.1.2.3".parse().unwrap();
        let mut h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
        ]);
        strip_hop_by_hop(&mut h, false);
        set_forwarded(&mut h, "10.1.2.3", &peer, None, "http");
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
    }
}
