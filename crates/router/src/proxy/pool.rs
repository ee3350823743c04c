//! A worker thread's keep-alive connections to backends: HTTP/1.1 over hyper's connection API.
//!
//! Why not hyper-util's pooled client: it is built for many threads sharing one pool (an
//! `Arc<Mutex>` pool keyed by hashed scheme and authority, a checkout future racing a connect
//! future, a spawned task per returned connection); replacing it saved about 5% of the router's
//! CPU per request (alternating runs). Here each worker thread owns its pool, so a checkout is an
//! uncontended lock, a map lookup and a pop. A connection goes back to the pool when the
//! response body that came over it has been read to its end (LIFO, so the warmest connection is
//! reused first); a response abandoned halfway closes its connection, as it must in HTTP/1.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use http_body_util::Full;

use super::transport::Endpoint;

/// Request bodies to backends: the client's, streamed; one kept whole (none at all, or one a
/// `retry` may send again), which a refused connection can send to another server; one with its
/// first bytes read already (a body over `retry`'s limit); or a `grpcWeb` `-text` client's,
/// base64-decoded as it streams.
pub enum UpstreamBody {
    Stream(Incoming),
    Kept(Full<Bytes>),
    Peeked(Option<Bytes>, Box<UpstreamBody>),
    Text(Box<super::grpc_web::TextRequest>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = super::grpc_web::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Stream(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Kept(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            UpstreamBody::Peeked(first, rest) => match first.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => Pin::new(&mut **rest).poll_frame(cx),
            },
            UpstreamBody::Text(t) => t.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Stream(b) => b.is_end_stream(),
            UpstreamBody::Kept(b) => b.is_end_stream(),
            UpstreamBody::Peeked(first, rest) => first.is_none() && rest.is_end_stream(),
            UpstreamBody::Text(t) => t.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Stream(b) => b.size_hint(),
            UpstreamBody::Kept(b) => b.size_hint(),
            UpstreamBody::Peeked(first, rest) => {
                let extra = first.as_ref().map_or(0, |f| f.len() as u64);
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + extra);
                if let Some(u) = h.upper() {
                    out.set_upper(u + extra);
                }
                out
            }
            // Decoded as it comes: no length is known (none is sent; HTTP/2 needs none).
            UpstreamBody::Text(_) => SizeHint::default(),
        }
    }
}

/// Idle connections kept per backend and worker thread; more are closed when they come back.
const MAX_IDLE_PER_SERVER: usize = 256;

struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
    /// How long it may stay idle (its transport's `idleConnTimeout`).
    ttl: Duration,
}

pub struct Pool {
    idle: Mutex<HashMap<Arc<str>, Vec<Idle>>>,
    /// One multiplexed HTTP/2 connection per `h2c://` backend and worker thread.
    h2: Mutex<HashMap<Arc<str>, http2::SendRequest<UpstreamBody>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

/// Why a request did not get a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No connection could be made (refused, unreachable, DNS, timeout): nothing was sent.
    Connect,
    /// A reused keep-alive connection turned out closed before any response came back (the
    /// backend closed it while idle, or went away).
    Stale,
    /// A new connection was closed or reset after the request was written, before any response
    /// byte (the backend died or is shutting down).
    Reset,
    /// The backend's answer was invalid, or the connection failed mid-exchange.
    Upstream,
}

