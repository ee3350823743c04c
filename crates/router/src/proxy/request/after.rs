//! The respond phase's middleware part: the response sides of a router's chain, innermost
//! first, over the backend's response or a middleware's own answer. Head-only sides (headers,
//! cookies) are pure (`crate::middleware::After::on_head`); the ones that need the body
//! (`compress`, `grpcWeb`) are here.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;

use super::super::body::{Body, Encoded};
use super::super::state::State;
use super::upstream::{self, Head, SendBody, SendCx};
use crate::middleware::buffering::Buffering;
use crate::middleware::compress::{Compress, Encoder, Encoding};
use crate::middleware::errors::{Errors, Original};
use crate::middleware::After;

/// How long `compress` holds a body back waiting for `minResponseBodyBytes` once some of it
/// came: Go's reverse proxy flushes every 100 ms, and Traefik's compressor starts on a flush.
const COMPRESS_HOLD: Duration = Duration::from_millis(100);

/// What the response sides need beyond the response: the services (`errors` sends to one).
pub struct Cx<'a> {
    pub state: &'a State,
    pub send: &'a SendCx<'a>,
}

/// Runs the response sides over `resp`. For a middleware's answer (`answered`), the head-only
/// sides ran already, with the answer.
pub async fn run(
    cx: &Cx<'_>,
    after: &[After],
    mut resp: Response<Body>,
    answered: bool,
) -> Response<Body> {
    for a in after.iter().rev() {
        match a {
            After::Errors(e, original) => {
                if let Some((code, from)) = e.catch(resp.status().as_u16()) {
                    resp = error_page(cx, e, original, code, from).await;
                }
            }
            After::Compress(c, e) => resp = compress(c, *e, resp).await,
            After::Buffer(b) => resp = buffer(b, resp).await,
            After::Sniff => resp = sniff(resp).await,
            After::GrpcWeb(c) => resp = grpc_web(c, resp),
            // The status the breaker saw, and the time to the end of the body, as oxy
            // measures (it records once the handler has written everything): recorded when
            // the body is done, at once for the router's own.
            After::Breaker(cb, started) => {
                let code = resp.status().as_u16();
                resp.body_mut().hold(Box::new(Recorded {
                    cb: cb.clone(),
                    code,
                    started: *started,
                }));
            }
            a if !answered => a.on_head(resp.headers_mut()),
            _ => {}
        }
    }
    resp
}

/// `compress`: `Vary: Accept-Encoding` always; the body encoded when the response may be and
/// has at least `minResponseBodyBytes` (a shorter one goes as it came).
async fn compress(c: &Compress, e: Encoding, resp: Response<Body>) -> Response<Body> {
    let (mut parts, mut body) = resp.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if !c.compresses(parts.status, &parts.headers) {
        return Response::from_parts(parts, body);
    }
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let held = match length {
        Some(n) if n < c.min_size as u64 => return Response::from_parts(parts, body),
        Some(_) => Bytes::new(),
        None => match hold_back(&mut body, c.min_size).await {
            Held::Enough(b) => b,
            Held::Ended(b) => return Response::from_parts(parts, Body::own(b)),
            Held::Failed => {
                let mut r = Response::new(Body::own("502 Bad Gateway\n"));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                return r;
            }
        },
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    // Ranges of the encoded body are not the backend's (Traefik's gzip drops it too).
    parts.headers.remove(header::ACCEPT_RANGES);
    parts.headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(e.token()),
    );
    let encoded = Encoded::new(Encoder::new(e), held, body);
    Response::from_parts(parts, Body::Encoded(Box::new(encoded)))
}

enum Held {
    /// At least the minimum came (or the backend paused after sending some): compress.
    Enough(Bytes),
    /// The body ended below the minimum: it goes as it is.
    Ended(Bytes),
    Failed,
}

