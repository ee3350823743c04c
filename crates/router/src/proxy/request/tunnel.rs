//! An upgraded connection (RFC 9110 7.8; WebSocket, RFC 6455): the backend's `101` goes to the
//! client with its `Upgrade` and `Connection: Upgrade`, and once both sides have switched, the
//! two connections are spliced both ways until either closes. The request was routed like any
//! other (cohort, rules, middlewares), so a beta user's WebSocket lands on beta and stays
//! there. A WebSocket over HTTP/2 (RFC 8441: an extended CONNECT with `:protocol websocket`)
//! reaches an HTTP/1.1 backend as the RFC 6455 handshake ([`from_h2`]), and the client gets
//! the `200` RFC 8441 asks for once the backend has switched (Traefik answers 500 there:
//! traefik/traefik#7465). No idle cut-off by default: a quiet WebSocket is a healthy one (Go's
//! hijacked connections in Traefik have none either); an entry point's `upgrades.idleTimeout`
//! closes one with no byte either way for that long. The router's header timeout never
//! applies past the 101.

use base64ct::Encoding;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::super::metrics::{Cohort, Registry};
use super::super::pool::PooledBody;
use super::forwarded;
use super::Body;

/// RFC 6455 4.2.2's GUID, which the accept value hashes with the key.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An RFC 8441 WebSocket (HTTP/2 extended CONNECT, `:protocol websocket`) made the RFC 6455
/// handshake an HTTP/1.1 backend expects: a GET with a fresh `Sec-WebSocket-Key` (HTTP/2 has
/// none), the rest of its headers (version, subprotocols, extensions) as they came. Returns
/// the key, to check the backend's accept value with; none for any other request.
pub fn from_h2(parts: &mut Parts) -> Option<String> {
    let websocket = parts
        .extensions
        .get::<hyper::ext::Protocol>()
        .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if parts.method != Method::CONNECT || !websocket {
        return None;
    }
    use rand_core::RngCore;
    let mut nonce = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let key = base64ct::Base64::encode_string(&nonce);
    parts.method = Method::GET;
    let value = HeaderValue::from_str(&key).expect("base64 is a header value");
    parts.headers.insert(header::SEC_WEBSOCKET_KEY, value);
    Some(key)
}

/// The `Sec-WebSocket-Accept` a backend must answer `key` with (RFC 6455 4.2.2).
fn accept_of(key: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    base64ct::Base64::encode_string(d.as_ref())
}

/// The client's answer to a backend's `101`, and the splice behind it. A `101` the client did
/// not ask for (no upgrade on its side), or one that does not accept an HTTP/2 client's
/// handshake, is the backend's error: 502.
pub fn open(
    mut resp: Response<PooledBody>,
    client_side: Option<OnUpgrade>,
    h2_key: Option<&str>,
    router: &str,
    cohort: Cohort,
    registry: &Registry,
    idle: Option<Duration>,
) -> Response<Body> {
    let protocol = resp.headers().get(header::UPGRADE).cloned();
    let backend_side = resp.extensions_mut().remove::<OnUpgrade>();
    let accepted = h2_key.is_none_or(|key| {
        resp.headers()
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .is_some_and(|v| v.as_bytes() == accept_of(key).as_bytes())
    });
    let (Some(client_side), Some(backend_side), Some(protocol), true) =
        (client_side, backend_side, protocol, accepted)
    else {
        let mut r = Response::new(Body::own("502 Bad Gateway\n"));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        return r;
    };
    let open = registry.upgraded(router, cohort);
    tokio::spawn(async move {
        let _open = open;
        let (client, backend) = tokio::join!(client_side, backend_side);
        let (Ok(client), Ok(backend)) = (client, backend) else {
            return;
        };
        splice(TokioIo::new(client), TokioIo::new(backend), idle).await;
    });
    forwarded::strip_hop_by_hop(resp.headers_mut(), false);
    if h2_key.is_some() {
        // RFC 8441 5: the HTTP/2 client is told 200; the accept value was for us.
        *resp.status_mut() = StatusCode::OK;
        resp.headers_mut().remove(header::SEC_WEBSOCKET_ACCEPT);
    } else {
        forwarded::restore_upgrade(resp.headers_mut(), protocol);
    }
    // A 101 has no body; the backend's (empty) one goes with its pooled wrapper.
    resp.map(|_| Body::own(""))
}

/// Copies both ways until either side closes (or fails), or, with an idle limit, until no
/// byte has come from either side for that long; then both connections are dropped (closed).
async fn splice<A, B>(a: A, b: B, idle: Option<Duration>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let Some(limit) = idle else {
        let (mut a, mut b) = (a, b);
        // copy_bidirectional shuts the other's write half when one side reaches its end, and
        // returns on the first error.
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        return;
    };
    let start = Instant::now();
    let seen = Arc::new(AtomicU64::new(0));
    let mut a = Watched {
        io: a,
        seen: seen.clone(),
        start,
    };
    let mut b = Watched {
        io: b,
        seen: seen.clone(),
        start,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let last = start + Duration::from_millis(seen.load(Ordering::Relaxed));
        tokio::select! {
            _ = &mut copy => return,
            _ = tokio::time::sleep_until((last + limit).into()) => {
                let last = start + Duration::from_millis(seen.load(Ordering::Relaxed));
                if last.elapsed() >= limit {
                    return;
                }
            }
        }
    }
}

/// A connection that notes when it last gave bytes (milliseconds since `start`).
struct Watched<T> {
    io: T,
    seen: Arc<AtomicU64>,
    start: Instant,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.start.elapsed().as_millis() as u64;
            self.seen.store(now, Ordering::Relaxed);
        }
        polled
    }
}

write_through!(Watched);

#[cfg(test)]
mod tests {
    #[test]
    fn the_accept_value_of_rfc_6455s_example() {
        assert_eq!(
            super::accept_of("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
