//! Configuration in Traefik's shapes (TOML or YAML), read with located errors.
//!
//! - [`source`]: files as located trees (every key and value knows its line and column).
//! - [`read`]: typed reading over those trees, keys in any letter case, diagnostics by severity.
//! - [`static_config`]: entry points, admin, providers, access log, backend timeouts, cohort.
//! - [`dynamic`]: routers, services and middlewares, validated into the [`RoutingConfig`] the
//!   proxy serves from and swaps on reload.

pub mod dynamic;
mod error;
pub mod read;
pub mod source;
pub mod static_config;
pub mod template;

use std::path::Path;

/// The middleware kinds betaroute runs (the others are refused by name).
pub use dynamic::IMPLEMENTED_MIDDLEWARES;
pub use dynamic::{
    load_dynamic, parse_dynamic_str, HealthSpec, LoadBalancerSpec, RouterSpec, RoutingConfig,
    ServerSpec, ServiceSpec,
};
pub use error::{ConfigError, ConfigErrors};
pub use read::{Diagnostic, Severity};
pub use source::Format;
pub use static_config::{load_static, StaticConfig};

/// What a configuration file is, decided by its top-level keys once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Static,
    Dynamic,
}

/// Parses `path` and tells whether it is a static configuration (it has entry points,
/// providers or another static key at its top level) or a dynamic one.
pub fn file_kind(path: &Path) -> Result<FileKind, ConfigErrors> {
    let src = source::Source::read(path)?;
    let tree = source::parse(&src, Format::of(path))?;
    Ok(if static_config::is_static(&tree) {
        FileKind::Static
    } else {
        FileKind::Dynamic
    })
}

/// Traefik's `@internal` services betaroute answers itself, behind a router as Traefik does.
/// `api@internal` and `dashboard@internal` are refused: betaroute's API and dashboard are on its
/// admin address, where changes need the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// `noop@internal`: 418, nothing else (for routers whose middleware answers, a redirect).
    Noop,
    /// `ping@internal`: 200 `OK`.
    Ping,
    /// `prometheus@internal`: the admin address's `/metrics`.
    Prometheus,
}

impl Internal {
    /// The internal service a qualified service name names.
    pub fn of(service: &str) -> Option<Internal> {
        match service {
            "noop@internal" => Some(Internal::Noop),
            "ping@internal" => Some(Internal::Ping),
            "prometheus@internal" => Some(Internal::Prometheus),
            _ => None,
        }
    }
}
