//! Traefik's HTTP middlewares (`http.middlewares.NAME.<kind>`), as one phase of the request
//! path: after a router matched, before the request is prepared and sent. Each middleware is
//! pure logic over the request's head ([`Req`]); it lets the request go on, changed or not
//! ([`Flow::Next`]), or answers it itself ([`Flow::Answer`]: a redirect, a 400). The proxy
//! runs a router's chain in order (`chain` middlewares flattened when the configuration is
//! combined) and pays nothing for a router without middlewares.
//!
//! Each middleware module holds its options (read in `config::dynamic::middleware`), its logic,
//! and table tests with the cases of Traefik's own tests (`cases/*.json`, transcribed from
//! `traefik/traefik` `pkg/middlewares/**/*_test.go`).

mod basic_auth;
pub mod buffering;
#[cfg(test)]
mod case_data;
pub mod circuit_breaker;
pub mod codes;
pub mod compress;
pub mod content_type;
pub mod digest_auth;
mod encoded_chars;
pub mod errors;
mod forward_auth;
pub mod gourl;
pub mod grpc_web;
mod headers;
mod htpasswd;
mod in_flight;
mod ip_allow;
pub mod pass_tls_client_cert;
mod path;
pub mod predicate;
mod rate_limit;
mod redirect;
pub mod retry;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forward_auth;
#[cfg(test)]
mod tests_pass_tls_client_cert;
#[cfg(test)]
mod tests_transcribed;
#[cfg(test)]
mod tests_transcribed_more;

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

pub use basic_auth::BasicAuth;
pub use digest_auth::DigestAuth;
pub use encoded_chars::EncodedCharacters;
pub use forward_auth::ForwardAuth;
use gourl::{BadEscape, GoPath};
pub use headers::{Cors, Custom, Headers, Secure};
pub use in_flight::{InFlight, Slot};
pub use ip_allow::{Checker, IpAllowList, Strategy};
pub use pass_tls_client_cert::PassTlsClientCert;
pub use path::{AddPrefix, ReplacePath, ReplacePathRegex, StripPrefix, StripPrefixRegex};
pub use rate_limit::{Limits, RateLimit, Source};
pub use redirect::Redirect;

/// One configured middleware, ready to run.
#[derive(Debug, Clone)]
pub enum Middleware {
    StripPrefix(StripPrefix),
    StripPrefixRegex(StripPrefixRegex),
    AddPrefix(AddPrefix),
    ReplacePath(ReplacePath),
    ReplacePathRegex(ReplacePathRegex),
    /// `redirectScheme` and `redirectRegex`.
    Redirect(Redirect),
    Headers(Box<Headers>),
    BasicAuth(Box<BasicAuth>),
    DigestAuth(Box<DigestAuth>),
    /// `ipAllowList` and `ipWhiteList`.
    IpAllowList(IpAllowList),
    RateLimit(Box<RateLimit>),
    InFlight(Box<InFlight>),
    ForwardAuth(Box<ForwardAuth>),
    Compress(std::sync::Arc<compress::Compress>),
    Retry(std::sync::Arc<retry::Retry>),
    CircuitBreaker(std::sync::Arc<circuit_breaker::CircuitBreaker>),
    Errors(std::sync::Arc<errors::Errors>),
    Buffering(std::sync::Arc<buffering::Buffering>),
    /// `contentType`: whether it detects (`autoDetect: false` does nothing, as in Traefik).
    ContentType(bool),
    EncodedCharacters(EncodedCharacters),
    PassTlsClientCert(Box<PassTlsClientCert>),
    GrpcWeb(std::sync::Arc<grpc_web::GrpcWeb>),
}

