//! `betaroute serve`: the origin router. hyper/tokio underneath; routing is a pure table lookup
//! over an immutable state that reloads swap atomically (`arc-swap`).
//!
//! Threads: one per core serves traffic, each with its own current-thread runtime, its own
//! `SO_REUSEPORT` listener per entry point (the kernel spreads connections) and its own backend
//! connection pool, so a request never crosses threads. A control thread runs health checks,
//! reloads, the admin endpoint, the access log writer and signal handling.

mod access_log;
mod admin;
mod balancer;
mod forward;
mod health;
mod metrics;
mod pool;
mod reload;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::CliError;
use betaroute_router::config;
use forward::{EntryPointCtx, Shared};
use metrics::Registry;
use pool::Pool;
use state::State;

#[derive(clap::Args)]
pub struct Args {
    /// Static configuration (entryPoints, admin, providers.file, accessLog).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let st = config::load_static(&args.config).map_err(|e| CliError::usage(e.to_string()))?;
    let routing = config::load_dynamic(&st.dynamic_files, st.dynamic_directory.as_deref())
        .map_err(|e| CliError::usage(e.to_string()))?;
    for w in &routing.warnings {
        eprintln!(
            "{}",
            json!({"betaroute": "config", "level": "warning", "message": w})
        );
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let listeners = bind_entry_points(&st, threads)?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    control.block_on(serve(st, routing, listeners, threads))
}

/// Per entry point: its context, header timeout, and one listener per worker thread, all bound to
/// the same address with `SO_REUSEPORT` (port 0 is resolved by the first).
type Bound = Vec<(Arc<EntryPointCtx>, Duration, Vec<std::net::TcpListener>)>;

fn bind_entry_points(st: &config::StaticConfig, threads: usize) -> Result<Bound, CliError> {
    let mut out = Vec::new();
    for ep in &st.entry_points {
        let err = |e: std::io::Error| {
            CliError::usage(format!(
                "entry point {}: cannot listen on {}: {e}",
                ep.name, ep.address
            ))
        };
        let mut addr: SocketAddr = ep.address.parse().map_err(|_| {
            CliError::usage(format!(
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
        println!(
            "{}",
            json!({"betaroute": "listening", "entrypoint": ep.name, "address": addr.to_string()})
        );
        let ctx = Arc::new(EntryPointCtx {
            name: ep.name.clone(),
            forwarded: ep.forwarded.clone(),
            routing: ep.routing.clone(),
        });
        out.push((
            ctx,
            ep.header_timeout.unwrap_or(Duration::from_secs(30)),
            socks,
        ));
    }
    Ok(out)
}

async fn serve(
    st: config::StaticConfig,
    routing: config::RoutingConfig,
    listeners: Bound,
    threads: usize,
) -> Result<ExitCode, CliError> {
    let registry = Arc::new(Registry::default());
    let ep_names: Vec<String> = st.entry_points.iter().map(|e| e.name.clone()).collect();
    let state = State::build(routing, &ep_names, None, &registry);

    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(st.timeouts.dial));
    let check_client: health::CheckClient = Client::builder(TokioExecutor::new()).build(connector);
    let access_log = st.access_log.as_ref().map(access_log::AccessLog::spawn);
    let health_tasks = health::spawn_all(&state, &check_client);
    let shared = Arc::new(Shared {
        state: ArcSwap::from_pointee(state),
        registry: registry.clone(),
        access_log,
        response_header_timeout: st.timeouts.response_header,
        in_flight: std::sync::atomic::AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    // One worker thread per core: listeners are split so that each thread gets one of each
    // entry point's sockets.
    let mut per_thread: Vec<Vec<(Arc<EntryPointCtx>, Duration, std::net::TcpListener)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (ctx, timeout, socks) in listeners {
        for (i, sock) in socks.into_iter().enumerate() {
            per_thread[i].push((ctx.clone(), timeout, sock));
        }
    }
    let mut workers = Vec::new();
    for (i, mine) in per_thread.into_iter().enumerate() {
        let shared = shared.clone();
        let stop = stop_rx.clone();
        let st = st.clone();
        let handle = std::thread::Builder::new()
            .name(format!("betaroute-worker-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("{}", json!({"betaroute": "worker", "level": "error", "message": e.to_string()}));
                        return;
                    }
                };
                rt.block_on(async move {
                    let pool = Pool::new(st.timeouts.dial, st.timeouts.idle_conn);
                    pool.spawn_sweeper();
                    for (ctx, timeout, sock) in mine {
                        match TcpListener::from_std(sock) {
                            Ok(l) => {
                                tokio::spawn(accept_loop(l, ctx, shared.clone(), pool.clone(), timeout, stop.clone()));
                            }
                            Err(e) => eprintln!("{}", json!({"betaroute": "worker", "level": "error", "message": e.to_string()})),
                        }
                    }
                    let mut stop = stop;
                    let _ = stop.changed().await;
                    drain(&shared).await;
                });
            })
            .map_err(|e| CliError::usage(format!("cannot start worker thread: {e}")))?;
        workers.push(handle);
    }

    if let Some(addr) = &st.admin {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::usage(format!("admin: cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::usage(e.to_string()))?;
        println!(
            "{}",
            json!({"betaroute": "listening", "entrypoint": "admin", "address": local.to_string()})
        );
        tokio::spawn(admin::serve(listener, shared.clone()));
    }
    let reloader = reload::Reloader::new(
        st.clone(),
        ep_names,
        shared.clone(),
        check_client,
        health_tasks,
    );
    if st.watch {
        tokio::spawn(reloader.watch(Duration::from_millis(500)));
    }

    shutdown_signal().await;
    // Graceful stop: no new connections; requests in flight get up to 10 s to finish.
    let _ = stop_tx.send(true);
    drain(&shared).await;
    for w in workers {
        let _ = w.join();
    }
    eprintln!(
        "{}",
        json!({"betaroute": "stop", "unfinished": shared.in_flight.load(Ordering::SeqCst)})
    );
    Ok(ExitCode::SUCCESS)
}

/// Waits until no request is in flight, for at most 10 s.
async fn drain(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    entry_point: Arc<EntryPointCtx>,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
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
        let shared = shared.clone();
        let ep = entry_point.clone();
        let pool = pool.clone();
        let peer_ip = Arc::new(forward::PeerIp::new(peer.ip()));
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                forward::handle(
                    shared.clone(),
                    pool.clone(),
                    ep.clone(),
                    peer_ip.clone(),
                    req,
                )
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn shutdown_signal() {
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
