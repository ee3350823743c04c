//! `grpcWeb` (Traefik's `pkg/middlewares/grpcweb`): Traefik wraps the rest of the chain with its
//! fork of improbable-eng's gRPC-Web wrapper (`github.com/traefik/grpc-web` v0.16.0, its CORS
//! from `github.com/rs/cors` v1.7.0), with `WithCorsForRegisteredEndpointsOnly(false)` and an
//! origin function that allows an origin when `allowOrigins` holds `*` or that very origin
//! (none when the list is empty, the wrapper's default too). What the wrapper does, and so what
//! this does (the protocol: `grpc/grpc` `doc/PROTOCOL-WEB.md`):
//!
//! - It takes over a request that is a `POST` whose (first) Content-Type starts with
//!   `application/grpc-web` (case-sensitive, so `-text` too), or an `OPTIONS` whose (first)
//!   `Access-Control-Request-Headers`, lower-cased, contains `x-grpc-web`. Anything else goes
//!   on untouched.
//! - Such an `OPTIONS` with an `Access-Control-Request-Method` is a CORS preflight: answered
//!   200 with an empty body and never forwarded. It always has `Vary: Origin`,
//!   `Vary: Access-Control-Request-Method` and `Vary: Access-Control-Request-Headers`; for an
//!   allowed origin and method (GET, POST, HEAD or OPTIONS), also
//!   `Access-Control-Allow-Origin` (the origin itself, never `*`),
//!   `Access-Control-Allow-Methods` (the requested method, upper-cased),
//!   `Access-Control-Allow-Headers` (the requested ones, as rs/cors normalizes them),
//!   `Access-Control-Allow-Credentials: true` and `Access-Control-Max-Age: 600`.
//! - Any other request it takes over is converted: its Content-Type's first
//!   `application/grpc-web` (or `application/grpc-web-text`) becomes `application/grpc`
//!   (`+proto` and the rest kept), Content-Length goes, and a `-text` body is base64-decoded as
//!   it streams. The response gets `Vary: Origin`, and for an allowed origin
//!   `Access-Control-Allow-Origin` and `Access-Control-Allow-Credentials: true`; the backend's
//!   headers are copied over those (one name replacing the CORS value), its Content-Type's
//!   first `application/grpc` becoming `application/grpc-web` (or `-web-text`), and
//!   `Access-Control-Expose-Headers` names every header of the response, then `grpc-status`
//!   and `grpc-message`. The body's bytes go on as they come (each piece base64-encoded,
//!   padded, for `-text`), then the trailers the head did not carry, as one frame: flag byte
//!   0x80, a 4-byte big-endian length, and `name: value\r\n` lines, names lower-cased and
//!   sorted as Go's `Header.Write` sorts them. A trailers-only response (grpc-status in the
//!   head) ends with an empty trailer frame, as the wrapper's does.
//!
//! The request side is here; the proxy sends a converted request with `TE: trailers` to
//! `h2c://` servers and streams the bodies (`proxy::grpc_web`).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::{After, Answer, Flow, Req};

const GRPC: &[u8] = b"application/grpc";
const GRPC_WEB: &[u8] = b"application/grpc-web";
const GRPC_WEB_TEXT: &[u8] = b"application/grpc-web-text";

/// rs/cors' `MaxAge`, from the wrapper's default `corsMaxAge` of 10 minutes.
const MAX_AGE: &str = "600";

/// The configured middleware.
#[derive(Debug, Clone)]
pub struct GrpcWeb {
    /// `allowOrigins`: `*` or origins compared byte for byte.
    pub allow_origins: Vec<String>,
}

/// How the client frames its messages: `application/grpc-web` or `application/grpc-web-text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Text,
}

/// The response side of a converted request.
#[derive(Debug, Clone)]
pub struct Converted {
    pub format: Format,
    /// What rs/cors set on the response before the backend's headers were copied over.
    cors: HeaderMap,
}

impl GrpcWeb {
    pub fn new(allow_origins: Vec<String>) -> GrpcWeb {
        GrpcWeb { allow_origins }
    }

