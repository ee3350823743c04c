//! `forwardAuth`, as Traefik's (`pkg/middlewares/auth/forward.go`): the request's headers go to
//! an authentication server (`GET address`, or the request's method with
//! `preserveRequestMethod`), with X-Forwarded-* saying what the client asked for. A 2xx lets the
//! request go on, with the `authResponseHeaders` (and those matching
//! `authResponseHeadersRegex`) copied from the auth server's answer; anything else is returned
//! to the client as the auth server gave it (status, headers, body; a relative `Location` made
//! absolute unless `preserveLocationHeader`). The call itself is the proxy's (I/O); this module
//! builds the auth request and reads its answer.

use std::collections::HashSet;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use regex::Regex;

use super::{After, Answer, Flow, Req};

#[derive(Debug, Clone)]
pub struct ForwardAuth {
    pub address: http::Uri,
    pub trust_forward_header: Option<bool>,
    pub auth_response_headers: Vec<HeaderName>,
    pub auth_response_headers_regex: Option<Regex>,
    pub auth_request_headers: Vec<HeaderName>,
    pub add_auth_cookies_to_response: HashSet<String>,
    pub preserve_location_header: bool,
    pub preserve_request_method: bool,
    pub auth_signin_url: Option<String>,
    /// Bytes of the auth server's body read at most (`None`: all).
    pub max_response_body_size: Option<u64>,
    /// `tls`: the auth server's own CA, client certificate or `insecureSkipVerify`; `None`: the
    /// shared client (the system's roots).
    pub tls: Option<std::sync::Arc<crate::proxy::outbound::TlsClient>>,
}

/// Hop-by-hop headers never sent to the auth server nor returned from it (oxy's list spells
/// `Trailers`; RFC 9110's `Trailer` goes too).
const HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// The X-headers Traefik manages (`forwardedheaders.XHeadersSet`).
const X_HEADERS: [&str; 13] = [
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-scheme",
    "x-real-ip",
];

