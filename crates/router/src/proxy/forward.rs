//! One request through the proxy: match a router, pick a server, forward (bodies streamed both
//! ways), answer clearly when no server can.

use std::convert::Infallible;
use std::net::IpAddr;
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

use betaroute_core::signature::{self, Rejected};

use super::balancer::Server;
use super::metrics::{Cohort, Registry};
use super::pool::{Pool, PooledBody, SendError};
use super::state::State;
use betaroute_router::config::load::{RoutingTrust, TrustMode};

/// Response bodies: the backend's, streamed, or one of ours.
pub type Body = Either<PooledBody, Full<Bytes>>;
/// Request bodies to backends: the client's, streamed, or none (then a refused connection can be
/// retried on another server, since nothing was consumed).
pub type UpstreamBody = Either<Incoming, Empty<Bytes>>;

/// The routing header set by the edge; `true` puts a request in the beta cohort.
static COHORT: HeaderName = HeaderName::from_static("x-rikstv-beta");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A connection's peer address, as text and as a header value: computed once per connection,
/// not per request.
pub struct PeerIp {
    pub ip: IpAddr,
    pub text: String,
    pub value: HeaderValue,
}

impl PeerIp {
    pub fn new(ip: IpAddr) -> PeerIp {
        let text = ip.to_string();
        let value = HeaderValue::from_str(&text).expect("an IP address is a valid header value");
        PeerIp { ip, text, value }
    }
}

pub struct Shared {
    pub state: ArcSwap<State>,
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
    pub forwarded: betaroute_router::config::load::Forwarded,
    pub routing: RoutingTrust,
}