impl Middleware {
    /// Traefik's kind (`ipWhiteList` reads as `ipAllowList`, its v3 name).
    pub fn kind(&self) -> &'static str {
        match self {
            Middleware::StripPrefix(_) => "stripPrefix",
            Middleware::StripPrefixRegex(_) => "stripPrefixRegex",
            Middleware::AddPrefix(_) => "addPrefix",
            Middleware::ReplacePath(_) => "replacePath",
            Middleware::ReplacePathRegex(_) => "replacePathRegex",
            Middleware::Redirect(r) => r.kind(),
            Middleware::Headers(_) => "headers",
            Middleware::BasicAuth(_) => "basicAuth",
            Middleware::DigestAuth(_) => "digestAuth",
            Middleware::IpAllowList(_) => "ipAllowList",
            Middleware::RateLimit(_) => "rateLimit",
            Middleware::InFlight(_) => "inFlightReq",
            Middleware::ForwardAuth(_) => "forwardAuth",
            Middleware::Compress(_) => "compress",
            Middleware::Retry(_) => "retry",
            Middleware::CircuitBreaker(_) => "circuitBreaker",
            Middleware::Errors(_) => "errors",
            Middleware::Buffering(_) => "buffering",
            Middleware::ContentType(_) => "contentType",
            Middleware::EncodedCharacters(_) => "encodedCharacters",
            Middleware::PassTlsClientCert(_) => "passTLSClientCert",
            Middleware::GrpcWeb(_) => "grpcWeb",
        }
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        match self {
            Middleware::StripPrefix(m) => m.apply(req),
            Middleware::StripPrefixRegex(m) => m.apply(req),
            Middleware::AddPrefix(m) => m.apply(req),
            Middleware::ReplacePath(m) => m.apply(req),
            Middleware::ReplacePathRegex(m) => m.apply(req),
            Middleware::Redirect(m) => m.apply(req),
            Middleware::BasicAuth(m) => m.apply(req),
            Middleware::DigestAuth(m) => m.apply(req),
            Middleware::IpAllowList(m) => m.apply(req),
            Middleware::RateLimit(m) => m.apply(req),
            Middleware::InFlight(m) => m.apply(req),
            // The call is the proxy's: it asks, then hands the answer to `on_auth_response`.
            Middleware::ForwardAuth(_) => Flow::Auth,
            Middleware::Retry(r) => {
                // The proxy's send phase runs the tries; the outermost retry is the one.
                if req.retry.is_none() {
                    req.retry = Some(r.clone());
                }
                Flow::Next
            }
            Middleware::CircuitBreaker(cb) => {
                if !cb.admit(unix_now()) {
                    return Flow::Answer(Box::new(cb.fallback()));
                }
                req.after
                    .push(After::Breaker(cb.clone(), std::time::Instant::now()));
                Flow::Next
            }
            Middleware::Errors(e) => {
                let scheme = if req.tls { "https" } else { "http" };
                let original = errors::Original {
                    url: format!("{scheme}://{}{}", req.host, req.request_target()),
                    host: req.host.clone(),
                    headers: e.page_headers(&req.parts.headers),
                };
                req.after.push(After::Errors(e.clone(), Box::new(original)));
                Flow::Next
            }
            Middleware::Buffering(b) => {
                // The proxy reads the request body before sending it; the response side is
                // here, so a later middleware's answer is bounded too.
                if req.buffering.is_none() {
                    req.buffering = Some(b.clone());
                }
                req.after.push(After::Buffer(b.clone()));
                Flow::Next
            }
            Middleware::EncodedCharacters(m) => m.apply(req),
            Middleware::PassTlsClientCert(m) => m.apply(req),
            Middleware::GrpcWeb(m) => m.apply(req),
            Middleware::ContentType(detect) => {
                if *detect {
                    req.after.push(After::Sniff);
                }
                Flow::Next
            }
            Middleware::Compress(c) => {
                if let Some(e) = c.choose(&req.parts.method, &req.parts.headers) {
                    req.after.push(After::Compress(c.clone(), e));
                }
                Flow::Next
            }
            Middleware::Headers(m) => match m.on_request(req) {
                Ok(seen) => {
                    req.after.push(After::Headers(m.clone(), seen));
                    Flow::Next
                }
                Err(flow) => flow,
            },
        }
    }
}