/// Go's canonical header key (`x-auth-user` -> `X-Auth-User`): what Traefik's regex sees.
pub fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        out.push(if up {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        up = c == '-';
    }
    out
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

impl ForwardAuth {
    /// The request to the auth server.
    pub fn auth_request(&self, req: &Req) -> http::Request<()> {
        let method = if self.preserve_request_method {
            req.parts.method.clone()
        } else {
            Method::GET
        };
        let mut h = req.parts.headers.clone();
        h.remove(http::header::HOST);
        // The auth request carries no body (forwardBody is refused), and Go's Request.Write
        // never writes these from the header map: a client's Content-Length must not announce
        // a body the auth server would wait for.
        h.remove(http::header::CONTENT_LENGTH);
        h.remove(http::header::TRAILER);
        let listed: Vec<String> = h
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
            .collect();
        for n in listed.iter().map(String::as_str).chain(HOP) {
            h.remove(n);
        }
        let trust = self.trust_forward_header;
        if trust == Some(false) {
            // Every spelling Go folds together (`X_Forwarded_For` too), as Traefik deletes them.
            let doomed: Vec<HeaderName> = h
                .keys()
                .filter(|k| X_HEADERS.contains(&k.as_str().replace('_', "-").as_str()))
                .cloned()
                .collect();
            for n in doomed {
                h.remove(n);
            }
        }
        if !self.auth_request_headers.is_empty() {
            let mut allowed: Vec<HeaderName> = self.auth_request_headers.clone();
            if trust == Some(true) {
                allowed.extend(X_HEADERS.iter().map(|n| HeaderName::from_static(n)));
            }
            let mut kept = HeaderMap::new();
            for n in allowed {
                for v in h.get_all(&n) {
                    kept.append(n.clone(), v.clone());
                }
            }
            h = kept;
        }
        let target = req.request_target();
        let proto = if req.tls { "https" } else { "http" };
        // `net.SplitHostPort(req.RemoteAddr)`: no client address, no X-Forwarded-For.
        let client = super::gourl::split_host_port(&req.remote).map(|(h, _)| h.to_owned());
        match trust {
            Some(_) => {
                if let Some(client) = client {
                    let prior: Vec<&str> = h
                        .get_all("x-forwarded-for")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    let xff = if prior.is_empty() {
                        client
                    } else {
                        format!("{}, {client}", prior.join(", "))
                    };
                    set(&mut h, "x-forwarded-for", &xff);
                }
                let absent = |h: &HeaderMap, n: &str| !h.contains_key(n);
                if absent(&h, "x-forwarded-method") {
                    set(&mut h, "x-forwarded-method", req.parts.method.as_str());
                }
                if absent(&h, "x-forwarded-proto") {
                    set(&mut h, "x-forwarded-proto", proto);
                }
                if absent(&h, "x-forwarded-port") {
                    let p = h
                        .get("x-forwarded-proto")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let port = match req.host.rsplit_once(':') {
                        Some((_, port)) if !port.is_empty() && !port.contains(']') => {
                            port.to_owned()
                        }
                        _ if p == "https" || p == "wss" || req.tls => "443".into(),
                        _ => "80".into(),
                    };
                    set(&mut h, "x-forwarded-port", &port);
                }
                if absent(&h, "x-forwarded-host") {
                    set(&mut h, "x-forwarded-host", &req.host);
                }
                if absent(&h, "x-forwarded-uri") {
                    set(&mut h, "x-forwarded-uri", &target);
                }
            }
            None => {
                if let Some(client) = client {
                    set(&mut h, "x-forwarded-for", &client);
                }
                set(&mut h, "x-forwarded-proto", proto);
                set(&mut h, "x-forwarded-method", req.parts.method.as_str());
                set(&mut h, "x-forwarded-host", &req.host);
                set(&mut h, "x-forwarded-uri", &target);
            }
        }
        let mut out = http::Request::new(());
        *out.method_mut() = method;
        *out.uri_mut() = self.address.clone();
        *out.headers_mut() = h;
        out
    }

    /// What the auth server's answer means for the request.
    pub fn on_auth_response(
        &self,
        req: &mut Req,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Flow {
        if status == StatusCode::UNAUTHORIZED {
            if let Some(url) = &self.auth_signin_url {
                let mut a = Answer::text(StatusCode::FOUND, "");
                a.headers.clear();
                set(&mut a.headers, "location", url);
                return Flow::Answer(Box::new(a));
            }
        }
        if !status.is_success() {
            let mut h = headers.clone();
            for n in HOP {
                h.remove(n);
            }
            if let Some(loc) = headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                if !self.preserve_location_header {
                    if let Some(abs) = resolve(&self.address, loc) {
                        set(&mut h, "location", &abs);
                    }
                }
            }
            return Flow::Answer(Box::new(Answer {
                status,
                headers: h,
                body,
            }));
        }
        for n in &self.auth_response_headers {
            req.parts.headers.remove(n);
            for v in headers.get_all(n) {
                req.parts.headers.append(n.clone(), v.clone());
            }
        }
        if let Some(re) = &self.auth_response_headers_regex {
            let doomed: Vec<HeaderName> = req
                .parts
                .headers
                .keys()
                .filter(|k| re.is_match(&canonical(k.as_str())))
                .cloned()
                .collect();
            for k in doomed {
                req.parts.headers.remove(k);
            }
            for (k, v) in headers {
                if re.is_match(&canonical(k.as_str())) {
                    req.parts.headers.append(k.clone(), v.clone());
                }
            }
        }
        let cookies: Vec<HeaderValue> = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        if !cookies.is_empty() {
            req.after.push(After::Cookies(
                self.add_auth_cookies_to_response.clone(),
                cookies,
            ));
        }
        Flow::Next
    }
}

/// The name of a `Set-Cookie` value.
fn cookie_name(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    Some(s.split(';').next()?.split('=').next()?.trim().to_owned())
}

/// The response side: the backend's cookies but those named in `addAuthCookiesToResponse`,
/// then the auth server's cookies of those names.
pub fn merge_cookies(names: &HashSet<String>, auth: &[HeaderValue], headers: &mut HeaderMap) {
    let backend: Vec<HeaderValue> = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(http::header::SET_COOKIE);
    for c in backend {
        if !cookie_name(&c).is_some_and(|n| names.contains(&n)) {
            headers.append(http::header::SET_COOKIE, c);
        }
    }
    for c in auth {
        if cookie_name(c).is_some_and(|n| names.contains(&n)) {
            headers.append(http::header::SET_COOKIE, c.clone());
        }
    }
}

/// A `Location` resolved against the auth server's URL (`Response.Location()`).
fn resolve(base: &http::Uri, loc: &str) -> Option<String> {
    if loc.contains("://") || loc.starts_with("//") {
        return Some(if loc.starts_with("//") {
            format!("{}:{loc}", base.scheme_str().unwrap_or("http"))
        } else {
            loc.to_owned()
        });
    }
    let origin = format!("{}://{}", base.scheme_str()?, base.authority()?);
    if loc.starts_with('/') {
        return Some(format!("{origin}{loc}"));
    }
    let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
    Some(format!("{origin}{dir}/{loc}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Traefik's writeHeader and oldWriteHeader tables: the auth request's headers.
    #[test]
    fn traefik_auth_request_headers() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/middleware/cases/forwardAuth.json"
        );
        let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut failures = Vec::new();
        let mut n = 0;
        for c in data["cases"].as_array().unwrap() {
            let Some(want) = c["auth_server"]["expected_request_headers"].as_object() else {
                continue;
            };
            if !c["name"].as_str().unwrap().contains("riteHeader") {
                continue;
            }
            n += 1;
            let name = c["name"].as_str().unwrap();
            let cfg = &c["config"];
            let fa = ForwardAuth {
                address: "http://auth/".parse().unwrap(),
                trust_forward_header: cfg["trustForwardHeader"].as_bool(),
                auth_response_headers: Vec::new(),
                auth_response_headers_regex: None,
                auth_request_headers: cfg["authRequestHeaders"].as_array().map_or(
                    Vec::new(),
                    |a| {
                        a.iter()
                            .map(|v| {
                                HeaderName::from_bytes(v.as_str().unwrap().as_bytes()).unwrap()
                            })
                            .collect()
                    },
                ),
                add_auth_cookies_to_response: HashSet::new(),
                tls: None,
                preserve_location_header: false,
                preserve_request_method: false,
                auth_signin_url: None,
                max_response_body_size: None,
            };
            let r = &c["request"];
            let url: http::Uri = r["url"].as_str().unwrap().parse().unwrap();
            let mut b = http::Request::builder()
                .method(r["method"].as_str().unwrap_or("GET"))
                .uri(url.path_and_query().unwrap().as_str());
            for (k, v) in r["headers"].as_object().into_iter().flatten() {
                let values: Vec<&str> = match v {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    v => vec![v.as_str().unwrap()],
                };
                for v in values {
                    b = b.header(k.as_str(), v);
                }
            }
            let (mut parts, ()) = b.body(()).unwrap().into_parts();
            let host = r["host"].as_str().unwrap_or("");
            let mut req = Req::new(
                &mut parts,
                host,
                r["tls"].as_bool().unwrap_or(false),
                "127.0.0.1".parse().unwrap(),
            );
            req.remote = r["remote_addr"].as_str().unwrap_or("").to_owned();
            let got = fa.auth_request(&req);
            let h = got.headers();
            for (k, v) in want {
                let have = h.get(k.as_str()).map(|x| x.to_str().unwrap().to_owned());
                let ok = match v {
                    Value::Null => have.is_none(),
                    Value::String(s) => {
                        have.as_deref() == Some(s.as_str())
                            || (s.is_empty()
                                && have.is_none()
                                && !k.eq_ignore_ascii_case("x-forwarded-host"))
                    }
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{name}: {k} {have:?}, Traefik {v}"));
                }
            }
            if c["auth_server"]["exact"] == true {
                for k in h.keys() {
                    if !want.keys().any(|w| w.eq_ignore_ascii_case(k.as_str())) {
                        failures.push(format!("{name}: sends {k}, Traefik does not"));
                    }
                }
            }
        }
        assert!(n >= 20, "{n} cases");
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
