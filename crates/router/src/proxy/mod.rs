//! The origin router (`betaroute serve`). hyper/tokio underneath; routing is a pure table
//! lookup over an immutable state that reloads swap atomically (`arc-swap`).
//!
//! Threads: one per core serves traffic, each with its own current-thread runtime, its own
//! `SO_REUSEPORT` listener per entry point (the kernel spreads connections) and its own backend
//! connection pool, so a request never crosses threads ([`server`]). A control thread runs
//! health checks, the provider's reload loop, the admin endpoint, the access log writer and
//! signal handling.
//!
//! A request goes through the named phases of [`request`].

/// `AsyncWrite` for a connection wrapper (`$t<T>` with the connection in `io`) that only
/// changes how it is read: writes, flushes and shutdowns go straight through.
macro_rules! write_through {
    ($t:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $t<T> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.io).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
            }
        }
    };
}

mod access_log;
mod admin;
mod api;
mod balancer;
mod body;
mod cohorts;
pub mod error;
mod grpc_web;
mod h2c_upgrade;
mod health;
mod judge;
mod metrics;
pub(crate) mod outbound;
mod pool;
mod reload;
mod request;
mod server;
pub(crate) mod shared;
mod state;
pub mod tls;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::json;

use crate::config::dynamic::Layer;
use crate::config::{self, StaticConfig};
use crate::provider::consul::ConsulProvider;
use crate::provider::file::FileProvider;
use crate::provider::Provider;
pub use error::ProxyError;
use metrics::Registry;
use shared::Shared;
use state::State;

/// How to run the router.
#[derive(Debug, Clone)]
pub struct Options {
    /// The static configuration file.
    pub config: PathBuf,
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
}

/// Loads the configuration, listens, and serves until SIGINT or SIGTERM (then lets requests in
/// flight finish, for up to 10 s).
pub fn run(opts: Options) -> Result<(), ProxyError> {
    let st = config::load_static(&opts.config)?;
    for d in &st.diagnostics {
        eprintln!(
            "{}",
            json!({"betaroute": "config", "level": d.severity.as_str(), "message": d.to_string()})
        );
    }
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProxyError::Runtime(format!("cannot start the runtime: {e}")))?;
    let providers = control.block_on(Providers::load(&st))?;
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let listeners = server::bind_entry_points(&st, threads)?;
    control.block_on(serve(st, providers, listeners, threads))
}

/// The providers the static configuration names, each with its first layer.
struct Providers {
    file: Option<FileProvider>,
    consul: Option<ConsulProvider>,
    layers: Vec<Layer>,
}

impl Providers {
    async fn load(st: &StaticConfig) -> Result<Providers, ProxyError> {
        let mut layers = Vec::new();
        let mut file = None;
        if !st.dynamic_files.is_empty() || st.dynamic_directory.is_some() {
            let mut p = FileProvider::new(
                st.dynamic_files.clone(),
                st.dynamic_directory.clone(),
                st.watch,
            );
            layers.push(p.load().await?);
            file = Some(p);
        }
        let mut consul = None;
        if let Some(opts) = &st.consul {
            let mut p = ConsulProvider::new(opts.clone())
                .map_err(|e| ProxyError::Runtime(format!("providers.consulCatalog: {e}")))?;
            layers.push(p.load().await?);
            consul = Some(p);
        }
        Ok(Providers {
            file,
            consul,
            layers,
        })
    }

    /// Starts each provider's update loop, reporting to the reloader.
    fn watch(self) -> (Vec<Layer>, reload::Reports) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut slot = 0;
        if let Some(p) = self.file {
            reload::watch(slot, p, tx.clone());
            slot += 1;
        }
        if let Some(p) = self.consul {
            reload::watch(slot, p, tx);
        }
        (self.layers, rx)
    }
}

async fn serve(
    st: StaticConfig,
    providers: Providers,
    listeners: server::Bound,
    threads: usize,
) -> Result<(), ProxyError> {
    let registry = Arc::new(Registry::default());
    let mut statics = st.statics();
    // A redirect to an entry point bound to port 0 names the port it got.
    for m in &mut statics.models {
        if let Some(r) = &mut m.redirect {
            let bound = listeners
                .iter()
                .find(|(ctx, _, _)| ctx.name == r.to)
                .and_then(|(_, _, socks)| socks.first()?.local_addr().ok());
            if let (Some(addr), "0") = (bound, r.port.as_str()) {
                r.port = addr.port().to_string();
            }
        }
    }
    let ep_names = statics.entry_points.clone();
    let (layers, reports) = providers.watch();
    for l in &layers {
        registry.provider_report(l.provider(), Ok(()));
    }
    let (routing, _) = reload::routing(&layers, &statics);
    reload::log_diagnostics(&routing.diagnostics);
    let state = State::build(routing, &ep_names, None, &registry);
    let check_client = health::CheckClient::new(st.timeouts.dial);
    let health_tasks = health::spawn_all(&state, &check_client);
    let shared = Arc::new(Shared {
        state: ArcSwap::from_pointee(state),
        registry,
        access_log: st.access_log.as_ref().map(access_log::AccessLog::spawn),
        response_header_timeout: st.timeouts.response_header,
        in_flight: std::sync::atomic::AtomicUsize::new(0),
        retry_budget: Default::default(),
        beta: Default::default(),
        admin_token: st.admin_token.clone(),
        api: api::ApiInfo {
            entry_points: st
                .entry_points
                .iter()
                .map(|e| (e.name.clone(), e.address.clone()))
                .collect(),
            providers: layers
                .iter()
                .map(|l| match l.provider() {
                    "file" => "File",
                    _ => "ConsulCatalog",
                })
                .collect(),
            access_log: st.access_log.is_some(),
            started: std::time::SystemTime::now(),
        },
    });
    let workers = server::Workers::start(&st, &shared, listeners, threads)?;
    if let Some(addr) = &st.admin {
        let listener = server::bind_admin(addr).await?;
        tokio::spawn(admin::serve(listener, shared.clone()));
    }
    let reloader =
        reload::Reloader::new(statics, shared.clone(), check_client, health_tasks, layers);
    tokio::spawn(reloader.follow(reports));
    tokio::spawn(judge::run(shared.clone()));
    server::shutdown_signal().await;
    workers.stop(&shared).await;
    Ok(())
}
