//! Where dynamic configuration comes from. A provider produces whole, validated configurations
//! (never a partial one); the proxy's background loop (in the proxy) swaps each one in
//! atomically and keeps the last good one when an update fails, as Pingora's discovery and
//! background update do. The file provider is the first; Consul's catalog comes next.

pub mod file;

use std::future::Future;

use crate::config::{ConfigErrors, RoutingConfig};

/// What a provider reports when its configuration changes.
#[derive(Debug)]
pub enum Update {
    /// A new configuration, validated, to serve from now on.
    Changed(RoutingConfig),
    /// The new configuration is broken: keep serving the last good one.
    Failed(ConfigErrors),
}

pub trait Provider: Send + 'static {
    /// The provider's name, as in `service@name`, and for logs.
    fn name(&self) -> &'static str;

    /// The configuration now (at startup; an error there stops the router).
    fn load(&mut self) -> Result<RoutingConfig, ConfigErrors>;

    /// Waits for the next change (the future never ends when the provider does not watch).
    fn next_update(&mut self) -> impl Future<Output = Update> + Send;
}