/// Applies the entry point's trust in routing headers, before anything looks at them: removes
/// what is not vouched for, and the signature header itself (backends never see it). Returns why
/// a signature was refused, for the metrics.
fn apply_routing_trust(t: &RoutingTrust, parts: &mut http::request::Parts) -> Option<Rejected> {
    let sig_name = t.signature_header.as_str();
    if t.mode == TrustMode::Any {
        parts.headers.remove(sig_name);
        return None;
    }
    let mut rejected = None;
    let covered: Vec<String> = match (
        t.mode,
        parts.headers.get(sig_name).and_then(|v| v.to_str().ok()),
    ) {
        (TrustMode::Signed, Some(value)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
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
            match signature::verify(&t.keys, value, now, t.fresh, &req, header) {
                // Only names that are routing headers here are honoured.
                Ok(names) => names
                    .into_iter()
                    .filter(|n| t.names.iter().any(|r| r == n))
                    .map(str::to_owned)
                    .collect(),
                Err(r) => {
                    rejected = Some(r);
                    Vec::new()
                }
            }
        }
        (TrustMode::Signed, None) => {
            if parts
                .headers
                .keys()
                .any(|n| t.policy.is_routing_header(n.as_str()))
            {
                rejected = Some(Rejected::Missing);
            }
            Vec::new()
        }
        _ => Vec::new(),
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

/// Removes hop-by-hop headers (RFC 9110 7.6.1), those the Connection header names, and, when
/// `forwarded` is set, the X-Forwarded-* family. One pass over the (few) headers present instead
/// of a hash lookup per name that might be: this runs twice per request.
fn strip_hop_by_hop(h: &mut HeaderMap, forwarded: bool) {
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
    if h.contains_key(header::CONNECTION) {
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
    }
    for n in doomed {
        h.remove(n);
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    ep: Arc<EntryPointCtx>,
    peer_ip: Arc<PeerIp>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&shared.in_flight);
    let state = shared.state.load_full();
    let (mut parts, body) = req.into_parts();
    let client_ip = peer_ip.ip;
    let entry_point = ep.name.as_str();
    if let Some(reason) = apply_routing_trust(&ep.routing, &mut parts) {
        shared.registry.signature_rejected(entry_point, reason);
    }
    let trusted = ep.forwarded.trusts(client_ip);
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
        .get(&COHORT)
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
    // What the access log needs after the request is gone; nothing when there is no log.
    let logged = shared
        .access_log
        .is_some()
        .then(|| (parts.method.clone(), parts.uri.path().to_owned()));

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
            logged.as_ref(),
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
    // Traefik's default: X-Forwarded-* from an untrusted peer are not believed.
    strip_hop_by_hop(&mut parts.headers, !trusted);
    let xff = match parts
        .headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {}", peer_ip.text)).ok(),
        None => Some(peer_ip.value.clone()),
    };
    if let Some(v) = xff {
        parts.headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    parts
        .headers
        .insert(X_REAL_IP.clone(), peer_ip.value.clone());
    if !parts.headers.contains_key(&X_FORWARDED_PROTO) {
        parts
            .headers
            .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if !parts.headers.contains_key(&X_FORWARDED_HOST) {
        if let Some(h) = &original_host {
            parts.headers.insert(X_FORWARDED_HOST.clone(), h.clone());
        }
    }
    let (result, server) = send(&shared, &pool, &target, parts, body, original_host).await;
    let (resp, status) = match result {
        Ok(mut resp) => {
            strip_hop_by_hop(resp.headers_mut(), false);
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
        server.as_ref().map(|s| s.url_text.as_str()),
        cohort,
        logged.as_ref(),
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

/// Sends to a server of the target's service. A request without a body is sent once more when
/// its connection was refused (to another server) or when a reused keep-alive connection turned
/// out closed by the backend (on a new connection).
async fn send(
    shared: &Shared,
    pool: &Arc<Pool>,
    target: &super::state::Target,
    mut parts: http::request::Parts,
    body: Incoming,
    original_host: Option<HeaderValue>,
) -> (Result<Response<PooledBody>, Failure>, Option<Arc<Server>>) {
    let Some(lb) = target.service.resolve() else {
        return (Err(Failure::NoServer), None);
    };
    let Some(mut server) = lb.pick(None) else {
        return (Err(Failure::NoServer), None);
    };
    let replayable = body.is_end_stream();
    // Headers are copied only when a second attempt can go to another server: copying them for
    // every request would cost more than the rare stale keep-alive connection it would save.
    let mut spare_headers = (replayable && lb.servers.len() > 1).then(|| parts.headers.clone());
    let mut headers = Some(std::mem::take(&mut parts.headers));
    let path_and_query = parts.uri.path_and_query().cloned();
    let mut body = Some(body);
    for attempt in 0..2 {
        let mut req = Request::new(if replayable {
            Either::Right(Empty::new())
        } else {
            Either::Left(body.take().expect("a body is sent once"))
        });
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = server.target_for(path_and_query.as_ref());
        *req.headers_mut() = headers
            .take()
            .or_else(|| spare_headers.take())
            .unwrap_or_default();
        let host = match (&original_host, lb.pass_host_header) {
            (Some(h), true) => h.clone(),
            _ => server.host_header.clone(),
        };
        req.headers_mut().insert(header::HOST, host);
        let retry = attempt == 0 && spare_headers.is_some();
        match tokio::time::timeout(
            shared.response_header_timeout,
            pool.send(&server.address, req),
        )
        .await
        {
            Ok(Ok(resp)) => return (Ok(resp), Some(server)),
            Ok(Err(SendError::Connect)) => {
                server.mark_failed();
                if retry {
                    if let Some(next) = lb.pick(Some(&server)) {
                        server = next;
                        continue;
                    }
                }
                return (Err(Failure::Connect), Some(server));
            }
            Ok(Err(SendError::Stale)) if retry => continue,
            Ok(Err(_)) => return (Err(Failure::Upstream), Some(server)),
            Err(_) => return (Err(Failure::Timeout), Some(server)),
        }
    }
    (Err(Failure::Connect), Some(server))
}

#[allow(clippy::too_many_arguments)]
fn log(
    shared: &Shared,
    entry_point: &str,
    target: Option<&super::state::Target>,
    server: Option<&str>,
    cohort: Cohort,
    logged: Option<&(http::Method, String)>,
    status: u16,
    started: Instant,
    client: IpAddr,
) {
    let (Some(access_log), Some((method, path))) = (&shared.access_log, logged) else {
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
