//! One request through the proxy, as named phases over one per-request context, in order:
//!
//! 1. **admit**: count it in flight, apply the entry point's trust in routing headers, decide
//!    the cohort (after the trust check, so a forged header never counts as beta), and apply
//!    the beta kill switch (beta and holdback become main before matching);
//! 2. **route**: the entry point's table picks a router (404 when none matches);
//! 3. **filter**: what a router does before forwarding: 503 for a router whose configuration
//!    is refused, then its middlewares in order (`crate::middleware`), which may change the
//!    request or answer it themselves (a redirect, a 400);
//! 4. **prepare**: hop-by-hop headers out, X-Forwarded-* set;
//! 5. **send**: a server of the service, with one retry when that is safe ([`upstream`]);
//! 6. **respond**: the backend's answer (hop-by-hop headers out) or a clear error; a `101` to
//!    an upgrade request opens the tunnel ([`tunnel`]);
//! 7. **log**: metrics by cohort, the judge's comparisons, and the access log line.

mod after;
mod auth;
mod forwarded;
mod route;
mod trust;
mod tunnel;
pub mod upstream;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::access_log::Entry;
use super::balancer::Server;
use super::metrics::Cohort;
use super::pool::{Pool, PooledBody, UpstreamBody};
use super::shared::{EntryPointCtx, InFlight, PeerIp, Shared};
use super::state::{State, Target};

pub use super::body::Body;

/// What the phases learn about a request and the log needs at the end.
struct Ctx {
    started: Instant,
    cohort: Cohort,
    /// X-Forwarded-Host of a trusted edge, when the entry point routes on it.
    forwarded_host: Option<String>,
    /// Whether the peer's X-Forwarded-* headers are believed.
    trusted_peer: bool,
    target: Option<Arc<Target>>,
    server: Option<Arc<Server>>,
    /// Method and path for the access log; copied only when there is one.
    logged: Option<(Method, String)>,
}

pub async fn handle(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    ep: Arc<EntryPointCtx>,
    peer: Arc<PeerIp>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let _in_flight = InFlight::enter(&shared.in_flight);
    let state = shared.state.load_full();
    let (mut parts, body) = req.into_parts();
    let mut ctx = admit(&shared, &state, &ep, &peer, &mut parts);
    // An RFC 8441 WebSocket (HTTP/2 extended CONNECT) is the RFC 6455 GET from here on: rules
    // and middlewares see the handshake an HTTP/1.1 client would have sent.
    let h2_key = tunnel::from_h2(&mut parts);
    ctx.target = route::find(
        &state,
        &ep.name,
        peer.tls.is_some(),
        &route::View {
            parts: &parts,
            client: peer.ip,
            forwarded_host: ctx.forwarded_host.as_deref(),
        },
    );
    let Some(target) = ctx.target.clone() else {
        log(&shared, &state, &ep, &peer, &ctx, 404);
        return Ok(text(StatusCode::NOT_FOUND, "404 page not found\n"));
    };
    // Traefik's SNI check: the Host's router must have the TLS options the handshake used
    // (SNI one host, Host another, with other options: a way around mTLS or sniStrict).
    if let (Some(conn), Some(want)) = (&peer.tls, &target.tls_options) {
        if &conn.options != want {
            log(&shared, &state, &ep, &peer, &ctx, 421);
            return Ok(text(
                StatusCode::MISDIRECTED_REQUEST,
                "Misdirected Request\n",
            ));
        }
    }
    // From here a client can go away before its answer: it is logged then, as Traefik does.
    let mut pending = Unanswered {
        shared: shared.clone(),
        state: state.clone(),
        ep: ep.clone(),
        peer: peer.clone(),
        ctx: Some(ctx),
    };
    let cx = upstream::SendCx {
        timeout: shared.response_header_timeout,
        pool: &pool,
        budget: &shared.retry_budget,
        registry: &shared.registry,
        in_flight: shared.in_flight.load(std::sync::atomic::Ordering::Relaxed),
    };
    let acx = after::Cx {
        state: &state,
        send: &cx,
    };
    let ctx = pending.ctx.as_mut().expect("set above");
    let resp = match filter(ctx, &peer, &target, &mut parts).await {
        Filter::Answer(answer, after) => after::run(&acx, &after, answer, true).await,
        Filter::Forward(done) => {
            let mut resp = forward(
                &shared,
                &ep,
                &acx,
                ctx,
                &peer,
                &target,
                (parts, h2_key),
                body,
                done,
            )
            .await;
            served_by(&ep, ctx.server.as_deref(), &mut resp);
            resp
        }
    };
    let ctx = pending.ctx.take().expect("set above");
    log(&shared, &state, &ep, &peer, &ctx, resp.status().as_u16());
    Ok(resp)
}

