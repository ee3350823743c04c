//! `betaroute serve`: the origin router. hyper/tokio underneath; routing is a pure table lookup
//! over an immutable state that reloads swap atomically (`arc-swap`).

mod access_log;
mod admin;
mod balancer;
mod forward;
mod health;
mod metrics;
mod reload;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config;
use crate::error::CliError;
use forward::Shared;
use metrics::Registry;
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
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    rt.block_on(serve(st, routing))
}

async fn serve(
    st: config::StaticConfig,
    routing: config::RoutingConfig,
) -> Result<ExitCode, CliError> {
    let registry = Arc::new(Registry::default());
    let ep_names: Vec<String> = st.entry_points.iter().map(|e| e.name.clone()).collect();
    let state = State::build(routing, &ep_names, None, &registry);

    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(st.timeouts.dial));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(st.timeouts.idle_conn)
        .pool_max_idle_per_host(256)
        .timer(TokioTimer::new())
        .build(connector.clone());
    let check_client: health::CheckClient = Client::builder(TokioExecutor::new()).build(connector);

    let access_log = st.access_log.as_ref().map(access_log::AccessLog::spawn);

    let health_tasks = health::spawn_all(&state, &check_client);
    let shared = Arc::new(Shared {
        state: ArcSwap::from_pointee(state),
        client,
        registry: registry.clone(),
        access_log,
        response_header_timeout: st.timeouts.response_header,
        in_flight: std::sync::atomic::AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    for ep in &st.entry_points {
        let (name, addr) = (&ep.name, &ep.address);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            CliError::usage(format!("entry point {name}: cannot listen on {addr}: {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::usage(e.to_string()))?;
        println!(
            "{}",
            json!({"betaroute": "listening", "entrypoint": name, "address": local.to_string()})
        );
        let ctx = Arc::new(forward::EntryPointCtx {
            name: name.clone(),
            forwarded: ep.forwarded.clone(),
        });
        tokio::spawn(accept_loop(
            listener,
            ctx,
            shared.clone(),
            ep.header_timeout.unwrap_or(Duration::from_secs(30)),
            stop_rx.clone(),
        ));
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while shared.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{}",
        json!({"betaroute": "stop", "unfinished": shared.in_flight.load(std::sync::atomic::Ordering::SeqCst)})
    );
    Ok(ExitCode::SUCCESS)
}

async fn accept_loop(
    listener: TcpListener,
    entry_point: Arc<forward::EntryPointCtx>,
    shared: Arc<Shared>,
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
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward::handle(shared.clone(), ep.clone(), peer, req));
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
