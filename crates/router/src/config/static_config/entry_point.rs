//! `entryPoints.NAME`: address, forwarded headers, betaroute's routing-header trust; the entry
//! point settings betaroute does not implement are refused.

use std::path::PathBuf;

use betaroute_core::rules::IpNet;
use betaroute_core::signature::RoutingKey;
use betaroute_core::HeaderPolicy;

use super::{
    listen_address, EntryPoint, Forwarded, Http2, HttpModel, RedirectDraft, RoutingTrust, TrustMode,
};
use crate::config::read::{self, Cx, Obj};
use crate::config::source::Entry;

pub fn entry_point(
    cx: &mut Cx,
    e: &Entry,
    cohort_headers: &[&str],
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<EntryPoint> {
    let name = &e.key;
    let mut o = Obj::of(cx, &e.value, format!("entry point {name}"))?;
    let address = match o.get(cx, "address") {
        None => {
            cx.error(e.at, format!("entry point {name}: no address"));
            None
        }
        Some(n) => read::string(cx, n, &o.child("address")).and_then(|a| {
            // Traefik's `:8080/tcp` is the default protocol; `/udp` entry points are refused.
            let (a, protocol) = match a.rsplit_once('/') {
                Some((addr, p)) => (addr.to_owned(), p.to_ascii_lowercase()),
                None => (a.clone(), "tcp".to_owned()),
            };
            if protocol != "tcp" {
                cx.refuse(
                    n.at,
                    format!("entry point {name}: {protocol} entry points are not supported"),
                );
                return None;
            }
            let l = listen_address(&a);
            if l.parse::<std::net::SocketAddr>().is_err() {
                cx.error(
                    n.at,
                    format!("entry point {name}: address {a:?} is not host:port"),
                );
                return None;
            }
            Some(l)
        }),
    };
    let header_timeout = o.duration(cx, "headerTimeout");
    // betaroute's: an upgraded connection (WebSocket) with no byte either way for this long is
    // closed; none by default, as a quiet WebSocket is a healthy one.
    let upgrade_idle_timeout = o.obj(cx, "upgrades").and_then(|mut u| {
        let d = u.duration(cx, "idleTimeout").filter(|d| !d.is_zero());
        u.finish(cx, &["idleTimeout"]);
        d
    });
    let forwarded = o
        .obj(cx, "forwardedHeaders")
        .map_or_else(Forwarded::default, |fh| forwarded_headers(cx, fh, name));
    let routing = match o.obj(cx, "routingHeaders") {
        None => RoutingTrust::new(cohort_headers),
        Some(rh) => routing_trust(cx, rh, name, cohort_headers, resolve),
    };
    let http2 = o
        .obj(cx, "http2")
        .map_or_else(Http2::default, |h| http2(cx, h, name));
    let http = o.obj(cx, "http").map(|h| http_model(cx, h, name));
    refuse_unsupported(cx, &mut o, name);
    // Each worker thread binds its own socket with SO_REUSEPORT anyway.
    o.ignore(
        cx,
        "reusePort",
        "betaroute always listens with SO_REUSEPORT",
    );
    o.ignore(
        cx,
        "observability",
        "betaroute logs and counts every entry point",
    );
    o.finish(
        cx,
        &[
            "address",
            "headerTimeout",
            "forwardedHeaders",
            "routingHeaders",
            "http",
            "http2",
            "upgrades",
            "http3",
            "transport",
            "proxyProtocol",
            "udp",
            "asDefault",
            "reusePort",
            "observability",
        ],
    );
    Some(EntryPoint {
        name: name.clone(),
        address: address?,
        header_timeout,
        upgrade_idle_timeout,
        http2,
        forwarded,
        routing,
        http,
    })
}

/// `http`: what the entry point applies to its routers (TLS, middlewares) and its redirection.
fn http_model(cx: &mut Cx, mut h: Obj, name: &str) -> HttpModel {
    let mut out = HttpModel::default();
    if let Some(mut r) = h.obj(cx, "redirections") {
        if let Some(mut e) = r.obj(cx, "entryPoint") {
            let at = e.at;
            let to = e.string(cx, "to");
            let scheme = e.string(cx, "scheme").unwrap_or_else(|| "https".to_owned());
            let permanent = e.boolean(cx, "permanent").unwrap_or(true);
            // Traefik's default: above every user router.
            let priority = e.number::<i64>(cx, "priority").unwrap_or(i64::MAX - 1);
            e.finish(cx, &["to", "scheme", "permanent", "priority"]);
            match to.filter(|t| !t.is_empty()) {
                Some(to) => {
                    out.redirect = Some(RedirectDraft {
                        to,
                        at,
                        scheme,
                        permanent,
                        priority,
                    })
                }
                None => cx.error(
                    at,
                    format!("entry point {name}: http.redirections.entryPoint needs `to` (an entry point or :port)"),
                ),
            }
        }
        r.finish(cx, &["entryPoint"]);
    }
    out.middlewares = h
        .strings(cx, "middlewares")
        .unwrap_or_default()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    if let Some(node) = h.get(cx, "tls") {
        if let Some(mut t) = Obj::of(cx, node, format!("entry point {name}: http.tls")) {
            let options = t.string(cx, "options").filter(|o| !o.is_empty());
            t.refuse(
                cx,
                "certResolver",
                "(ACME) cannot work offline: give the certificates in the dynamic configuration's tls.certificates",
            );
            if t.get(cx, "domains").is_some() {
                cx.warn(
                    t.at_key("domains"),
                    format!("entry point {name}: http.tls.domains only tells a certificate resolver what to ask for; without one it changes nothing, as in Traefik"),
                );
            }
            t.finish(cx, &["options", "certResolver", "domains"]);
            out.tls = Some(options);
        }
    }
    // betaroute routes and forwards the path as received: what `sanitizePath: false` asks for.
    if h.boolean(cx, "sanitizePath") == Some(true) {
        cx.refuse(
            h.at_key("sanitizePath"),
            format!("entry point {name}: http.sanitizePath = true is not supported yet: request paths are routed and forwarded as received, without removing /./, /../ and //"),
        );
    }
    if let Some(v) = h.string(cx, "underscoreHeadersStrategy") {
        if !v.eq_ignore_ascii_case("keep") {
            cx.refuse(
                h.at_key("underscoreHeadersStrategy"),
                format!("entry point {name}: http.underscoreHeadersStrategy {v:?} is not supported yet: headers with underscores are kept"),
            );
        }
    }
    for (key, why) in [
        ("encodeQuerySemicolons", "is not supported yet"),
        ("maxHeaderBytes", "is not supported yet (betaroute's HTTP/1 limit is hyper's, about 400 KiB; HTTP/2's is http2.maxHeaderListSize)"),
        ("encodedCharacters", "is not supported yet at the entry point; the encodedCharacters middleware is"),
    ] {
        h.refuse(cx, key, why);
    }
    h.finish(
        cx,
        &[
            "redirections",
            "middlewares",
            "tls",
            "encodedCharacters",
            "encodeQuerySemicolons",
            "sanitizePath",
            "maxHeaderBytes",
            "underscoreHeadersStrategy",
        ],
    );
    out
}

/// `http2`: Traefik's two settings betaroute's HTTP/2 server has, and its own limits.
fn http2(cx: &mut Cx, mut h: Obj, name: &str) -> Http2 {
    let d = Http2::default();
    let positive = |h: &mut Obj, cx: &mut Cx, key: &str| -> Option<u32> {
        let n = h.number::<u32>(cx, key)?;
        if n == 0 {
            cx.error(
                h.at_key(key),
                format!("entry point {name}: http2.{key} must be positive"),
            );
            return None;
        }
        Some(n)
    };
    let out = Http2 {
        max_concurrent_streams: positive(&mut h, cx, "maxConcurrentStreams")
            .unwrap_or(d.max_concurrent_streams),
        header_table_size: h
            .number::<u32>(cx, "maxDecoderHeaderTableSize")
            .unwrap_or(d.header_table_size),
        max_header_list_size: positive(&mut h, cx, "maxHeaderListSize")
            .unwrap_or(d.max_header_list_size),
        initial_stream_window_size: positive(&mut h, cx, "initialStreamWindowSize"),
        initial_connection_window_size: positive(&mut h, cx, "initialConnectionWindowSize"),
    };
    h.refuse(
        cx,
        "maxEncoderHeaderTableSize",
        "is not supported: the HTTP/2 encoder follows the client's table size",
    );
    h.finish(
        cx,
        &[
            "maxConcurrentStreams",
            "maxDecoderHeaderTableSize",
            "maxEncoderHeaderTableSize",
            "maxHeaderListSize",
            "initialStreamWindowSize",
            "initialConnectionWindowSize",
        ],
    );
    out
}

/// Traefik's `forwardedHeaders`, plus betaroute's `useForwardedHost`.
fn forwarded_headers(cx: &mut Cx, mut fh: Obj, name: &str) -> Forwarded {
    let mut forwarded = Forwarded {
        insecure: fh.boolean(cx, "insecure").unwrap_or(false),
        use_forwarded_host: fh.boolean(cx, "useForwardedHost").unwrap_or(false),
        ..Forwarded::default()
    };
    for (ip, at) in fh.strings(cx, "trustedIPs").unwrap_or_default() {
        match IpNet::parse(&ip) {
            Some(n) => forwarded.trusted.push(n),
            None => cx.error(
                at,
                format!("entry point {name}: trustedIPs: {ip:?} is not an IP or CIDR"),
            ),
        }
    }
    for key in [
        "connection",
        "notAppendXForwardedFor",
        "addXForwardedSchemeHeaders",
    ] {
        fh.refuse(cx, key, "is not supported yet");
    }
    fh.finish(
        cx,
        &[
            "trustedIPs",
            "insecure",
            "useForwardedHost",
            "connection",
            "notAppendXForwardedFor",
            "addXForwardedSchemeHeaders",
        ],
    );
    forwarded
}

/// Entry point settings that change what is served and that betaroute does not implement.
fn refuse_unsupported(cx: &mut Cx, o: &mut Obj, name: &str) {
    for (key, why) in [
        ("http3", "is not supported"),
        ("transport", "(responding timeouts, life cycle, keep-alive limits) is not supported yet; betaroute's entry points take headerTimeout"),
        ("proxyProtocol", "is not supported yet"),
        ("udp", "is not supported"),
        ("allowACMEByPass", "is not supported (no ACME)"),
    ] {
        o.refuse(cx, key, why);
    }
    if o.boolean(cx, "asDefault") == Some(true) {
        cx.refuse(
            o.at_key("asDefault"),
            format!("entry point {name}: asDefault is not supported yet (routers without entryPoints are on every entry point)"),
        );
    }
}

fn routing_trust(
    cx: &mut Cx,
    mut rh: Obj,
    ep: &str,
    cohort_headers: &[&str],
    resolve: &dyn Fn(&str) -> PathBuf,
) -> RoutingTrust {
    let mut t = RoutingTrust::new(cohort_headers);
    if let Some(names) = rh.strings(cx, "names") {
        t.names = names
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        // The label header is always a routing header: a holdback label a client could forge
        // would skew the comparison of beta with its control group.
        if let Some(label) = cohort_headers.get(1) {
            let label = label.to_ascii_lowercase();
            if !t.names.contains(&label) {
                t.names.push(label);
            }
        }
    }
    if let Some(h) = rh.string(cx, "signatureHeader") {
        t.signature_header = h.to_ascii_lowercase();
    }
    t.policy = HeaderPolicy::new(t.names.iter().chain([&t.signature_header]));
    let keys_file = rh.get(cx, "keysFile").and_then(|n| {
        let file = read::string(cx, n, "routingHeaders.keysFile")?;
        let path = resolve(&file);
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|j| RoutingKey::from_jwks(&j))
        {
            Ok(keys) => t.keys = keys,
            Err(e) => cx.error(
                n.at,
                format!(
                    "entry point {ep}: routingHeaders.keysFile {}: {e}",
                    path.display()
                ),
            ),
        }
        Some(file)
    });
    if let Some(d) = rh.duration(cx, "maxAge") {
        t.fresh.max_age = d.as_secs();
    }
    if let Some(d) = rh.duration(cx, "clockSkew") {
        t.fresh.skew = d.as_secs();
    }
    let trust_at = rh.at_key("trust");
    t.mode = match rh.string(cx, "trust").as_deref() {
        None if keys_file.is_some() => TrustMode::Signed,
        None | Some("any") => TrustMode::Any,
        Some("strip") => TrustMode::Strip,
        Some("signed") => {
            if keys_file.is_none() {
                cx.error(
                    trust_at,
                    format!("entry point {ep}: routingHeaders.trust = \"signed\" needs keysFile"),
                );
            }
            TrustMode::Signed
        }
        Some(other) => {
            cx.error(
                trust_at,
                format!(
                    "entry point {ep}: routingHeaders.trust {other:?} is not signed, any or strip"
                ),
            );
            TrustMode::Strip
        }
    };
    rh.finish(
        cx,
        &[
            "names",
            "trust",
            "signatureHeader",
            "keysFile",
            "maxAge",
            "clockSkew",
        ],
    );
    t
}
