//! The background loop over every provider: each provider's latest good layer is kept, and any
//! change is combined with the others into a new state, built off the request path and swapped
//! in whole. A provider's failed update keeps its last good layer (and says so in the log and
//! metrics); the other providers' layers are untouched.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::health::{self, CheckClient};
use super::shared::Shared;
use super::state::{self, State};
use crate::config::dynamic::{combine, Layer, Statics};
use crate::config::{ConfigErrors, Diagnostic, RoutingConfig};
use crate::provider::{Provider, Update};

/// Logs diagnostics: refused routers and features, and warnings.
pub fn log_diagnostics<'a>(diagnostics: impl IntoIterator<Item = &'a Diagnostic>) {
    for d in diagnostics {
        eprintln!(
            "{}",
            json!({"betaroute": "config", "level": d.severity.as_str(), "message": d.to_string()})
        );
    }
}

/// Every provider's layer as the routing configuration served, with what the combination
/// itself found (references across providers, entry points).
pub fn routing(layers: &[Layer], statics: &Statics) -> (RoutingConfig, Vec<Diagnostic>) {
    let refs: Vec<&Layer> = layers.iter().collect();
    let (mut config, mut own) = combine(&refs, statics);
    let before = config.diagnostics.len();
    config.check_entry_points(&statics.entry_points);
    own.extend(config.diagnostics[before..].iter().cloned());
    (config, own)
}

/// One provider's reports, tagged with its place among the layers.
pub type Reports = mpsc::UnboundedReceiver<(usize, &'static str, Update)>;

/// Runs a provider's update loop in its own task, reporting to the reloader.
pub fn watch<P: Provider>(
    slot: usize,
    mut provider: P,
    tx: mpsc::UnboundedSender<(usize, &'static str, Update)>,
) {
    tokio::spawn(async move {
        loop {
            let update = provider.next_update().await;
            if tx.send((slot, provider.name(), update)).is_err() {
                break;
            }
        }
    });
}

pub struct Reloader {
    statics: Statics,
    shared: Arc<Shared>,
    check_client: CheckClient,
    health_tasks: Vec<JoinHandle<()>>,
    layers: Vec<Layer>,
}

impl Reloader {
    pub fn new(
        statics: Statics,
        shared: Arc<Shared>,
        check_client: CheckClient,
        health_tasks: Vec<JoinHandle<()>>,
        layers: Vec<Layer>,
    ) -> Self {
        Reloader {
            statics,
            shared,
            check_client,
            health_tasks,
            layers,
        }
    }

    pub async fn follow(mut self, mut reports: Reports) {
        while let Some((slot, name, update)) = reports.recv().await {
            let reg = &self.shared.registry;
            match update {
                Update::Changed(layer) => {
                    reg.provider_report(name, Ok(()));
                    log_diagnostics(layer.diagnostics());
                    self.layers[slot] = layer;
                    self.apply(name);
                }
                Update::Alive => reg.provider_alive(name),
                Update::Failed(e) => self.keep(name, e),
                Update::Unavailable(why) => {
                    eprintln!(
                        "{}",
                        json!({"betaroute": "provider", "provider": name, "level": "error", "message": why, "kept": "last good configuration"})
                    );
                    reg.provider_report(name, Err(why));
                }
            }
        }
    }

    fn apply(&mut self, provider: &str) {
        let reg = &self.shared.registry;
        let old = self.shared.state.load_full();
        let (routing, own) = routing(&self.layers, &self.statics);
        log_diagnostics(&own);
        let summary = state::diff(&old.config, &routing);
        let new = State::build(routing, &self.statics.entry_points, Some(&old), reg);
        let tasks = health::spawn_all(&new, &self.check_client);
        self.shared.state.store(Arc::new(new));
        for t in std::mem::replace(&mut self.health_tasks, tasks) {
            t.abort();
        }
        // Log first: whoever watches the metric can then rely on the log line.
        eprintln!(
            "{}",
            json!({"betaroute": "reload", "provider": provider, "result": "success", "changes": summary})
        );
        reg.reloads_ok.fetch_add(1, Ordering::Relaxed);
        reg.last_reload_failed.store(0, Ordering::Relaxed);
    }

    fn keep(&self, provider: &str, e: ConfigErrors) {
        let reg = &self.shared.registry;
        let errors: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
        eprintln!(
            "{}",
            json!({"betaroute": "reload", "provider": provider, "result": "failure", "level": "error", "kept": "previous configuration", "errors": errors})
        );
        reg.reloads_failed.fetch_add(1, Ordering::Relaxed);
        reg.last_reload_failed.store(1, Ordering::Relaxed);
        reg.provider_report(
            provider,
            Err(format!(
                "{} error(s) in the new configuration",
                errors.len()
            )),
        );
    }
}
