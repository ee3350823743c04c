//! Listening and serving: one `SO_REUSEPORT` socket per entry point per worker thread, a
//! current-thread runtime per worker with its own backend pool, and on the same port, told
//! apart by their first bytes as Traefik does: TLS (its ClientHello's SNI picks the TLS
//! options, ALPN `h2` or HTTP/1.1 after the handshake), h2c with prior knowledge and HTTP/1.1,
//! handed to the request path; a graceful stop (HTTP/2 connections get a GOAWAY).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::error::ProxyError;
use super::pool::Pool;
use super::request;
use super::shared::{EntryPointCtx, PeerIp, Shared, TlsConn};
use crate::config::static_config::{EntryPoint, Http2, StaticConfig};

/// Per entry point: its context, how its connections are served, and one listener per worker
/// thread, all bound to the same address with `SO_REUSEPORT` (port 0 is resolved by the first).
pub type Bound = Vec<(Arc<EntryPointCtx>, Serving, Vec<std::net::TcpListener>)>;

/// How an entry point's connections are served.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// A request head (or an HTTP/2 preface) must arrive within this.
    pub header_timeout: Duration,
    pub http2: Http2,
}

pub fn bind_entry_points(st: &StaticConfig, threads: usize) -> Result<Bound, ProxyError> {
    let header = |name: &str| {
        http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
            ProxyError::Runtime(format!("cohort header {name:?} is not a header name"))
        })
    };
    let cohort_header = header(&st.cohort_header)?;
    let label_header = header(&st.label_header)?;
    let served_by = st.served_by_header.as_deref().map(header).transpose()?;
    let mut out = Vec::new();
    for ep in &st.entry_points {
        let socks = bind_reuseport(ep, threads)?;
        let addr = socks[0].local_addr().map_err(|e| bind_error(ep, e))?;
        println!(
            "{}",
            json!({"betaroute": "listening", "entrypoint": ep.name, "address": addr.to_string()})
        );
        let ctx = Arc::new(EntryPointCtx {
            name: ep.name.clone(),
            forwarded: ep.forwarded.clone(),
            routing: ep.routing.clone(),
            cohort_header: cohort_header.clone(),
            label_header: label_header.clone(),
            served_by: served_by.clone(),
            upgrade_idle_timeout: ep.upgrade_idle_timeout,
        });
        let serving = Serving {
            header_timeout: ep.header_timeout.unwrap_or(Duration::from_secs(30)),
            http2: ep.http2,
        };
        out.push((ctx, serving, socks));
    }
    Ok(out)
}

fn bind_error(ep: &EntryPoint, source: std::io::Error) -> ProxyError {
    ProxyError::Bind {
        what: format!("entry point {}", ep.name),
        address: ep.address.clone(),
        source,
    }
}

fn bind_reuseport(
    ep: &EntryPoint,
    threads: usize,
) -> Result<Vec<std::net::TcpListener>, ProxyError> {
    let err = |e| bind_error(ep, e);
    let mut addr: SocketAddr = ep.address.parse().map_err(|_| {
        ProxyError::Runtime(format!(
            "entry point {}: bad address {}",
            ep.name, ep.address
        ))
    })?;
    let mut socks = Vec::with_capacity(threads);
    for _ in 0..threads {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .map_err(err)?;
        sock.set_reuse_address(true).map_err(err)?;
        sock.set_reuse_port(true).map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        sock.bind(&addr.into()).map_err(err)?;
        sock.listen(1024).map_err(err)?;
        let std_listener: std::net::TcpListener = sock.into();
        addr = std_listener.local_addr().map_err(err)?;
        socks.push(std_listener);
    }
    Ok(socks)
}

pub async fn bind_admin(addr: &str) -> Result<TcpListener, ProxyError> {
    let bind_err = |source| ProxyError::Bind {
        what: "admin".into(),
        address: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    println!(
        "{}",
        json!({"betaroute": "listening", "entrypoint": "admin", "address": local.to_string()})
    );
    Ok(listener)
}

/// The worker threads, and how to stop them.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    /// One worker thread per core: listeners are split so that each thread gets one of each
    /// entry point's sockets.
    pub fn start(
        st: &StaticConfig,
        shared: &Arc<Shared>,
        listeners: Bound,
        threads: usize,
    ) -> Result<Workers, ProxyError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut per_thread: Vec<Vec<(Arc<EntryPointCtx>, Serving, std::net::TcpListener)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (ctx, timeout, socks) in listeners {
            for (i, sock) in socks.into_iter().enumerate() {
                per_thread[i].push((ctx.clone(), timeout, sock));
            }
        }
        let mut handles = Vec::new();
        for (i, mine) in per_thread.into_iter().enumerate() {
            let (shared, stop, timeouts) = (shared.clone(), stop_rx.clone(), st.timeouts.clone());
            let handle = std::thread::Builder::new()
                .name(format!("betaroute-worker-{i}"))
                .spawn(move || worker(mine, shared, stop, timeouts))
                .map_err(|e| ProxyError::Runtime(format!("cannot start worker thread: {e}")))?;
            handles.push(handle);
        }
        Ok(Workers { handles, stop })
    }

    /// Graceful stop: no new connections; requests in flight get up to 10 s to finish.
    pub async fn stop(self, shared: &Shared) {
        let _ = self.stop.send(true);
        drain(shared).await;
        for w in self.handles {
            let _ = w.join();
        }
        eprintln!(
            "{}",
            json!({"betaroute": "stop", "unfinished": shared.in_flight.load(Ordering::SeqCst)})
        );
    }
}

