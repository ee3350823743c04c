//! Where dynamic configuration comes from. Each provider produces its whole configuration as
//! one validated [`Layer`] (never a partial one); the proxy's background loop combines every
//! provider's latest good layer into one route table and swaps it in atomically, as Traefik
//! merges its providers and Pingora's discovery swaps backends. A provider whose update fails
//! keeps its last good layer and leaves the others untouched.
//!
//! - [`file`]: `providers.file`, watched by content.
//! - [`consul`]: `providers.consulCatalog`, services and their tags from Consul's catalog.

pub mod constraints;
pub mod consul;
pub mod file;

use std::future::Future;

use crate::config::dynamic::Layer;
use crate::config::ConfigErrors;

/// What a provider reports when its configuration changes.
#[derive(Debug)]
pub enum Update {
    /// A new configuration, validated, to serve from now on.
    Changed(Layer),
    /// The new configuration is broken: keep serving the last good one.
    Failed(ConfigErrors),
    /// The source was read and nothing changed (after a failure: it is back).
    Alive,
    /// The provider's source cannot be read (Consul down or answering garbage): keep serving
    /// the last good configuration; the provider retries on its own.
    Unavailable(String),
}

pub trait Provider: Send + 'static {
    /// The provider's name, as in `service@name`, and for logs.
    fn name(&self) -> &'static str;

    /// The configuration now, at startup. An error there stops the router for a provider whose
    /// source is local (files); a remote one starts empty and reports [`Update::Unavailable`].
    fn load(&mut self) -> impl Future<Output = Result<Layer, ConfigErrors>> + Send;

    /// Waits for the next change (the future never ends when the provider does not watch).
    fn next_update(&mut self) -> impl Future<Output = Update> + Send;
}