    fn allows(&self, origin: &[u8]) -> bool {
        self.allow_origins
            .iter()
            .any(|o| o == "*" || o.as_bytes() == origin)
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        let h = &req.parts.headers;
        let method = &req.parts.method;
        let preflight_like = *method == Method::OPTIONS
            && first(h, &header::ACCESS_CONTROL_REQUEST_HEADERS)
                .to_ascii_lowercase()
                .windows(b"x-grpc-web".len())
                .any(|w| w == b"x-grpc-web");
        let web = *method == Method::POST && first(h, &header::CONTENT_TYPE).starts_with(GRPC_WEB);
        if !preflight_like && !web {
            return Flow::Next;
        }
        if *method == Method::OPTIONS
            && !first(h, &header::ACCESS_CONTROL_REQUEST_METHOD).is_empty()
        {
            return Flow::Answer(Box::new(self.preflight(h)));
        }
        // rs/cors' actual-request side, then the wrapper's conversion (an OPTIONS that asks for
        // x-grpc-web without a method is converted too, as the wrapper does).
        let mut cors = HeaderMap::new();
        cors.append(header::VARY, HeaderValue::from_static("Origin"));
        let origin = first(h, &header::ORIGIN);
        if !origin.is_empty() && self.allows(origin) && method_allowed(method.as_str().as_bytes()) {
            if let Ok(v) = HeaderValue::from_bytes(origin) {
                cors.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            }
            cors.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let format = convert_request(&mut req.parts.headers);
        req.grpc_web = Some(format);
        req.after
            .push(After::GrpcWeb(Box::new(Converted { format, cors })));
        Flow::Next
    }

    /// rs/cors' preflight answer (its v1.7.0 answers 200).
    fn preflight(&self, h: &HeaderMap) -> Answer {
        let mut out = HeaderMap::new();
        for v in [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            out.append(header::VARY, HeaderValue::from_static(v));
        }
        let answer = |headers| Answer {
            status: StatusCode::OK,
            headers,
            body: bytes::Bytes::new(),
        };
        let origin = first(h, &header::ORIGIN);
        let method = first(h, &header::ACCESS_CONTROL_REQUEST_METHOD);
        if origin.is_empty() || !self.allows(origin) || !method_allowed(method) {
            return answer(out);
        }
        if let Ok(v) = HeaderValue::from_bytes(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if let Ok(v) = HeaderValue::from_bytes(&method.to_ascii_uppercase()) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        let asked = parse_header_list(first(h, &header::ACCESS_CONTROL_REQUEST_HEADERS));
        if !asked.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&asked.join(", ")) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        answer(out)
    }
}

/// Go's `Header.Get`: the first value, or nothing.
fn first<'h>(h: &'h HeaderMap, name: &HeaderName) -> &'h [u8] {
    h.get(name).map_or(&[], HeaderValue::as_bytes)
}

/// rs/cors' `isMethodAllowed` with its default methods (GET, POST, HEAD); OPTIONS always.
fn method_allowed(m: &[u8]) -> bool {
    let m = m.to_ascii_uppercase();
    matches!(m.as_slice(), b"OPTIONS" | b"GET" | b"POST" | b"HEAD")
}

/// `strings.Replace(s, old, new, 1)` over bytes.
fn replace_first(s: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    match s.windows(old.len()).position(|w| w == old) {
        Some(i) => [&s[..i], new, &s[i + old.len()..]].concat(),
        None => s.to_vec(),
    }
}

/// The wrapper's `hackIntoNormalGrpcRequest` on the headers: Content-Type set to the first
/// value with its gRPC-Web type made `application/grpc` (an absent one becomes empty, as Go's
/// `Header.Set` of `""` makes it), Content-Length removed.
fn convert_request(h: &mut HeaderMap) -> Format {
    let ct = first(h, &header::CONTENT_TYPE).to_vec();
    let (format, incoming) = if ct.starts_with(GRPC_WEB_TEXT) {
        (Format::Text, GRPC_WEB_TEXT)
    } else {
        (Format::Binary, GRPC_WEB)
    };
    if let Ok(v) = HeaderValue::from_bytes(&replace_first(&ct, incoming, GRPC)) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.remove(header::CONTENT_LENGTH);
    format
}