/// Reads the body's first `min` bytes, or all of it if it is shorter.
async fn hold_back(body: &mut Body, min: usize) -> Held {
    let mut buf = BytesMut::new();
    while buf.len() < min {
        let next = if buf.is_empty() {
            Ok(body.frame().await)
        } else {
            tokio::time::timeout(COMPRESS_HOLD, body.frame()).await
        };
        match next {
            Err(_) => break,
            Ok(None) => return Held::Ended(buf.freeze()),
            Ok(Some(Err(_))) => return Held::Failed,
            Ok(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    buf.extend_from_slice(&d);
                }
            }
        }
    }
    Held::Enough(buf.freeze())
}

/// `grpcWeb`: the response as a gRPC-Web client reads it, head and body.
fn grpc_web(c: &crate::middleware::grpc_web::Converted, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let head = c.respond(&mut parts.headers);
    let body = super::super::grpc_web::WebResponse::new(body, c.format, head);
    Response::from_parts(parts, Body::GrpcWeb(Box::new(body)))
}

/// `errors`: the page of the middleware's service for this status, sent with the status the
/// client gets (the backend's or its rewrite) whatever the page's own status is. The backend's
/// response is dropped. A page that cannot be had gives the status with the proxy's reason.
async fn error_page(
    cx: &Cx<'_>,
    e: &Errors,
    original: &Original,
    code: u16,
    from: u16,
) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let Some(path_and_query) = e.page_request_target(code, from, &original.url) else {
        // Go's `http.Error`, as Traefik answers when the page request cannot be made.
        let mut r = Response::new(Body::own(format!(
            "{}\n",
            status.canonical_reason().unwrap_or("")
        )));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        return r;
    };
    let head = Head {
        method: http::Method::GET,
        path_and_query: Some(path_and_query),
        headers: original.headers.clone(),
        te_trailers: false,
    };
    let host = HeaderValue::from_str(&original.host).ok();
    let service = cx.state.services.get(&e.service).map(|s| &**s);
    let (result, _) = upstream::send(
        cx.send,
        service,
        head,
        SendBody::Again(Bytes::new()),
        host.as_ref(),
    )
    .await;
    let mut r = match result {
        Ok(page) => {
            let mut page = page.map(Body::Backend);
            super::forwarded::strip_hop_by_hop(page.headers_mut(), false);
            page
        }
        Err(err) => Response::new(Body::own(err.body())),
    };
    *r.status_mut() = status;
    r
}

/// `buffering`'s response side: the body read whole; over the limit, 500.
async fn buffer(b: &Buffering, resp: Response<Body>) -> Response<Body> {
    let too_large = || {
        let mut r = Response::new(Body::own("Internal Server Error"));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    };
    let (mut parts, mut body) = resp.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| b.response_too_large(n)) {
        return too_large();
    }
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Err(_)) => {
                let mut r = Response::new(Body::own("502 Bad Gateway\n"));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                return r;
            }
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                    if b.response_too_large(buf.len() as u64) {
                        return too_large();
                    }
                }
            }
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::own(buf.freeze()))
}

/// `contentType`: a response with a body and no Content-Type gets Go's guess from its first
/// bytes (up to 512, or what came in the first 100 ms).
async fn sniff(resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if resp.headers().contains_key(header::CONTENT_TYPE)
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return resp;
    }
    let (mut parts, mut body) = resp.into_parts();
    let (first, ended) =
        match hold_back(&mut body, crate::middleware::content_type::SNIFF_LEN).await {
            Held::Enough(b) => (b, false),
            Held::Ended(b) => (b, true),
            Held::Failed => {
                let mut r = Response::new(Body::own("502 Bad Gateway\n"));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                return r;
            }
        };
    // Go guesses only from a first write with bytes in it.
    if !first.is_empty() {
        let t = crate::middleware::content_type::detect(&first);
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
    }
    let body = if ended {
        Body::own(first)
    } else {
        Body::Prefixed(Some(first), Box::new(body))
    };
    Response::from_parts(parts, body)
}

/// A circuit breaker's record of one response, made when dropped: when its body is done.
struct Recorded {
    cb: std::sync::Arc<crate::middleware::circuit_breaker::CircuitBreaker>,
    code: u16,
    started: std::time::Instant,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.cb.record(
            crate::middleware::unix_now(),
            self.code,
            self.started.elapsed(),
        );
    }
}
