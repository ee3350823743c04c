//! The send phase: a server of the target's service, and the request sent to it (bodies
//! streamed), again on another server when that is safe.
//!
//! A request that got no response byte is sent again, as NGINX's `proxy_next_upstream` and
//! Envoy's `retry_on: reset,connect-failure` do, so that an instance leaving (a deploy, a
//! scale-in) costs no failed request:
//! - a refused connection: nothing was sent, so any request without a body goes again;
//! - a reused keep-alive connection found closed, or a new one reset before any response: the
//!   backend may have seen the request, so only idempotent methods (RFC 9110 9.2.2) go again.
//!
//! A request with a body is never sent twice: its body is streamed, not kept. At most
//! [`MAX_ATTEMPTS`] servers are tried. Retries of requests a backend may have seen are bounded
//! by a budget (a share of the requests in flight, as Envoy's retry budget) so that a sick
//! backend cannot multiply the load on the others; a refused connection, which sent nothing,
//! is always retried. Each retry is counted by reason in the metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response};
use hyper::body::Body as _;

use super::super::balancer::{LoadBalancer, Server, Service};
use super::super::error::ProxyError;
use super::super::metrics::Registry;
use super::super::pool::{Pool, PooledBody, SendError, UpstreamBody};
use super::super::state::Target;
use crate::middleware::retry::{Outcome, Retry};

/// Servers tried for one request, at most.
pub const MAX_ATTEMPTS: usize = 3;

/// Retries in flight may be this share of the requests in flight (Envoy's default is 20 %).
/// These retries follow a dead connection, not an overloaded backend: when an instance dies,
/// every request it had in flight needs one at once (measured: with half the requests in
/// flight, at least 10, `wrk -c32` lost 16 and 25 requests of ~220,000 while a backend
/// restarted; with this, none). With [`MAX_ATTEMPTS`] it still bounds the load retries add...
const BUDGET_PERCENT: usize = 100;
/// ...and at least this many, so a quiet router still retries.
const BUDGET_MIN: usize = 32;

/// How many retries are in flight, to bound them.
#[derive(Debug, Default)]
pub struct RetryBudget {
    active: AtomicUsize,
}

/// A retry admitted by the budget, released when the request ends.
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RetryBudget {
    fn admit(&self, in_flight: usize) -> Option<Admitted<'_>> {
        let limit = (in_flight * BUDGET_PERCENT / 100).max(BUDGET_MIN);
        let before = self.active.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted(&self.active);
        (before < limit).then_some(admitted)
    }
}

/// Why a request is sent again, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// The connection was refused or could not be made.
    Connect,
    /// A reused keep-alive connection was found closed.
    Stale,
    /// A new connection was closed or reset before any response.
    Reset,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Connect => "connect-failure",
            RetryReason::Stale => "stale-connection",
            RetryReason::Reset => "reset",
        }
    }
}

/// RFC 9110 9.2.2: methods whose repetition has the same effect as one request.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// What the send phase needs from the router beyond the request.
pub struct SendCx<'a> {
    pub timeout: std::time::Duration,
    pub pool: &'a Arc<Pool>,
    pub budget: &'a RetryBudget,
    pub registry: &'a Registry,
    pub in_flight: usize,
}

/// Whether a failure may be retried, and why.
fn retry_reason(e: &SendError, method: &Method) -> Option<RetryReason> {
    match e {
        SendError::Connect => Some(RetryReason::Connect),
        SendError::Stale if idempotent(method) => Some(RetryReason::Stale),
        SendError::Reset if idempotent(method) => Some(RetryReason::Reset),
        _ => None,
    }
}

/// The server for the next attempt: another one not tried yet; after a closed keep-alive
/// connection, the same one again (on a new connection) when there is no other.
fn next_server(
    lb: &LoadBalancer,
    tried: &[Arc<Server>],
    reason: RetryReason,
) -> Option<Arc<Server>> {
    lb.pick(tried).or_else(|| {
        (reason == RetryReason::Stale)
            .then(|| tried.last().cloned())
            .flatten()
    })
}