impl Converted {
    /// The wrapper's `prepareHeaders`: the backend's headers over the CORS ones, Content-Type
    /// made gRPC-Web's, `Access-Control-Expose-Headers` naming them all. Returns the names the
    /// head carries, which the trailer frame leaves out (its `extractTrailingHeaders`).
    pub fn respond(&self, headers: &mut HeaderMap) -> Vec<HeaderName> {
        let backend = std::mem::take(headers);
        let mut out = self.cors.clone();
        let web: &[u8] = match self.format {
            Format::Binary => GRPC_WEB,
            Format::Text => GRPC_WEB_TEXT,
        };
        let mut current: Option<HeaderName> = None;
        for (name, value) in backend {
            if let Some(n) = name {
                // Go's `dst[k] = vv`: a name replaces what CORS set under it.
                out.remove(&n);
                current = Some(n);
            }
            let Some(n) = &current else { continue };
            // The body is re-framed (and re-encoded for -text): its length is not the backend's.
            if n == header::TRAILER || n == header::CONTENT_LENGTH {
                continue;
            }
            let value = if n == header::CONTENT_TYPE {
                HeaderValue::from_bytes(&replace_first(value.as_bytes(), GRPC, web))
                    .unwrap_or(value)
            } else {
                value
            };
            out.append(n.clone(), value);
        }
        let mut exposed: Vec<String> = out.keys().map(|k| canonical(k.as_str())).collect();
        exposed.push("grpc-status".to_owned());
        exposed.push("grpc-message".to_owned());
        if let Ok(v) = HeaderValue::from_str(&exposed.join(", ")) {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
        let names = out.keys().cloned().collect();
        *headers = out;
        names
    }
}

/// Go's `http.CanonicalHeaderKey` for a valid (lower-case) header name.
pub fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// rs/cors v1.7.0's `parseHeaderList`: names split at spaces and commas, each canonicalized
/// (upper-case after `-` or `_`), other bytes dropped.
fn parse_header_list(list: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut h = Vec::new();
    let mut upper = true;
    for (i, &b) in list.iter().enumerate() {
        match b {
            b'a'..=b'z' => h.push(if upper { b.to_ascii_uppercase() } else { b }),
            b'A'..=b'Z' => h.push(if upper { b } else { b.to_ascii_lowercase() }),
            b'-' | b'_' | b'0'..=b'9' => h.push(b),
            _ => {}
        }
        if b == b' ' || b == b',' || i == list.len() - 1 {
            if !h.is_empty() {
                out.push(String::from_utf8_lossy(&h).into_owned());
                h.clear();
                upper = true;
            }
        } else {
            upper = b == b'-' || b == b'_';
        }
    }
    out
}

/// The trailer frame: the trailers the head does not carry (nor `Trailer`), names lower-case
/// and sorted, each value on its own `name: value\r\n` line (Go's `Header.Write`: CR and LF
/// become spaces, the value trimmed), behind the flag byte 0x80 and the big-endian length.
pub fn trailer_frame(trailers: Option<&HeaderMap>, head: &[HeaderName]) -> Vec<u8> {
    let mut lines: Vec<(&str, &[u8])> = Vec::new();
    if let Some(t) = trailers {
        for name in t.keys() {
            if name == header::TRAILER || head.contains(name) {
                continue;
            }
            for v in t.get_all(name) {
                lines.push((name.as_str(), v.as_bytes()));
            }
        }
    }
    // Stable: a name's values keep their order.
    lines.sort_by(|a, b| a.0.cmp(b.0));
    let mut payload = Vec::new();
    for (name, value) in lines {
        let value: Vec<u8> = value
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        let trimmed = value.trim_ascii();
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(b": ");
        payload.extend_from_slice(trimmed);
        payload.extend_from_slice(b"\r\n");
    }
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(0x80);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A `-text` body's bytes for the client: standard base64, padded (the wrapper flushes, so
/// pads, after every write the proxy makes, one per piece the backend sent).
pub fn encode_text(data: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(data)
}

/// Not standard base64: the `-text` request body cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBase64;

impl std::fmt::Display for BadBase64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("grpc-web-text request body: illegal base64 data")
    }
}

