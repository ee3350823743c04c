//! The background loop over a provider: each new configuration is built into a new state off
//! the request path and swapped in whole; a failed update keeps the last good configuration and
//! says so (log line and metrics).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinHandle;

use super::health::{self, CheckClient};
use super::shared::Shared;
use super::state::{self, State};
use crate::config::RoutingConfig;
use crate::provider::{Provider, Update};

pub struct Reloader {
    entry_points: Vec<String>,
    shared: Arc<Shared>,
    check_client: CheckClient,
    health_tasks: Vec<JoinHandle<()>>,
}

/// Logs what a configuration says of itself: refused routers and features, and warnings.
pub fn log_diagnostics(config: &RoutingConfig) {
    for d in &config.diagnostics {
        eprintln!(
            "{}",
            json!({"betaroute": "config", "level": d.severity.as_str(), "message": d.to_string()})
        );
    }
}

impl Reloader {
    pub fn new(
        entry_points: Vec<String>,
        shared: Arc<Shared>,
        check_client: CheckClient,
        health_tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        Reloader {
            entry_points,
            shared,
            check_client,
            health_tasks,
        }
    }

    pub async fn follow<P: Provider>(mut self, mut provider: P) {
        loop {
            match provider.next_update().await {
                Update::Changed(config) => self.apply(config),
                Update::Failed(e) => self.keep(provider.name(), e),
            }
        }
    }

    fn apply(&mut self, routing: RoutingConfig) {
        let reg = &self.shared.registry;
        let old = self.shared.state.load_full();
        let summary = state::diff(&old.config, &routing);
        log_diagnostics(&routing);
        let new = State::build(routing, &self.entry_points, Some(&old), reg);
        let tasks = health::spawn_all(&new, &self.check_client);
        self.shared.state.store(Arc::new(new));
        for t in std::mem::replace(&mut self.health_tasks, tasks) {
            t.abort();
        }
        // Log first: whoever watches the metric can then rely on the log line.
        eprintln!(
            "{}",
            json!({"betaroute": "reload", "result": "success", "changes": summary})
        );
        reg.reloads_ok.fetch_add(1, Ordering::Relaxed);
        reg.last_reload_failed.store(0, Ordering::Relaxed);
    }

    fn keep(&self, provider: &str, e: crate::config::ConfigErrors) {
        let reg = &self.shared.registry;
        let errors: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
        eprintln!(
            "{}",
            json!({"betaroute": "reload", "provider": provider, "result": "failure", "level": "error", "kept": "previous configuration", "errors": errors})
        );
        reg.reloads_failed.fetch_add(1, Ordering::Relaxed);
        reg.last_reload_failed.store(1, Ordering::Relaxed);
    }
}