/// Traefik's status for a request whose client closed the connection before the answer.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// A routed request not answered yet: dropped so (the client went away), it is logged as 499,
/// so metrics and the judge count it (a slow beta whose clients give up must not look fast).
struct Unanswered {
    shared: Arc<Shared>,
    state: Arc<State>,
    ep: Arc<EntryPointCtx>,
    peer: Arc<PeerIp>,
    ctx: Option<Ctx>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            log(
                &self.shared,
                &self.state,
                &self.ep,
                &self.peer,
                &ctx,
                CLIENT_CLOSED_REQUEST,
            );
        }
    }
}

/// Prepare, send and respond: the request forwarded (or answered by an `@internal` service),
/// then the response sides of the chain.
#[allow(clippy::too_many_arguments)]
async fn forward(
    shared: &Shared,
    ep: &EntryPointCtx,
    acx: &after::Cx<'_>,
    ctx: &mut Ctx,
    peer: &PeerIp,
    target: &Target,
    (mut parts, h2_key): (Parts, Option<String>),
    body: Incoming,
    mut done: Filtered,
) -> Response<Body> {
    let set_host = done.host.take().map(|(new, client)| {
        // X-Forwarded-Host is the client's, as Traefik's entry point sets it.
        if let Some(c) = client {
            parts.headers.insert(header::HOST, c);
        }
        new
    });
    // An upgrade (WebSocket): the client's side of the tunnel, taken before the headers that
    // ask for it go with the other hop-by-hop ones; they are put back for the backend.
    let upgrade = match h2_key {
        Some(_) => Some(HeaderValue::from_static("websocket")),
        None => forwarded::upgrade_of(&parts.headers).filter(|_| parts.version == Version::HTTP_11),
    };
    let client_side = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<OnUpgrade>());
    let te_trailers = parts
        .headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let websocket = upgrade
        .as_ref()
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let proto = forwarded::proto(peer.tls.is_some(), websocket);
    let mut host = prepare(ctx, peer, &mut parts, !target.chain.is_empty(), proto);
    if let Some(protocol) = upgrade {
        forwarded::restore_upgrade(&mut parts.headers, protocol);
    }
    if set_host.is_some() {
        host = set_host;
    }
    if done.no_forwarded_for {
        parts.headers.remove("x-forwarded-for");
    }
    if let Some(internal) = target.internal {
        let answer = internal_answer(shared, acx.state, internal, &parts.method);
        return after::run(acx, &done.after, answer, false).await;
    }
    let cx = acx.send;
    let mut head = upstream::Head::of(parts);
    // A request `grpcWeb` converted is gRPC: an HTTP/2 server is told trailers will reach the
    // client (a browser cannot send TE itself, and grpcio's server resets a stream without it).
    head.te_trailers = te_trailers || done.grpc_web.is_some();
    let body = match done.grpc_web {
        Some(crate::middleware::grpc_web::Format::Text) => {
            UpstreamBody::Text(Box::new(super::grpc_web::TextRequest::new(body)))
        }
        _ => UpstreamBody::Stream(body),
    };
    let body = match &done.buffering {
        None => Ok(upstream::SendBody::of(body)),
        Some(b) => upstream::read_whole(&mut head, body, b).await,
    };
    let retry = done.retry.as_deref();
    let (result, server) = match (body, &done.buffering) {
        (Err(e), _) => (Err(e), None),
        (Ok(body), None) => upstream::send_once(cx, target, retry, head, body, host.as_ref()).await,
        (Ok(body), Some(b)) => {
            upstream::send_buffered(cx, target, b, retry, head, body, host.as_ref()).await
        }
    };
    ctx.server = server;
    let mut resp = match result {
        Ok(r) if r.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let key = h2_key.as_deref();
            tunnel::open(
                r,
                client_side,
                key,
                &target.router,
                ctx.cohort,
                &shared.registry,
                ep.upgrade_idle_timeout,
            )
        }
        result => respond(result),
    };
    // inFlightReq slots last as long as the backend's body streams.
    for slot in done.held {
        resp.body_mut().hold(Box::new(slot));
    }
    after::run(acx, &done.after, resp, false).await
}