impl std::error::Error for BadBase64 {}

/// Standard, padded base64 decoded as it streams, in pieces cut anywhere (Go's
/// `base64.NewDecoder(base64.StdEncoding, ...)`: CR and LF skipped, a partial group at the end
/// is an error). Unlike Go's, a padded group may be followed by more (the concatenated padded
/// pieces the protocol allows a text stream to be).
#[derive(Debug, Default)]
pub struct Base64Decoder {
    group: [u8; 4],
    n: usize,
}

const PAD: u8 = 64;

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(PAD),
        _ => None,
    }
}

impl Base64Decoder {
    /// Decodes `input`, appending to `out`; what does not make a whole group yet waits.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BadBase64> {
        for &c in input {
            if c == b'\r' || c == b'\n' {
                continue;
            }
            let v = sextet(c).ok_or(BadBase64)?;
            // Padding only in a group's last two places, and nothing but padding after it.
            if (v == PAD && self.n < 2) || (v != PAD && self.n == 3 && self.group[2] == PAD) {
                return Err(BadBase64);
            }
            self.group[self.n] = v;
            self.n += 1;
            if self.n == 4 {
                self.n = 0;
                let [a, b, c, d] = self.group;
                out.push(a << 2 | b >> 4);
                if c != PAD {
                    out.push(b << 4 | c >> 2);
                    if d != PAD {
                        out.push(c << 6 | d);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether no partial group is waiting.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The end of the body: a partial group left is an error.
    pub fn finish(&self) -> Result<(), BadBase64> {
        if self.n == 0 {
            Ok(())
        } else {
            Err(BadBase64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn request(method: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder()
            .method(method)
            .uri("/test.Echo/Unary");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn run(m: &GrpcWeb, parts: &mut http::request::Parts) -> (Flow, Vec<After>, Option<Format>) {
        let mut req = Req::new(parts, "h", false, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let flow = m.apply(&mut req);
        (flow, std::mem::take(&mut req.after), req.grpc_web)
    }

    fn values(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn grpc_web_posts_are_converted_and_others_go_untouched() {
        let m = GrpcWeb::new(vec![]);
        for (ct, want, format) in [
            (
                "application/grpc-web+proto",
                "application/grpc+proto",
                Format::Binary,
            ),
            ("application/grpc-web", "application/grpc", Format::Binary),
            (
                "application/grpc-web-text+proto",
                "application/grpc+proto",
                Format::Text,
            ),
            (
                "application/grpc-web-text",
                "application/grpc",
                Format::Text,
            ),
            (
                "application/grpc-web+json; charset=utf-8",
                "application/grpc+json; charset=utf-8",
                Format::Binary,
            ),
        ] {
            let mut p = request("POST", &[("content-type", ct), ("content-length", "12")]);
            let (flow, after, f) = run(&m, &mut p);
            assert!(matches!(flow, Flow::Next));
            assert_eq!(f, Some(format), "{ct}");
            assert_eq!(p.headers["content-type"], want, "{ct}");
            assert!(!p.headers.contains_key("content-length"));
            assert!(matches!(after.as_slice(), [After::GrpcWeb(c)] if c.format == format));
        }
        for (method, ct) in [
            ("GET", "application/grpc-web"),
            ("POST", "application/grpc"),
            ("POST", "Application/grpc-web"),
            ("POST", "text/plain"),
            ("PUT", "application/grpc-web"),
        ] {
            let mut p = request(method, &[("content-type", ct), ("content-length", "3")]);
            let (flow, after, f) = run(&m, &mut p);
            assert!(matches!(flow, Flow::Next));
            assert!(after.is_empty() && f.is_none(), "{method} {ct}");
            assert_eq!(p.headers["content-type"], ct);
            assert_eq!(p.headers["content-length"], "3");
        }
    }

    #[test]
    fn a_preflight_for_an_allowed_origin_is_answered_as_rs_cors_answers() {
        let m = GrpcWeb::new(vec!["https://app.example.com".into()]);
        let mut p = request(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "post"),
                (
                    "access-control-request-headers",
                    "x-grpc-web,content-type, x-user-agent",
                ),
            ],
        );
        let (flow, after, _) = run(&m, &mut p);
        let Flow::Answer(a) = flow else {
            panic!("not answered")
        };
        assert!(after.is_empty());
        assert_eq!(a.status, 200);
        assert!(a.body.is_empty());
        let h = &a.headers;
        assert_eq!(
            values(h, "vary"),
            [
                "Origin",
                "Access-Control-Request-Method",
                "Access-Control-Request-Headers"
            ]
        );
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(
            h["access-control-allow-headers"],
            "X-Grpc-Web, Content-Type, X-User-Agent"
        );
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-max-age"], "600");
    }

    #[test]
    fn a_preflight_for_a_refused_origin_or_method_gets_only_vary() {
        for (allow, origin, method) in [
            (
                vec!["https://app.example.com"],
                "https://evil.example.com",
                "POST",
            ),
            (vec![], "https://app.example.com", "POST"),
            (vec!["*"], "", "POST"),
            (vec!["*"], "https://app.example.com", "PUT"),
            // Compared byte for byte, as Traefik's origin function does.
            (
                vec!["https://APP.example.com"],
                "https://app.example.com",
                "POST",
            ),
        ] {
            let m = GrpcWeb::new(allow.iter().map(|s| s.to_string()).collect());
            let mut headers = vec![
                ("access-control-request-method", method),
                ("access-control-request-headers", "x-grpc-web"),
            ];
            if !origin.is_empty() {
                headers.push(("origin", origin));
            }
            let mut p = request("OPTIONS", &headers);
            let (flow, _, _) = run(&m, &mut p);
            let Flow::Answer(a) = flow else {
                panic!("not answered")
            };
            assert_eq!(a.status, 200);
            assert_eq!(a.headers.len(), 3, "{origin} {method}: {:?}", a.headers);
            assert_eq!(a.headers.keys().len(), 1);
        }
    }

    #[test]
    fn a_wildcard_allows_any_origin_and_echoes_it() {
        let m = GrpcWeb::new(vec!["*".into()]);
        let mut p = request(
            "OPTIONS",
            &[
                ("origin", "https://any.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "X-Grpc-Web"),
            ],
        );
        let Flow::Answer(a) = run(&m, &mut p).0 else {
            panic!("not answered")
        };
        assert_eq!(
            a.headers["access-control-allow-origin"],
            "https://any.example"
        );
    }

    #[test]
    fn options_without_x_grpc_web_go_on_and_without_a_method_are_converted() {
        let m = GrpcWeb::new(vec!["*".into()]);
        let mut p = request(
            "OPTIONS",
            &[
                ("origin", "https://a.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        );
        let (flow, after, f) = run(&m, &mut p);
        assert!(matches!(flow, Flow::Next) && after.is_empty() && f.is_none());
        // The wrapper takes it over (x-grpc-web asked), rs/cors sees no preflight: converted.
        let mut p = request(
            "OPTIONS",
            &[
                ("origin", "https://a.example"),
                ("access-control-request-headers", "x-grpc-web"),
            ],
        );
        let (flow, after, f) = run(&m, &mut p);
        assert!(matches!(flow, Flow::Next));
        assert_eq!(f, Some(Format::Binary));
        assert_eq!(p.headers["content-type"], "");
        let [After::GrpcWeb(c)] = after.as_slice() else {
            panic!("{after:?}")
        };
        assert_eq!(c.cors["access-control-allow-origin"], "https://a.example");
    }

    fn converted(allow: &[&str], origin: Option<&str>, ct: &str) -> Converted {
        let m = GrpcWeb::new(allow.iter().map(|s| s.to_string()).collect());
        let mut headers = vec![("content-type", ct)];
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        let mut p = request("POST", &headers);
        let (_, after, _) = run(&m, &mut p);
        match after.into_iter().next() {
            Some(After::GrpcWeb(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_response_head_is_grpc_webs_with_every_header_exposed() {
        let c = converted(
            &["https://app.example.com"],
            Some("https://app.example.com"),
            "application/grpc-web+proto",
        );
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/grpc+proto"),
        );
        h.insert("grpc-accept-encoding", HeaderValue::from_static("identity"));
        h.insert("content-length", HeaderValue::from_static("10"));
        h.insert("trailer", HeaderValue::from_static("grpc-status"));
        let names = c.respond(&mut h);
        assert_eq!(h["content-type"], "application/grpc-web+proto");
        assert_eq!(h["vary"], "Origin");
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(!h.contains_key("content-length") && !h.contains_key("trailer"));
        assert_eq!(
            h["access-control-expose-headers"],
            "Vary, Access-Control-Allow-Origin, Access-Control-Allow-Credentials, Content-Type, Grpc-Accept-Encoding, grpc-status, grpc-message"
        );
        assert!(names.contains(&header::ACCESS_CONTROL_EXPOSE_HEADERS));
        assert!(names.contains(&header::CONTENT_TYPE));

        // -text; no Origin: only Vary from CORS; a backend's Vary replaces it. (The names'
        // order is Go's map order in the wrapper: any order is Traefik's.)
        let c = converted(&["*"], None, "application/grpc-web-text");
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("vary", HeaderValue::from_static("Accept-Encoding"));
        h.insert("grpc-status", HeaderValue::from_static("5"));
        c.respond(&mut h);
        assert_eq!(h["content-type"], "application/grpc-web-text");
        assert_eq!(values(&h, "vary"), ["Accept-Encoding"]);
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(
            h["access-control-expose-headers"],
            "Content-Type, Vary, Grpc-Status, grpc-status, grpc-message"
        );
    }

    #[test]
    fn the_trailer_frame_has_sorted_lower_case_lines_without_the_heads_names() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("7"));
        t.insert("grpc-message", HeaderValue::from_static("not you"));
        t.append("x-why", HeaderValue::from_static("b"));
        t.append("x-why", HeaderValue::from_static("a"));
        t.insert("content-type", HeaderValue::from_static("application/grpc"));
        t.insert("trailer", HeaderValue::from_static("x"));
        let frame = trailer_frame(Some(&t), &[header::CONTENT_TYPE]);
        let payload = b"grpc-message: not you\r\ngrpc-status: 7\r\nx-why: b\r\nx-why: a\r\n";
        assert_eq!(frame[0], 0x80);
        assert_eq!(&frame[1..5], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&frame[5..], payload);
        assert_eq!(trailer_frame(None, &[]), [0x80, 0, 0, 0, 0]);
    }

    #[test]
    fn text_bodies_decode_in_any_pieces_and_padded_pieces_may_follow_each_other() {
        let data: Vec<u8> = (0..=255u8).collect();
        let text = encode_text(&data);
        for cut in [1, 2, 3, 5, 7, 64] {
            let mut d = Base64Decoder::default();
            let mut out = Vec::new();
            for piece in text.as_bytes().chunks(cut) {
                d.feed(piece, &mut out).unwrap();
            }
            d.finish().unwrap();
            assert_eq!(out, data, "pieces of {cut}");
        }
        let mut d = Base64Decoder::default();
        let mut out = Vec::new();
        let joined = format!(
            "{}\r\n{}{}",
            encode_text(b"a"),
            encode_text(b"bc"),
            encode_text(b"def")
        );
        d.feed(joined.as_bytes(), &mut out).unwrap();
        d.finish().unwrap();
        assert_eq!(out, b"abcdef");
        for bad in ["QUJ", "Q===", "QU=A", "QU J", "QUJD*AAA", "=AAA"] {
            let mut d = Base64Decoder::default();
            let mut out = Vec::new();
            let r = d.feed(bad.as_bytes(), &mut out).and_then(|()| d.finish());
            assert_eq!(r, Err(BadBase64), "{bad}");
        }
    }

    #[test]
    fn canonical_names_and_rs_cors_header_lists() {
        assert_eq!(canonical("grpc-accept-encoding"), "Grpc-Accept-Encoding");
        assert_eq!(canonical("x-user_agent"), "X-User_agent");
        assert_eq!(
            parse_header_list(b"x-grpc-web,content-type, X-USER-AGENT,,a_b.c"),
            ["X-Grpc-Web", "Content-Type", "X-User-Agent", "A_Bc"]
        );
        assert!(parse_header_list(b"").is_empty());
    }
}
