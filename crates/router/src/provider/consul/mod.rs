//! `providers.consulCatalog`: routing from Consul's catalog and the Traefik tags on its
//! services, as Traefik's provider of that name.
//!
//! - [`client`]: Consul's HTTP API (token, datacenter, blocking queries).
//! - [`catalog`]: the services and their instances with health.
//! - [`labels`]: tags as labels, labels as a located configuration tree.
//! - [`build`]: instances to one validated layer (pure).
//!
//! Changes: with `watch`, two blocking queries stay parked in Consul (the service list and
//! every check's state, as Traefik's watch plans do; a third on the kill switch's KV key with
//! betaroute's `cohortsKey`), so a tag, health or switch change is read at once; without it, the catalog is read every `refreshInterval`. When Consul cannot be read,
//! the last good configuration stays and reads are retried with capped exponential backoff.

pub mod build;
pub mod catalog;
pub mod client;
pub mod labels;
pub(crate) mod tls;

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::{Provider, Update};
use crate::config::dynamic::Layer;
use crate::config::static_config::consul::ConsulOptions;
use crate::config::ConfigErrors;
use catalog::Catalog;
use client::{Consistency, ConsulClient, ConsulError};

/// How long the router's start waits for the first catalog.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// The provider name, as in `api@consulcatalog`.
pub const CONSUL_PROVIDER: &str = "consulcatalog";

/// Retry delays after a failed read: from 500 ms, times 1.5, capped at 30 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(30);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next retry; each call makes the following one longer.
    pub fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 3 / 2).min(Self::CAP);
        d
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// What the watchers tell the provider.
#[derive(Debug)]
enum Signal {
    /// The services list or a check changed.
    Changed,
    Failed(ConsulError),
}

pub struct ConsulProvider {
    opts: ConsulOptions,
    client: ConsulClient,
    last: Option<Catalog>,
    /// The last read failed: read again after this delay, not only on the next signal.
    retry: Option<Duration>,
    backoff: Backoff,
    signals: Option<mpsc::Receiver<Signal>>,
}

impl ConsulProvider {
    pub fn new(opts: ConsulOptions) -> Result<ConsulProvider, ConsulError> {
        let consistency = Consistency {
            stale: opts.stale,
            cache: opts.cache,
            require_consistent: opts.require_consistent,
        };
        let client = ConsulClient::new(&opts.endpoint, consistency, &client::process_env)?;
        Ok(ConsulProvider {
            opts,
            client,
            last: None,
            retry: None,
            backoff: Backoff::new(),
            signals: None,
        })
    }

    async fn read(&mut self) -> Update {
        match catalog::read_catalog(&self.client, &self.opts).await {
            Ok(c) => {
                self.retry = None;
                self.backoff.reset();
                if self.last.as_ref() == Some(&c) {
                    return Update::Alive;
                }
                let layer = build::build(&c, &self.opts);
                self.last = Some(c);
                Update::Changed(layer)
            }
            Err(e) => {
                self.retry = Some(self.backoff.step());
                Update::Unavailable(format!(
                    "{e} (retrying in {:?})",
                    self.retry.unwrap_or_default()
                ))
            }
        }
    }

    /// Starts the blocking-query watchers, once: the services list, every check's state, and
    /// the kill switch's KV key when `cohortsKey` is set.
    fn start_watchers(&mut self) -> &mut mpsc::Receiver<Signal> {
        self.signals.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(4);
            let mut paths = vec![
                "/v1/catalog/services".to_owned(),
                "/v1/health/state/any".to_owned(),
            ];
            if let Some(key) = &self.opts.cohorts_key {
                paths.push(catalog::kv_path(key));
            }
            for path in paths {
                tokio::spawn(watch(self.client.clone(), path, tx.clone()));
            }
            rx
        })
    }
}