impl Pool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
            connect_timeout,
            idle_timeout,
        })
    }

    /// Sends `req` (origin-form URI, Host header set) to the server at `ep`, on an idle
    /// connection when there is one.
    pub async fn send(
        self: &Arc<Self>,
        ep: &Endpoint,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        // An upgrade (WebSocket) takes a connection of its own: it becomes the tunnel, so it
        // is never one from the pool nor given back to it.
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        // An https server that chose HTTP/2 by ALPN: its one multiplexed connection.
        if !upgrade && ep.tls.as_ref().is_some_and(|t| t.h2) {
            if let Some(s) = self.cached_h2(&ep.key) {
                return self.send_on_h2(ep, s, true, req).await;
            }
        }
        // Idle connections can turn out closed; a new connection that fails at once is an error.
        loop {
            let checked_out = if upgrade {
                None
            } else {
                self.checkout(&ep.key, self.ttl(ep))
            };
            let (mut sender, reused) = match checked_out {
                Some(s) => (s, true),
                None => match self.connect(ep, upgrade).await? {
                    Connected::H1(s) => (s, false),
                    Connected::H2(s) => {
                        self.keep_h2(&ep.key, &s);
                        return self.send_on_h2(ep, s, false, req).await;
                    }
                },
            };
            if !sender.is_ready() && sender.ready().await.is_err() {
                if reused {
                    continue; // closed while idle: try the next one
                }
                // A new connection that closed before taking the request: nothing was sent.
                return Err(SendError::Connect);
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let back = (!upgrade).then(|| Return {
                        pool: self.clone(),
                        key: ep.key.clone(),
                        ttl: self.ttl(ep),
                        max_idle: ep.max_idle.unwrap_or(MAX_IDLE_PER_SERVER),
                        sender,
                    });
                    return Ok(Response::from_parts(
                        parts,
                        PooledBody {
                            body,
                            back,
                            held: Vec::new(),
                        },
                    ));
                }
                Err(mut e) => match e.take_message() {
                    // Not written at all (the connection closed under us): send it elsewhere.
                    Some(r) if reused => req = r,
                    Some(_) => return Err(SendError::Connect),
                    None => {
                        return Err(match (no_response(e.error()), reused) {
                            (true, true) => SendError::Stale,
                            (true, false) => SendError::Reset,
                            (false, _) => SendError::Upstream,
                        });
                    }
                },
            }
        }
    }

    /// Sends `req` to an `h2c://` server at `authority` (HTTP/2 with prior knowledge), on the
    /// worker's connection to it, made when there is none or it has closed. The Host header
    /// becomes `:authority`.
    pub async fn send_h2(
        self: &Arc<Self>,
        ep: &Endpoint,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let (sender, reused) = match self.cached_h2(&ep.key) {
            Some(s) => (s, true),
            None => {
                let stream = self.dial(ep).await?;
                let s = handshake2(stream).await?;
                self.keep_h2(&ep.key, &s);
                (s, false)
            }
        };
        self.send_on_h2(ep, sender, reused, req).await
    }

    fn keep_h2(&self, key: &Arc<str>, s: &http2::SendRequest<UpstreamBody>) {
        let mut h2 = self.h2.lock().unwrap_or_else(|p| p.into_inner());
        h2.insert(key.clone(), s.clone());
    }

    /// The worker's HTTP/2 connection to this endpoint, if it is open.
    fn cached_h2(&self, key: &str) -> Option<http2::SendRequest<UpstreamBody>> {
        let h2 = self.h2.lock().unwrap_or_else(|p| p.into_inner());
        h2.get(key).filter(|s| !s.is_closed()).cloned()
    }

    /// Sends `req` as a stream of an HTTP/2 connection: the Host header becomes `:authority`,
    /// the scheme is the connection's.
    async fn send_on_h2(
        &self,
        ep: &Endpoint,
        mut sender: http2::SendRequest<UpstreamBody>,
        reused: bool,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let host = req
            .headers_mut()
            .remove(http::header::HOST)
            .and_then(|h| h.to_str().ok().map(str::to_owned))
            .unwrap_or_else(|| ep.address.to_string());
        let pq = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let scheme = if ep.tls.is_some() { "https" } else { "http" };
        *req.uri_mut() = format!("{scheme}://{host}{pq}")
            .parse()
            .map_err(|_| SendError::Upstream)?;
        *req.version_mut() = http::Version::HTTP_2;
        if sender.ready().await.is_err() {
            return Err(if reused {
                SendError::Stale
            } else {
                SendError::Connect
            });
        }
        match sender.send_request(req).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                Ok(Response::from_parts(
                    parts,
                    PooledBody {
                        body,
                        back: None,
                        held: Vec::new(),
                    },
                ))
            }
            Err(e) => Err(match (no_response(&e), reused) {
                (true, true) => SendError::Stale,
                (true, false) => SendError::Reset,
                (false, _) => SendError::Upstream,
            }),
        }
    }

    /// How long the endpoint's connections may stay idle.
    fn ttl(&self, ep: &Endpoint) -> Duration {
        ep.idle_timeout.unwrap_or(self.idle_timeout)
    }

    fn checkout(&self, key: &str, ttl: Duration) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && now.duration_since(c.since) < ttl {
                return Some(c.sender);
            }
        }
        None
    }

    fn checkin(&self, r: Return) {
        if r.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(r.key).or_default();
        if list.len() < r.max_idle {
            list.push(Idle {
                sender: r.sender,
                since: Instant::now(),
                ttl: r.ttl,
            });
        }
    }

    /// A TCP connection to the endpoint within its dial timeout, without Nagle's delay.
    async fn dial(&self, ep: &Endpoint) -> Result<TcpStream, SendError> {
        let timeout = ep.dial_timeout.unwrap_or(self.connect_timeout);
        match tokio::time::timeout(timeout, TcpStream::connect(&*ep.address)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            _ => Err(SendError::Connect),
        }
    }

    /// A new connection to the endpoint: TLS for https (HTTP/2 when the server chose it by
    /// ALPN, unless `h1_only`, as an upgrade needs), else HTTP/1.1 over TCP.
    async fn connect(&self, ep: &Endpoint, h1_only: bool) -> Result<Connected, SendError> {
        let stream = self.dial(ep).await?;
        let Some(t) = &ep.tls else {
            return handshake1(stream).await.map(Connected::H1);
        };
        let config = if h1_only || !t.h2 {
            t.config_h1.clone()
        } else {
            t.config.clone()
        };
        // The TLS handshake counts as connecting: a server whose certificate does not verify
        // was never reached, and nothing was sent.
        let timeout = ep.dial_timeout.unwrap_or(self.connect_timeout);
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(timeout, connector.connect(t.name.clone(), stream))
            .await
            .map_err(|_| SendError::Connect)?
            .map_err(|_| SendError::Connect)?;
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            handshake2(tls).await.map(Connected::H2)
        } else {
            handshake1(tls).await.map(Connected::H1)
        }
    }

    /// Closes connections idle for longer than the idle timeout, and forgets closed ones.
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        idle.retain(|_, list| {
            list.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < c.ttl);
            !list.is_empty()
        });
    }

    /// Runs `sweep` periodically for as long as the worker's runtime lives.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let every = (self.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match pool.upgrade() {
                    Some(p) => p.sweep(),
                    None => return,
                }
            }
        });
    }
}