fn worker(
    mine: Vec<(Arc<EntryPointCtx>, Serving, std::net::TcpListener)>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    timeouts: crate::config::static_config::Timeouts,
) {
    let log_error = |e: &dyn std::fmt::Display| {
        eprintln!(
            "{}",
            json!({"betaroute": "worker", "level": "error", "message": e.to_string()})
        )
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return log_error(&e),
    };
    rt.block_on(async move {
        let pool = Pool::new(timeouts.dial, timeouts.idle_conn);
        pool.spawn_sweeper();
        for (ctx, serving, sock) in mine {
            match TcpListener::from_std(sock) {
                Ok(l) => {
                    let conn = Conn {
                        entry_point: ctx,
                        shared: shared.clone(),
                        pool: pool.clone(),
                        serving,
                    };
                    tokio::spawn(accept_loop(l, conn, stop.clone()));
                }
                Err(e) => log_error(&e),
            }
        }
        let _ = stop.changed().await;
        drain(&shared).await;
    });
}

/// Waits until no request is in flight, for at most 10 s.
async fn drain(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What each connection of one entry point on one worker needs.
#[derive(Clone)]
struct Conn {
    entry_point: Arc<EntryPointCtx>,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    serving: Serving,
}

async fn accept_loop(listener: TcpListener, conn: Conn, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!(
                    "{}",
                    json!({"betaroute": "accept", "level": "error", "message": e.to_string()})
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = conn.clone();
        let stop = stop.clone();
        tokio::spawn(serve_connection(stream, conn, peer.ip(), stop));
    }
}

/// The HTTP/2 connection preface (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// A TLS record (a handshake: 0x16).
    Tls,
    /// HTTP/2's preface (h2c with prior knowledge).
    H2,
    Http1,
}

/// How the client opens, by peeking at its first bytes: a TLS handshake record, HTTP/2's
/// preface, or else HTTP/1 (which differs from the preface by its first or second byte). None:
/// it sent nothing telling within `within`, or closed.
async fn opening(stream: &tokio::net::TcpStream, within: Duration) -> Option<Opening> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if buf[0] == 0x16 {
            return Some(Opening::Tls);
        }
        if buf[..n] != PREFACE[..n] {
            return Some(Opening::Http1);
        }
        if n == PREFACE.len() {
            return Some(Opening::H2);
        }
        // Part of the preface so far: peek returns at once with what is there, so wait a
        // little for the rest rather than spin.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    conn: Conn,
    peer: std::net::IpAddr,
    stop: watch::Receiver<bool>,
) {
    let serving = conn.serving;
    let mut peer = PeerIp::new(peer);
    match opening(&stream, serving.header_timeout).await {
        None => {}
        Some(Opening::H2) => serve_http(TokioIo::new(stream), true, conn, peer, stop).await,
        Some(Opening::Http1) => serve_http(TokioIo::new(stream), false, conn, peer, stop).await,
        Some(Opening::Tls) => {
            let Some((tls, facts, h2)) = handshake(stream, &conn).await else {
                return;
            };
            peer.tls = Some(Arc::new(facts));
            serve_http(TokioIo::new(tls), h2, conn, peer, stop).await
        }
    }
}