/// Admission: routing-header trust, then the cohort and the host to route on.
fn admit(
    shared: &Shared,
    state: &State,
    ep: &EntryPointCtx,
    peer: &PeerIp,
    parts: &mut Parts,
) -> Ctx {
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(reason) = trust::apply(&ep.routing, parts, now) {
        shared.registry.signature_rejected(&ep.name, reason);
    }
    let trusted_peer = ep.forwarded.trusts(peer.ip);
    let forwarded_host = (trusted_peer && ep.forwarded.use_forwarded_host)
        .then(|| route::forwarded_host(parts))
        .flatten();
    let mut cohort = Cohort::of(
        parts
            .headers
            .get_all(&ep.cohort_header)
            .iter()
            .map(HeaderValue::as_bytes),
        parts
            .headers
            .get_all(&ep.label_header)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    if cohort != Cohort::Main && !shared.beta.enabled(state.config.beta_switch.as_ref()) {
        // The kill switch: nobody is beta. The headers go before matching, so beta rules
        // cannot match; holdback, a control group of a beta that is off, is main too.
        parts.headers.remove(&ep.cohort_header);
        parts.headers.remove(&ep.label_header);
        shared
            .registry
            .cohort_overridden(&ep.name, cohort, "kill_switch");
        cohort = Cohort::Main;
    }
    Ctx {
        started,
        cohort,
        forwarded_host,
        trusted_peer,
        target: None,
        server: None,
        logged: shared
            .access_log
            .is_some()
            .then(|| (parts.method.clone(), parts.uri.path().to_owned())),
    }
}

/// The filter phase's outcome: an answer of the router's own, or the request goes on.
enum Filter {
    /// The answer, and the response sides of the middlewares before the one that answered.
    Answer(Response<Body>, Vec<crate::middleware::After>),
    Forward(Filtered),
}

/// What the middlewares leave for after the backend answered.
#[derive(Default)]
struct Filtered {
    after: Vec<crate::middleware::After>,
    no_forwarded_for: bool,
    held: Vec<crate::middleware::Slot>,
    retry: Option<Arc<crate::middleware::retry::Retry>>,
    buffering: Option<Arc<crate::middleware::buffering::Buffering>>,
    /// The Host a middleware set (`headers`' `customRequestHeaders: {Host: ...}`, Go's
    /// `req.Host`): what `passHostHeader` passes. X-Forwarded-Host keeps the client's.
    host: Option<(HeaderValue, Option<HeaderValue>)>,
    /// `grpcWeb` converted the request.
    grpc_web: Option<crate::middleware::grpc_web::Format>,
}

/// The router's own answer before any forwarding, if it has one: a refused router's 503, or
/// what a middleware answered. Middlewares that let the request go on may have changed it, and
/// may have response work left.
async fn filter(ctx: &Ctx, peer: &PeerIp, target: &Target, parts: &mut Parts) -> Filter {
    if target.refused.is_some() {
        return Filter::Answer(
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable: this route's configuration uses a feature betaroute does not support yet (see `betaroute check`)\n",
            ),
            Vec::new(),
        );
    }
    if target.chain.is_empty() {
        return Filter::Forward(Filtered::default());
    }
    // Traefik's entry point drops an untrusted peer's X-Forwarded-* before any middleware:
    // `ipAllowList`'s depth must never read a client's own X-Forwarded-For.
    if !ctx.trusted_peer {
        forwarded::strip_forwarded(&mut parts.headers);
    }
    // Go's `req.Host`: the host the client asked for.
    let host = ctx
        .forwarded_host
        .clone()
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    let mut req = crate::middleware::Req::new(parts, &host, false, peer.ip);
    if let Some(conn) = &peer.tls {
        req = req.with_tls(conn.clone());
    }
    let mut from = 0;
    let answer = loop {
        match crate::middleware::run(&target.chain, from, &mut req) {
            crate::middleware::Stop::Done => break None,
            crate::middleware::Stop::Answer(a) => break Some(a),
            crate::middleware::Stop::Wait(d, next) => {
                tokio::time::sleep(d).await;
                from = next;
            }
            crate::middleware::Stop::Auth(i) => {
                let crate::middleware::Middleware::ForwardAuth(fa) = &*target.chain[i] else {
                    unreachable!("only forwardAuth asks");
                };
                let tls = fa.tls.as_deref();
                let flow =
                    match auth::call(fa.auth_request(&req), fa.max_response_body_size, tls).await {
                        Ok((status, headers, body)) => {
                            fa.on_auth_response(&mut req, status, &headers, body)
                        }
                        Err(status) => {
                            crate::middleware::Flow::Answer(Box::new(crate::middleware::Answer {
                                status,
                                headers: Default::default(),
                                body: Bytes::new(),
                            }))
                        }
                    };
                match flow {
                    crate::middleware::Flow::Answer(mut a) => {
                        crate::middleware::respond(&req.after, &mut a.headers);
                        break Some(a);
                    }
                    _ => from = i + 1,
                }
            }
        }
    };
    req.finish();
    match answer {
        Some(a) => {
            let a = *a;
            let mut r = Response::new(Body::own(a.body));
            *r.status_mut() = a.status;
            *r.headers_mut() = a.headers;
            Filter::Answer(r, std::mem::take(&mut req.after))
        }
        None => Filter::Forward(Filtered {
            after: std::mem::take(&mut req.after),
            no_forwarded_for: req.no_forwarded_for,
            held: std::mem::take(&mut req.held),
            retry: req.retry.take(),
            buffering: req.buffering.take(),
            grpc_web: req.grpc_web,
            host: (req.host != host)
                .then(|| HeaderValue::from_str(&req.host).ok())
                .flatten()
                .map(|new| (new, HeaderValue::from_str(&host).ok())),
        }),
    }
}

