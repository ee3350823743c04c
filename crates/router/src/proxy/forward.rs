//! One request through the proxy: match a router, pick a server, forward (bodies streamed both
//! ways), answer clearly when no server can.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use betaroute_core::rules::RequestView;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};

use super::balancer::Server;
use super::metrics::{Cohort, Registry};
use super::state::State;

/// Response bodies: the backend's, streamed, or one of ours.
pub type Body = Either<Incoming, Full<Bytes>>;
/// Request bodies to backends: the client's, streamed, or none (then a refused connection can be
/// retried on another server, since nothing was consumed).
pub type UpstreamBody = Either<Incoming, Empty<Bytes>>;

/// The routing header set by the edge; `true` puts a request in the beta cohort.
pub const COHORT_HEADER: &str = "x-rikstv-beta";

pub struct Shared {
    pub state: ArcSwap<State>,
    pub client: Client<HttpConnector, UpstreamBody>,
    pub registry: Arc<Registry>,
    pub access_log: Option<super::access_log::AccessLog>,
    pub response_header_timeout: Duration,
    /// Requests being served, so a shutdown can let them finish.
    pub in_flight: AtomicUsize,
}

/// Counts a request as in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An entry point's identity and trust settings, shared by its connections.
pub struct EntryPointCtx {
    pub name: String,
    pub forwarded: crate::config::load::Forwarded,
}

/// The X-Forwarded-* headers betaroute sets; from untrusted peers they are replaced.
const FORWARDED: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-real-ip",
];

/// The rule engine's view of a request.
struct View<'a> {
    parts: &'a http::request::Parts,
    client: IpAddr,
    /// Host to route on instead of the request's (X-Forwarded-Host from a trusted edge).
    forwarded_host: Option<&'a str>,
}

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }
    fn host(&self) -> &str {
        if let Some(h) = self.forwarded_host {
            return h;
        }
        // An absolute-form target's authority wins over the Host header (as in Go's net/http).
        match self.parts.uri.authority() {
            Some(a) => a.as_str(),
            None => self
                .parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        }
    }
    fn path(&self) -> &str {
        self.parts.uri.path()
    }
    fn query(&self) -> Option<&str> {
        self.parts.uri.query()
    }
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.parts
            .headers
            .get_all(name)
            .iter()
            .any(|v| f(v.as_bytes()))
    }
    fn client_ip(&self) -> Option<IpAddr> {
        Some(self.client)
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Hop-by-hop headers (RFC 9110 7.6.1) and those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ] {
        h.remove(n);
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    ep: Arc<EntryPointCtx>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&shared.in_flight);
    let state = shared.state.load_full();
    let (mut parts, body) = req.into_parts();
    let client_ip = peer.ip();
    let entry_point = ep.name.as_str();
    let trusted = ep.forwarded.trusts(client_ip);
    if !trusted {
        // Traefik's default: X-Forwarded-* from an untrusted peer are not believed.
        for h in FORWARDED {
            parts.headers.remove(h);
        }
    }
    let forwarded_host = if trusted && ep.forwarded.use_forwarded_host {
        parts
            .headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    } else {
        None
    };
    let cohort = if parts
        .headers
        .get(COHORT_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        Cohort::Beta
    } else {
        Cohort::Main
    };
    let target = state
        .tables
        .get(entry_point)
        .and_then(|t| {
            t.find(&View {
                parts: &parts,
                client: client_ip,
                forwarded_host: forwarded_host.as_deref(),
            })
        })
        .map(|r| r.target.clone());
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();

    let Some(target) = target else {
        let resp = text(StatusCode::NOT_FOUND, "404 page not found\n");
        if let Some(m) = state.unmatched.get(entry_point) {
            m.record(cohort, 404, started.elapsed());
        }
        log(
            &shared,
            entry_point,
            None,
            None,
            cohort,
            &method,
            &path,
            404,
            started,
            client_ip,
        );
        return Ok(resp);
    };

    let original_host = forwarded_host
        .as_deref()
        .and_then(|h| HeaderValue::from_str(h).ok())
        .or_else(|| parts.headers.get(header::HOST).cloned())
        .or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
    strip_hop_by_hop(&mut parts.headers);
    let ip = client_ip.to_string();
    let xff = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        parts.headers.insert("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ip) {
        parts.headers.insert("x-real-ip", v);
    }
    if !parts.headers.contains_key("x-forwarded-proto") {
        parts
            .headers
            .insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if !parts.headers.contains_key("x-forwarded-host") {
        if let Some(h) = &original_host {
            parts.headers.insert("x-forwarded-host", h.clone());
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();

    let (result, server) = send(
        &shared,
        &target,
        &parts,
        body,
        &path_and_query,
        original_host.as_ref(),
    )
    .await;
    let (resp, status) = match result {
        Ok(mut resp) => {
            strip_hop_by_hop(resp.headers_mut());
            let status = resp.status().as_u16();
            (resp.map(Either::Left), status)
        }
        Err(e) => {
            let r = text(e.status(), e.body());
            (r, e.status().as_u16())
        }
    };
    target.metrics.record(cohort, status, started.elapsed());
    log(
        &shared,
        entry_point,
        Some(&target),
        server.as_deref(),
        cohort,
        &method,
        &path,
        status,
        started,
        client_ip,
    );
    Ok(resp)
}

#[derive(Debug)]
enum Failure {
    NoServer,
    Connect,
    Timeout,
    Upstream,
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Connect | Failure::Upstream => StatusCode::BAD_GATEWAY,
        }
    }
    fn body(&self) -> &'static str {
        match self {
            Failure::NoServer => "no available server\n",
            Failure::Timeout => "Gateway Timeout: the backend did not answer in time\n",
            Failure::Connect => "Bad Gateway: the backend refused the connection\n",
            Failure::Upstream => "Bad Gateway: the backend's answer was invalid or cut short\n",
        }
    }
}