/// A request body as the send phase has it: streamed once, or kept to be sent again.
pub enum SendBody {
    Once(UpstreamBody),
    Again(Bytes),
}

impl SendBody {
    /// The client's body: kept when it is empty (so a refused connection can go elsewhere).
    pub fn of(body: UpstreamBody) -> SendBody {
        if body.is_end_stream() {
            SendBody::Again(Bytes::new())
        } else {
            SendBody::Once(body)
        }
    }
}

/// The request's head, as the send phase needs it.
#[derive(Clone)]
pub struct Head {
    pub method: Method,
    pub path_and_query: Option<http::uri::PathAndQuery>,
    pub headers: http::HeaderMap,
    /// The client sent `TE: trailers` (a hop-by-hop header, gone from `headers`): passed on to
    /// HTTP/2 servers.
    pub te_trailers: bool,
}

impl Head {
    pub fn of(parts: Parts) -> Head {
        Head {
            path_and_query: parts.uri.path_and_query().cloned(),
            method: parts.method,
            headers: parts.headers,
            te_trailers: false,
        }
    }
}

/// What a send gives: the answer, and the server tried last (for the log).
type Sent = (
    Result<Response<PooledBody>, ProxyError>,
    Option<Arc<Server>>,
);

/// Sends to a server of the target's service. Returns the server tried last, for the log.
pub async fn send(
    cx: &SendCx<'_>,
    service: Option<&Service>,
    head: Head,
    body: SendBody,
    original_host: Option<&HeaderValue>,
) -> Sent {
    let Some(lb) = service.and_then(|s| s.resolve()) else {
        return (Err(ProxyError::NoServer), None);
    };
    let Some(mut server) = lb.pick(&[]) else {
        return (Err(ProxyError::NoServer), None);
    };
    let Head {
        method,
        path_and_query,
        mut headers,
        te_trailers,
    } = head;
    // Only a kept body can be sent twice: a streamed one is sent once.
    let (mut body, kept) = match body {
        SendBody::Once(b) => (Some(b), None),
        SendBody::Again(b) => (None, Some(b)),
    };
    let replayable = kept.is_some();
    let mut tried: Vec<Arc<Server>> = Vec::new();
    let mut _admitted = None;
    loop {
        tried.push(server.clone());
        let last_attempt = !replayable || tried.len() >= MAX_ATTEMPTS;
        let mut req = Request::new(match &kept {
            Some(b) => UpstreamBody::Kept(http_body_util::Full::new(b.clone())),
            None => body.take().expect("a body is sent once"),
        });
        *req.method_mut() = method.clone();
        *req.uri_mut() = server.target_for(path_and_query.as_ref());
        // The headers are kept for a next attempt only when there can be one.
        *req.headers_mut() = if last_attempt {
            std::mem::take(&mut headers)
        } else {
            headers.clone()
        };
        let host = match (original_host, lb.pass_host_header) {
            (Some(h), true) => h.clone(),
            _ => server.host_header.clone(),
        };
        req.headers_mut().insert(header::HOST, host);
        // https servers may speak HTTP/2 (ALPN): gRPC over TLS needs it there too.
        if (server.h2c || server.endpoint.tls.is_some()) && te_trailers {
            // What gRPC servers look for to know trailers reach the client (RFC 9113 8.2.2).
            req.headers_mut()
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let sent = async {
            if server.h2c {
                cx.pool.send_h2(&server.endpoint, req).await
            } else {
                cx.pool.send(&server.endpoint, req).await
            }
        };
        let timeout = server.response_header_timeout.unwrap_or(cx.timeout);
        let e = match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(resp)) => return (Ok(resp), Some(server)),
            Err(_) => return (Err(ProxyError::Timeout), Some(server)),
            Ok(Err(e)) => e,
        };
        if e == SendError::Connect {
            server.mark_failed();
        }
        let fail = match e {
            SendError::Connect => ProxyError::Connect,
            _ => ProxyError::Upstream,
        };
        let Some(reason) = retry_reason(&e, &method).filter(|_| !last_attempt) else {
            return (Err(fail), Some(server));
        };
        let Some(next) = next_server(&lb, &tried, reason) else {
            return (Err(fail), Some(server));
        };
        // A refused connection sent nothing anywhere: its retry adds no load, so only the
        // retries of requests a backend may have seen count against the budget.
        if reason != RetryReason::Connect && _admitted.is_none() {
            match cx.budget.admit(cx.in_flight) {
                Some(a) => _admitted = Some(a),
                None => return (Err(fail), Some(server)),
            }
        }
        cx.registry.retried(&lb.name, reason.as_str());
        server = next;
    }
}