/// The answer of one of Traefik's `@internal` services betaroute serves itself.
fn internal_answer(
    shared: &Shared,
    state: &State,
    internal: crate::config::Internal,
    method: &Method,
) -> Response<Body> {
    use crate::config::Internal;
    let (status, content_type, body) = match internal {
        Internal::Noop => (StatusCode::IM_A_TEAPOT, None, String::new()),
        Internal::Ping => (
            StatusCode::OK,
            Some("text/plain; charset=utf-8"),
            "OK".to_owned(),
        ),
        Internal::Prometheus => (
            StatusCode::OK,
            Some(super::admin::METRICS_TYPE),
            super::admin::metrics(shared, state),
        ),
    };
    let body = if method == Method::HEAD {
        String::new()
    } else {
        body
    };
    let mut r = Response::new(Body::own(body));
    *r.status_mut() = status;
    if let Some(t) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
    }
    r
}

/// Headers for the backend; returns the Host the client asked for (for passHostHeader).
fn prepare(
    ctx: &Ctx,
    peer: &PeerIp,
    parts: &mut Parts,
    filtered: bool,
    proto: &'static str,
) -> Option<HeaderValue> {
    let original_host = ctx
        .forwarded_host
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
    // After middlewares, an untrusted peer's X-Forwarded-* are gone already: what is left was
    // set by a middleware.
    forwarded::strip_hop_by_hop(&mut parts.headers, !ctx.trusted_peer && !filtered);
    forwarded::set_forwarded(
        &mut parts.headers,
        &peer.text,
        &peer.value,
        original_host.as_ref(),
        proto,
    );
    original_host
}

fn respond(result: Result<Response<PooledBody>, super::error::ProxyError>) -> Response<Body> {
    match result {
        Ok(mut resp) => {
            forwarded::strip_hop_by_hop(resp.headers_mut(), false);
            resp.map(Body::Backend)
        }
        Err(e) => text(e.status(), e.body()),
    }
}

/// The opt-in `cohort.servedByHeader`: the load-balancer service (pool) whose server answered,
/// beneath any weighted or failover service, for the edge's tester console to show which pool a
/// request reached. Never a server address; the backend's own header of that name is replaced,
/// so a backend cannot claim to be another pool. No server answered: no header.
fn served_by(ep: &EntryPointCtx, server: Option<&Server>, resp: &mut Response<Body>) {
    let Some(name) = &ep.served_by else {
        return;
    };
    match server {
        Some(s) => {
            resp.headers_mut().insert(name.clone(), s.service.clone());
        }
        None => {
            resp.headers_mut().remove(name);
        }
    }
}

/// Metrics by cohort for the router (or the entry point's unmatched requests), and the access
/// log line.
fn log(shared: &Shared, state: &State, ep: &EntryPointCtx, peer: &PeerIp, ctx: &Ctx, status: u16) {
    let elapsed = ctx.started.elapsed();
    match &ctx.target {
        Some(t) => {
            t.metrics.record(ctx.cohort, status, elapsed);
            for (c, side) in &t.comparisons {
                if side.accepts(ctx.cohort) {
                    c.record(*side, status, elapsed);
                }
            }
        }
        None => {
            if let Some(m) = state.unmatched.get(&ep.name) {
                m.record(ctx.cohort, status, elapsed);
            }
        }
    }
    if ctx.cohort == Cohort::Holdback {
        for c in &state.holdback {
            c.record(super::judge::Side::Holdback, status, elapsed);
        }
    }
    let (Some(access_log), Some((method, path))) = (&shared.access_log, &ctx.logged) else {
        return;
    };
    access_log.record(Entry {
        entry_point: &ep.name,
        router: ctx.target.as_ref().map(|t| t.router.as_str()),
        service: ctx.target.as_ref().map(|t| t.service_name.as_str()),
        server: ctx.server.as_ref().map(|s| s.url_text.as_str()),
        cohort: ctx.cohort.as_str(),
        method: method.as_str(),
        path,
        status,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        client: peer.ip,
    });
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::own(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
