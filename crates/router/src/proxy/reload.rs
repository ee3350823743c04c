//! Hot reload: watch the dynamic configuration, and on change parse, validate and build the new
//! state off the request path, then swap it in. A broken file keeps the last good configuration.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use super::forward::Shared;
use super::health::{self, CheckClient};
use super::state::{self, State};
use betaroute_router::config::{self, StaticConfig};

pub struct Reloader {
    st: StaticConfig,
    entry_points: Vec<String>,
    shared: Arc<Shared>,
    check_client: CheckClient,
    health_tasks: Vec<JoinHandle<()>>,
}

impl Reloader {
    pub fn new(
        st: StaticConfig,
        entry_points: Vec<String>,
        shared: Arc<Shared>,
        check_client: CheckClient,
        health_tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        Reloader {
            st,
            entry_points,
            shared,
            check_client,
            health_tasks,
        }
    }

    /// The bytes of every dynamic configuration file, to notice any change (edits in place,
    /// atomic renames, files added to or removed from a directory).
    fn snapshot(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let paths = config::load::dynamic_paths(
            &self.st.dynamic_files,
            self.st.dynamic_directory.as_deref(),
        )
        .unwrap_or_default();
        paths
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap_or_default();
                (p, bytes)
            })
            .collect()
    }

    pub async fn watch(mut self, every: Duration) {
        let mut last = self.snapshot();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = self.snapshot();
            if now == last {
                continue;
            }
            last = now;
            self.reload();
        }
    }

    fn reload(&mut self) {
        let reg = &self.shared.registry;
        match config::load_dynamic(&self.st.dynamic_files, self.st.dynamic_directory.as_deref()) {
            Ok(routing) => {
                let old = self.shared.state.load_full();
                let summary = state::diff(&old.config, &routing);
                for w in &routing.warnings {
                    eprintln!(
                        "{}",
                        json!({"betaroute": "config", "level": "warning", "message": w})
                    );
                }
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
            Err(e) => {
                let errors: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
                eprintln!(
                    "{}",
                    json!({"betaroute": "reload", "result": "failure", "level": "error", "kept": "previous configuration", "errors": errors})
                );
                reg.reloads_failed.fetch_add(1, Ordering::Relaxed);
                reg.last_reload_failed.store(1, Ordering::Relaxed);
            }
        }
    }
}