/// What a middleware does to the response, remembered from its request.
#[derive(Debug, Clone)]
pub enum After {
    Headers(Box<Headers>, headers::Seen),
    /// `forwardAuth`'s `addAuthCookiesToResponse`: the names, and the auth server's cookies.
    Cookies(std::collections::HashSet<String>, Vec<HeaderValue>),
    /// `compress` chose this encoding for the request; the proxy compresses the body.
    Compress(std::sync::Arc<compress::Compress>, compress::Encoding),
    /// `contentType`: a response without a Content-Type gets Go's guess.
    Sniff,
    /// `buffering`: the response is read whole, within its limit.
    Buffer(std::sync::Arc<buffering::Buffering>),
    /// `errors`: the request as the page request needs it.
    Errors(std::sync::Arc<errors::Errors>, Box<errors::Original>),
    /// `circuitBreaker` let the request through at this instant: the response is recorded.
    Breaker(
        std::sync::Arc<circuit_breaker::CircuitBreaker>,
        std::time::Instant,
    ),
    /// `grpcWeb` converted the request: the response goes back as gRPC-Web.
    GrpcWeb(Box<grpc_web::Converted>),
}

impl After {
    /// Whether this works on the response's head alone ([`After::on_head`]); the others need
    /// the body, which the proxy has.
    pub fn on_head_only(&self) -> bool {
        matches!(self, After::Headers(..) | After::Cookies(..))
    }

    /// The response side of a head-only middleware; the others are the proxy's.
    pub fn on_head(&self, headers: &mut HeaderMap) {
        match self {
            After::Headers(h, seen) => h.on_response(seen, headers),
            After::Cookies(names, auth) => forward_auth::merge_cookies(names, auth, headers),
            After::Compress(..)
            | After::Breaker(..)
            | After::Errors(..)
            | After::Buffer(_)
            | After::GrpcWeb(_)
            | After::Sniff => {}
        }
    }
}

/// Applies the chain's head-only response sides to a response's headers, innermost first.
pub fn respond(after: &[After], headers: &mut HeaderMap) {
    for a in after.iter().rev() {
        a.on_head(headers);
    }
}

/// Now, as time since the Unix epoch (the circuit breaker's buckets are whole seconds).
pub fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// What a middleware decided.
#[derive(Debug)]
pub enum Flow {
    Next,
    Answer(Box<Answer>),
    /// Go on after this wait (`rateLimit` smoothing a burst).
    Wait(std::time::Duration),
    /// Ask the authentication server first (`forwardAuth`).
    Auth,
}

/// A response a middleware gives instead of the backend's.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(status: StatusCode, body: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Answer {
            status,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }
}

/// The request as the middlewares see it: its head, the host the client asked for (Go's
/// `req.Host`), whether it came over TLS, the client's address. The path is parsed into Go's
/// form on first use and written back into the URI when the chain is done.
pub struct Req<'a> {
    pub parts: &'a mut Parts,
    pub host: String,
    pub tls: bool,
    pub client: IpAddr,
    /// Go's `req.RemoteAddr` (the peer's address).
    pub remote: String,
    path: Option<GoPath>,
    changed: bool,
    /// The request target exactly as received, when it differs from what the parsed URI gives
    /// back (an absolute-form target without a path); `None`: the URI's.
    raw_target: Option<String>,
    /// The response sides to run, in chain order.
    pub after: Vec<After>,
    /// `customRequestHeaders: {X-Forwarded-For: ""}`: the proxy adds no `X-Forwarded-For`.
    pub no_forwarded_for: bool,
    /// `inFlightReq` slots, held until the response has been streamed.
    pub held: Vec<Slot>,
    /// `retry`: how the send phase tries again.
    pub retry: Option<std::sync::Arc<retry::Retry>>,
    /// `buffering`: the send phase reads the request body first.
    pub buffering: Option<std::sync::Arc<buffering::Buffering>>,
    /// The TLS connection the request came on (`tls` is true), for `passTLSClientCert`.
    pub tls_conn: Option<std::sync::Arc<crate::proxy::shared::TlsConn>>,
    /// `grpcWeb` converted the request: the send phase decodes a `-text` body and asks an
    /// HTTP/2 server for trailers.
    pub grpc_web: Option<grpc_web::Format>,
}