/// `retry`: [`send`] up to `attempts` times with its backoff between, while the outcome is one
/// `retry` tries again. The body is kept (up to `maxRequestBodyBytes`) when there can be a next
/// try; a longer one is sent once as it came.
pub async fn send_retrying(
    cx: &SendCx<'_>,
    target: &Target,
    retry: &Retry,
    head: Head,
    body: SendBody,
    original_host: Option<&HeaderValue>,
) -> Sent {
    let started = std::time::Instant::now();
    let kept = match body {
        SendBody::Again(b) => Kept::Whole(b),
        SendBody::Once(b @ (UpstreamBody::Stream(_) | UpstreamBody::Text(_))) => {
            keep(b, retry.max_request_body_bytes).await
        }
        SendBody::Once(b) => Kept::TooLong(b),
    };
    let (body, status_retries) = match kept {
        Kept::Whole(b) => (b, retry.retries_status(&head.method)),
        Kept::TooLong(b) => {
            let service = target.service.as_deref();
            return send(cx, service, head, SendBody::Once(b), original_host).await;
        }
        Kept::Failed => return (Err(ProxyError::BadRequestBody), None),
    };
    let mut backoff = retry.backoff();
    let mut attempt = 1;
    loop {
        let this = head.clone();
        let (result, server) = send(
            cx,
            target.service.as_deref(),
            this,
            SendBody::Again(body.clone()),
            original_host,
        )
        .await;
        let outcome = match &result {
            Err(ProxyError::Connect) => Outcome::NotReached,
            Err(e) => Outcome::Status(e.status().as_u16()),
            Ok(r) => Outcome::Status(r.status().as_u16()),
        };
        if !retry.again(attempt, outcome, started.elapsed(), status_retries) {
            return (result, server);
        }
        // The answer is dropped unread: its connection is closed, not reused.
        drop(result);
        if let Some(lb) = target.service.as_ref().and_then(|s| s.resolve()) {
            cx.registry.retried(&lb.name, "retry-middleware");
        }
        attempt += 1;
        tokio::time::sleep(backoff.next(random())).await;
    }
}

/// The send phase: once, or through `retry` when the chain has one.
pub async fn send_once(
    cx: &SendCx<'_>,
    target: &Target,
    retry: Option<&Retry>,
    head: Head,
    body: SendBody,
    original_host: Option<&HeaderValue>,
) -> Sent {
    match retry {
        None => send(cx, target.service.as_deref(), head, body, original_host).await,
        Some(r) => send_retrying(cx, target, r, head, body, original_host).await,
    }
}

