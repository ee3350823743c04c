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