/// hyper's errors for a connection that ended before a response started: an idle keep-alive
/// connection the backend had closed.
/// The connection ended (closed, reset, aborted) before any response came back.
fn no_response(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        cur = c.source();
    }
    false
}

struct Return {
    pool: Arc<Pool>,
    key: Arc<str>,
    ttl: Duration,
    max_idle: usize,
    sender: SendRequest<UpstreamBody>,
}

/// A new connection, as the server speaks on it.
enum Connected {
    H1(SendRequest<UpstreamBody>),
    H2(http2::SendRequest<UpstreamBody>),
}

/// An HTTP/2 client connection over `io` (h2c, or TLS with ALPN `h2`), driven on this worker
/// thread.
async fn handshake2<I>(io: I) -> Result<http2::SendRequest<UpstreamBody>, SendError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| SendError::Connect)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// An HTTP/1.1 client connection over `io` (TCP or TLS), driven on this worker thread; it ends
/// when the backend closes it or its last sender is dropped.
async fn handshake1<I>(io: I) -> Result<SendRequest<UpstreamBody>, SendError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| SendError::Connect)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// A backend's response body that hands its connection back to the pool once read to the end.
pub struct PooledBody {
    body: Incoming,
    back: Option<Return>,
    /// What lives as long as the response streams (an `inFlightReq` slot).
    held: Vec<Box<dyn Send + Sync>>,
}

impl PooledBody {
    /// Keeps `thing` until the body is done (dropped).
    pub fn hold(&mut self, thing: Box<dyn Send + Sync>) {
        self.held.push(thing);
    }

    fn give_back(&mut self) {
        if let Some(r) = self.back.take() {
            let pool = r.pool.clone();
            pool.checkin(r);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            // A failed body means a broken connection: never reuse it.
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // hyper stops polling a body once `is_end_stream` says it is complete (a Content-Length
        // body's last bytes), so the hand-back happens here. A body dropped early is not
        // complete, and its connection is closed with the last sender.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}