impl<'a> Req<'a> {
    pub fn new(parts: &'a mut Parts, host: &str, tls: bool, client: IpAddr) -> Req<'a> {
        Req {
            parts,
            host: host.to_owned(),
            tls,
            client,
            // Go's `RemoteAddr` is `host:port`; the port is not known here and matters to nobody.
            remote: std::net::SocketAddr::new(client, 0).to_string(),
            path: None,
            changed: false,
            raw_target: None,
            after: Vec::new(),
            no_forwarded_for: false,
            held: Vec::new(),
            retry: None,
            buffering: None,
            tls_conn: None,
            grpc_web: None,
        }
    }

    /// The request came over this TLS connection.
    pub fn with_tls(mut self, conn: std::sync::Arc<crate::proxy::shared::TlsConn>) -> Self {
        self.tls = true;
        self.tls_conn = Some(conn);
        self
    }

    /// Go's `req.Host = ...` (a `Host` custom request header).
    pub fn set_host(&mut self, host: &str) {
        self.host = host.to_owned();
    }

    /// The request target as received, byte for byte.
    pub fn with_raw_target(mut self, target: String) -> Self {
        self.raw_target = Some(target);
        self
    }

    /// The path in Go's form (a request target with a bad `%` escape has none).
    pub fn path(&mut self) -> Result<GoPath, BadEscape> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        let p = GoPath::from_escaped(self.parts.uri.path())?;
        self.path = Some(p.clone());
        Ok(p)
    }

    pub fn set_path(&mut self, p: GoPath) {
        self.path = Some(p);
        self.changed = true;
    }

    /// The request target as received (Go's `req.RequestURI`), the path as the chain left it.
    pub fn request_target(&self) -> String {
        if let (Some(t), false) = (&self.raw_target, self.changed) {
            return t.clone();
        }
        let uri = &self.parts.uri;
        let path = match (&self.path, self.changed) {
            (Some(p), true) => p.escaped(),
            _ => uri.path().to_owned(),
        };
        // Go's `URL.RequestURI()`: an empty path is `/`.
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        let query = uri.query().map_or(String::new(), |q| format!("?{q}"));
        match (uri.scheme_str(), uri.authority()) {
            (Some(s), Some(a)) => format!("{s}://{a}{path}{query}"),
            _ => format!("{path}{query}"),
        }
    }

    /// `Header.Add`.
    pub fn add_header(&mut self, name: &'static str, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.parts.headers.append(HeaderName::from_static(name), v);
        }
    }

    /// Writes a changed path back into the request's URI (query kept as received).
    pub fn finish(&mut self) {
        if !self.changed {
            return;
        }
        let Some(p) = self.path.take() else {
            return;
        };
        let mut target = p.escaped();
        if target.is_empty() {
            target.push('/');
        }
        if let Some(q) = self.parts.uri.query() {
            target.push('?');
            target.push_str(q);
        }
        if let Ok(pq) = http::uri::PathAndQuery::try_from(target) {
            let mut uri = std::mem::take(&mut self.parts.uri).into_parts();
            uri.path_and_query = Some(pq);
            if let Ok(u) = http::Uri::from_parts(uri) {
                self.parts.uri = u;
            }
        }
    }
}

/// Where a chain stopped.
#[derive(Debug)]
pub enum Stop {
    /// Every middleware let the request go on.
    Done,
    Answer(Box<Answer>),
    /// Wait, then go on from the middleware at this index.
    Wait(std::time::Duration, usize),
    /// The `forwardAuth` at this index asks its server; its answer decides what follows.
    Auth(usize),
}

/// Runs a chain in order from `from`; the first answer ends it, a wait pauses it.
pub fn run(chain: &[std::sync::Arc<Middleware>], from: usize, req: &mut Req) -> Stop {
    for (i, m) in chain.iter().enumerate().skip(from) {
        match m.apply(req) {
            Flow::Next => {}
            Flow::Wait(d) => return Stop::Wait(d, i + 1),
            Flow::Auth => return Stop::Auth(i),
            Flow::Answer(mut a) => {
                // The middlewares before it see its answer as they would the backend's.
                respond(&req.after, &mut a.headers);
                return Stop::Answer(a);
            }
        }
    }
    Stop::Done
}
