//! Configuration in Traefik's shapes (TOML or YAML), read with located errors.
//!
//! - [`source`]: files as located trees (every key and value knows its line and column).
//! - [`read`]: typed reading over those trees, keys in any letter case, diagnostics by severity.
//! - [`static_config`]: entry points, admin, providers, access log, backend timeouts, cohort.
//! - [`dynamic`]: routers, services and middlewares, validated into the [`RoutingConfig`] the
//!   proxy serves from and swaps on reload.

pub mod dynamic;
pub mod read;
pub mod source;
pub mod static_config;

use std::fmt;
use std::path::Path;

pub use dynamic::{
    load_dynamic, parse_dynamic_str, HealthSpec, LoadBalancerSpec, RouterSpec, RoutingConfig,
    ServerSpec, ServiceSpec,
};
pub use read::{Diagnostic, Severity};
pub use source::Format;
pub use static_config::{load_static, StaticConfig};

/// A configuration problem, with where it is. Several are reported at once when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem has no single place (e.g. a missing file).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Extra lines shown under the message (a rule with a caret under the problem).
    pub snippet: Option<String>,
}

impl ConfigError {
    /// A problem with a whole file (or with no file), not at one place in it.
    pub fn whole(file: String, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file,
            line: 0,
            column: 0,
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file, self.message)?;
        }
        if let Some(s) = &self.snippet {
            for line in s.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

/// All problems of one load, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

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