/// Follows one endpoint with blocking queries, signalling each change of its index. As
/// Consul's watch package: an index that goes backwards restarts from 0, and an error backs
/// off before the next try.
async fn watch(client: ConsulClient, path: String, tx: mpsc::Sender<Signal>) {
    let mut index = 0u64;
    let mut backoff = Backoff::new();
    // A KV key that does not exist answers 404 (with an index to block on).
    let kv = path.starts_with("/v1/kv/");
    let ok: &[u16] = if kv { &[404] } else { &[] };
    loop {
        // An answer is only a change if it is one: a body that is not JSON is a failure.
        let answer = client.get(&path, &[], Some(index), ok).await.and_then(|a| {
            if !kv || a.status == http::StatusCode::OK {
                a.json::<serde::de::IgnoredAny>(&path)?;
            }
            Ok(a)
        });
        match answer {
            Ok(answer) => {
                backoff.reset();
                let changed = answer.index != index;
                index = if answer.index < index {
                    0
                } else {
                    answer.index
                };
                if changed {
                    // A full queue already holds a change signal: nothing is lost.
                    if tx.try_send(Signal::Changed).is_err() && tx.is_closed() {
                        return;
                    }
                } else {
                    // A blocking query answers unchanged only when its wait ends; one that
                    // answers at once (a proxy without blocking support) must not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Err(e) => {
                if tx.send(Signal::Failed(e)).await.is_err() {
                    return;
                }
                index = 0;
                tokio::time::sleep(backoff.step()).await;
            }
        }
    }
}

impl Provider for ConsulProvider {
    fn name(&self) -> &'static str {
        CONSUL_PROVIDER
    }

    async fn load(&mut self) -> Result<Layer, ConfigErrors> {
        // A Consul that does not answer must not hold the router's start for long.
        let first = match tokio::time::timeout(STARTUP_WAIT, self.read()).await {
            Ok(u) => u,
            Err(_) => {
                self.retry = Some(self.backoff.step());
                Update::Unavailable(format!(
                    "consul {}: no catalog within {STARTUP_WAIT:?} at startup",
                    self.client.base()
                ))
            }
        };
        match first {
            Update::Changed(layer) => Ok(layer),
            Update::Unavailable(why) => {
                // Traefik starts without the provider and keeps trying: so does betaroute.
                eprintln!(
                    "{}",
                    json!({"betaroute": "provider", "provider": CONSUL_PROVIDER, "level": "error", "message": why, "kept": "no consulcatalog routers until Consul answers"})
                );
                Ok(Layer::empty(CONSUL_PROVIDER))
            }
            _ => Ok(Layer::empty(CONSUL_PROVIDER)),
        }
    }

    async fn next_update(&mut self) -> Update {
        if !self.opts.watch {
            let wait = self.retry.unwrap_or(self.opts.refresh_interval);
            tokio::time::sleep(wait).await;
            return self.read().await;
        }
        let retry = self.retry;
        let signals = self.start_watchers();
        let signal = match retry {
            None => signals.recv().await,
            Some(after) => tokio::select! {
                s = signals.recv() => s,
                _ = tokio::time::sleep(after) => Some(Signal::Changed),
            },
        };
        match signal {
            Some(Signal::Changed) => {
                // Changes come in bursts (a deploy replaces several instances); the second
                // watcher often fires for the same change: take what is queued at once.
                while let Ok(Signal::Changed) = self.start_watchers().try_recv() {}
                self.read().await
            }
            Some(Signal::Failed(e)) => {
                self.retry = Some(self.backoff.step());
                Update::Unavailable(e.to_string())
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::static_config::consul::{ConsulOptions, DEFAULT_RULE};
    use crate::config::template::Template;
    use crate::provider::constraints::Constraints;

    /// Traefik's defaults.
    pub fn options() -> ConsulOptions {
        ConsulOptions {
            prefix: "traefik".into(),
            exposed_by_default: true,
            default_rule: Some(Template::parse(DEFAULT_RULE).unwrap()),
            constraints: Constraints::default(),
            strict_checks: vec!["passing".into(), "warning".into()],
            refresh_interval: std::time::Duration::from_secs(15),
            watch: false,
            stale: false,
            cache: false,
            require_consistent: false,
            connect_by_default: false,
            endpoint: Default::default(),
            cohorts_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::new();
        let steps: Vec<u128> = (0..12).map(|_| b.step().as_millis()).collect();
        assert_eq!(&steps[..4], &[500, 750, 1125, 1687]);
        assert_eq!(*steps.last().unwrap(), 30_000);
        b.reset();
        assert_eq!(b.step().as_millis(), 500);
    }
}