/// Sends to a server of the target's service; a refused connection of a request without a body
/// is retried once on another server.
async fn send(
    shared: &Shared,
    target: &super::state::Target,
    parts: &http::request::Parts,
    body: Incoming,
    path_and_query: &str,
    original_host: Option<&HeaderValue>,
) -> (Result<Response<Incoming>, Failure>, Option<String>) {
    let Some(lb) = target.service.resolve() else {
        return (Err(Failure::NoServer), None);
    };
    let Some(first) = lb.pick(None) else {
        return (Err(Failure::NoServer), None);
    };
    let replayable = body.is_end_stream();
    let mut body = Some(body);
    let mut server: Arc<Server> = first;
    for attempt in 0..2 {
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(format!(
                "{}{}",
                server.url.to_string().trim_end_matches('/'),
                path_and_query
            ))
            .version(http::Version::HTTP_11)
            .body(if replayable {
                Either::Right(Empty::new())
            } else {
                Either::Left(body.take().expect("sent once"))
            })
            .expect("valid request parts");
        *req.headers_mut() = parts.headers.clone();
        match (lb.pass_host_header, original_host) {
            (true, Some(h)) => {
                req.headers_mut().insert(header::HOST, h.clone());
            }
            _ => {
                if let Ok(v) = HeaderValue::from_str(&server.authority) {
                    req.headers_mut().insert(header::HOST, v);
                }
            }
        }
        let url = server.url.to_string();
        match tokio::time::timeout(shared.response_header_timeout, shared.client.request(req)).await
        {
            Ok(Ok(resp)) => return (Ok(resp), Some(url)),
            Ok(Err(e)) if e.is_connect() => {
                server.mark_failed();
                if attempt == 0 && replayable {
                    if let Some(next) = lb.pick(Some(&server)) {
                        server = next;
                        continue;
                    }
                }
                return (Err(Failure::Connect), Some(url));
            }
            Ok(Err(_)) => return (Err(Failure::Upstream), Some(url)),
            Err(_) => return (Err(Failure::Timeout), Some(url)),
        }
    }
    (Err(Failure::Connect), None)
}

#[allow(clippy::too_many_arguments)]
fn log(
    shared: &Shared,
    entry_point: &str,
    target: Option<&super::state::Target>,
    server: Option<&str>,
    cohort: Cohort,
    method: &http::Method,
    path: &str,
    status: u16,
    started: Instant,
    client: IpAddr,
) {
    let Some(access_log) = &shared.access_log else {
        return;
    };
    access_log.record(super::access_log::Entry {
        entry_point,
        router: target.map(|t| t.router.as_str()),
        service: target.map(|t| t.service_name.as_str()),
        server,
        cohort: cohort.as_str(),
        method: method.as_str(),
        path,
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        client,
    });
}

/// RFC 3339 UTC time with milliseconds, without a date crate.
pub fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