/// `buffering` with a `retryExpression`: [`send_once`] again at once, with the kept body,
/// while the expression holds for the try's status (a backend not reached is the proxy's 502).
pub async fn send_buffered(
    cx: &SendCx<'_>,
    target: &Target,
    buffering: &crate::middleware::buffering::Buffering,
    retry: Option<&Retry>,
    head: Head,
    body: SendBody,
    original_host: Option<&HeaderValue>,
) -> Sent {
    let kept = match body {
        SendBody::Again(b) if buffering.retry.is_some() => b,
        body => return send_once(cx, target, retry, head, body, original_host).await,
    };
    let mut attempt = 1;
    loop {
        let (result, server) = send_once(
            cx,
            target,
            retry,
            head.clone(),
            SendBody::Again(kept.clone()),
            original_host,
        )
        .await;
        let code = match &result {
            Err(e) => e.status().as_u16(),
            Ok(r) => r.status().as_u16(),
        };
        let t = crate::middleware::buffering::Try {
            attempt,
            code,
            method: &head.method,
        };
        if !buffering.again(&t) {
            return (result, server);
        }
        // The answer is dropped unread: its connection is closed, not reused.
        drop(result);
        if let Some(lb) = target.service.as_ref().and_then(|s| s.resolve()) {
            cx.registry.retried(&lb.name, "buffering");
        }
        attempt += 1;
    }
}

/// `buffering`'s request side: the body read whole, sent with its Content-Length; over
/// `maxRequestBodyBytes` (by its Content-Length, before reading, or as read), 413.
pub async fn read_whole(
    head: &mut Head,
    body: UpstreamBody,
    b: &crate::middleware::buffering::Buffering,
) -> Result<SendBody, ProxyError> {
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| b.request_too_large(n)) {
        return Err(ProxyError::RequestTooLarge);
    }
    let limit = if b.max_request_body_bytes == 0 {
        -1
    } else {
        b.max_request_body_bytes.min(i64::MAX as u64) as i64
    };
    match keep(body, limit).await {
        Kept::Whole(bytes) => {
            head.headers.remove(header::TRANSFER_ENCODING);
            head.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            Ok(SendBody::Again(bytes))
        }
        Kept::TooLong(_) => Err(ProxyError::RequestTooLarge),
        Kept::Failed => Err(ProxyError::BadRequestBody),
    }
}

enum Kept {
    Whole(Bytes),
    /// Longer than the limit: what was read, and the rest, to send once.
    TooLong(UpstreamBody),
    Failed,
}

/// Reads the body whole if it is at most `max` bytes (negative: no limit).
async fn keep(mut body: UpstreamBody, max: i64) -> Kept {
    use http_body_util::BodyExt;
    let mut buf = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Kept::Whole(buf.freeze()),
            Some(Err(_)) => return Kept::Failed,
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                }
                if max >= 0 && buf.len() as u64 > max as u64 {
                    return Kept::TooLong(UpstreamBody::Peeked(Some(buf.freeze()), Box::new(body)));
                }
            }
        }
    }
}

/// A number in [0, 1) for the backoff's randomization.
fn random() -> f64 {
    use rand_core::RngCore;
    (rand_core::OsRng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_requests_are_retried_after_they_may_have_been_seen() {
        assert_eq!(
            retry_reason(&SendError::Connect, &Method::POST),
            Some(RetryReason::Connect)
        );
        assert_eq!(
            retry_reason(&SendError::Stale, &Method::GET),
            Some(RetryReason::Stale)
        );
        assert_eq!(
            retry_reason(&SendError::Reset, &Method::DELETE),
            Some(RetryReason::Reset)
        );
        assert_eq!(retry_reason(&SendError::Reset, &Method::POST), None);
        assert_eq!(retry_reason(&SendError::Stale, &Method::PATCH), None);
        assert_eq!(retry_reason(&SendError::Upstream, &Method::GET), None);
    }

    #[test]
    fn the_budget_bounds_retries_in_flight() {
        let b = RetryBudget::default();
        let held: Vec<_> = (0..BUDGET_MIN)
            .map(|_| b.admit(0).expect("the minimum"))
            .collect();
        assert!(
            b.admit(0).is_none(),
            "beyond the minimum with nothing in flight"
        );
        assert!(b.admit(100).is_some(), "as many as the requests in flight");
        drop(held);
        assert_eq!(b.active.load(Ordering::Relaxed), 0);
    }
}