/// The TLS handshake: the ClientHello first, whose SNI picks the options (and so the
/// certificates, versions, suites, client authentication) from the routing state current now;
/// then the rest, all within the header timeout. None: it failed (the client got an alert).
async fn handshake(
    stream: tokio::net::TcpStream,
    conn: &Conn,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    TlsConn,
    bool,
)> {
    let deadline = tokio::time::Instant::now() + conn.serving.header_timeout;
    let local = stream.local_addr().ok()?.ip();
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = tokio::time::timeout_at(deadline, acceptor)
        .await
        .ok()?
        .ok()?;
    let state = conn.shared.state.load();
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_ascii_lowercase);
    let served = state
        .tls
        .pick(&conn.entry_point.name, sni.as_deref())
        .clone();
    let config = match &sni {
        Some(_) => served.config.clone(),
        None => served.for_local(&state.tls.store, local),
    };
    drop(state);
    // Broken options: closed, as Traefik closes connections to them.
    let config = config?;
    let tls = tokio::time::timeout_at(deadline, start.into_stream(config))
        .await
        .ok()?
        .ok()?;
    let (_, session) = tls.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let facts = TlsConn {
        server_name: sni,
        version: super::tls::version_name(session.protocol_version()),
        cipher: super::tls::cipher_name(session.negotiated_cipher_suite()),
        options: served.name.clone(),
        peer_certificates: session
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    };
    Some((tls, facts, h2))
}

/// HTTP over a connection (plain or TLS): HTTP/2 when the client opened with its preface or
/// ALPN chose `h2`, else HTTP/1.1 (with upgrades, `Upgrade: h2c` on plain connections too).
async fn serve_http<I>(
    io: TokioIo<I>,
    h2: bool,
    conn: Conn,
    peer: PeerIp,
    stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = Arc::new(peer);
    if h2 {
        serve_h2(io, conn, peer, stop).await
    } else {
        serve_h1(io, conn, peer, stop).await
    }
}

async fn serve_h2<I>(io: TokioIo<I>, conn: Conn, peer: Arc<PeerIp>, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let s = conn.serving.http2;
    let svc = service_fn(move |req| {
        request::handle(
            conn.shared.clone(),
            conn.pool.clone(),
            conn.entry_point.clone(),
            peer.clone(),
            req,
        )
    });
    let mut b = http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .max_concurrent_streams(s.max_concurrent_streams)
        .header_table_size(s.header_table_size)
        .max_header_list_size(s.max_header_list_size)
        // RFC 8441: WebSockets over HTTP/2.
        .enable_connect_protocol();
    if let Some(w) = s.initial_stream_window_size {
        b.initial_stream_window_size(w);
    }
    if let Some(w) = s.initial_connection_window_size {
        b.initial_connection_window_size(w);
    }
    let c = b.serve_connection(io, svc);
    tokio::pin!(c);
    tokio::select! {
        _ = c.as_mut() => {}
        // Graceful stop: GOAWAY, and the streams in flight finish.
        _ = stop.changed() => {
            c.as_mut().graceful_shutdown();
            let _ = c.await;
        }
    }
}

async fn serve_h1<I>(io: TokioIo<I>, conn: Conn, peer: Arc<PeerIp>, stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = conn.serving.header_timeout;
    // Only plain connections switch to h2c (a TLS one would have chosen h2 by ALPN).
    let h2c_allowed = peer.tls.is_none();
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        // Only a request carrying `Upgrade` can switch to h2c: the others pay one header
        // lookup, and the upgrade's own clones are made for it alone.
        let switch = (h2c_allowed && req.headers().contains_key(http::header::UPGRADE))
            .then(|| (conn.clone(), peer.clone(), stop.clone()));
        let (shared, pool, ep, peer) = (
            conn.shared.clone(),
            conn.pool.clone(),
            conn.entry_point.clone(),
            peer.clone(),
        );
        async move {
            let req = match switch {
                None => req,
                Some(switch) => match h2c_switch(req, switch, header_timeout) {
                    Ok(switching) => return Ok(switching),
                    Err(req) => req,
                },
            };
            request::handle(shared, pool, ep, peer, req).await
        }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(io, svc)
        .with_upgrades()
        .await;
}

/// `Upgrade: h2c` (see `h2c_upgrade`): the `101`, with the HTTP/2 connection served once the
/// switch is done; or the request back, when it does not ask for (or cannot take) the switch.
#[allow(clippy::result_large_err)]
fn h2c_switch(
    req: hyper::Request<hyper::body::Incoming>,
    (conn, peer, stop): (Conn, Arc<PeerIp>, watch::Receiver<bool>),
    within: Duration,
) -> Result<hyper::Response<super::body::Body>, hyper::Request<hyper::body::Incoming>> {
    let (mut parts, body) = req.into_parts();
    let frame = super::h2c_upgrade::wanted(&parts)
        .then(|| super::h2c_upgrade::stream_one(&parts))
        .flatten();
    let on = frame
        .is_some()
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    let (Some(frame), Some(on)) = (frame, on) else {
        return Err(hyper::Request::from_parts(parts, body));
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        if let Some(io) = super::h2c_upgrade::prepare(TokioIo::new(upgraded), frame, within).await {
            serve_h2(TokioIo::new(io), conn, peer, stop).await;
        }
    });
    Ok(super::h2c_upgrade::switching(super::body::Body::own("")))
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
