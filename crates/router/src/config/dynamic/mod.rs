//! Dynamic configuration: Traefik's `http` section (routers, services, middlewares) from one or
//! more files, read with located errors ([`http`]) and validated across files ([`validate`])
//! into one immutable [`RoutingConfig`], the value the proxy serves from and swaps on reload.

mod http;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use betaroute_core::rules::Rule;

use super::read::{Cx, Diagnostic, Severity};
use super::source::{self, Format, Source};
use super::{ConfigError, ConfigErrors};

/// The provider name of files, as in `service@file`.
pub const FILE_PROVIDER: &str = "file";

/// A validated router.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub rule: Rule,
    /// Configured priority (`None` or 0: the rule's default).
    pub priority: Option<i64>,
    /// The service's name, without its provider (`api` for `api@file`).
    pub service: String,
    /// Entry points this router serves; `None`: all of them.
    pub entry_points: Option<Vec<String>>,
    /// Why this router is not served, when it uses something betaroute does not implement. It
    /// stays in the table and answers 503, so that its requests never fall through to another,
    /// less protected router.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub url: ::http::Uri,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub path: String,
    pub interval: Duration,
    /// Interval while the server is unhealthy (Traefik's `unhealthyInterval`; default: interval).
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
    pub hostname: Option<String>,
    /// Port to check instead of the server's.
    pub port: Option<u16>,
    /// Expected status; default: any 2xx or 3xx.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerSpec {
    pub servers: Vec<ServerSpec>,
    pub health: Option<HealthSpec>,
    pub pass_host_header: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSpec {
    LoadBalancer(LoadBalancerSpec),
    Weighted(Vec<(String, u32)>),
    Failover { service: String, fallback: String },
}

/// Everything the proxy needs to route, validated.
#[derive(Debug, Clone, Default)]
pub struct RoutingConfig {
    pub routers: Vec<RouterSpec>,
    /// The services that can be served (refused ones are not here; their routers are refused).
    pub services: BTreeMap<String, ServiceSpec>,
    /// Refusals and warnings (errors make the load fail instead).
    pub diagnostics: Vec<Diagnostic>,
}

impl RoutingConfig {
    pub fn refusals(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Refused)
    }

    /// Routers that name entry points the static configuration does not have: refused by name
    /// rather than never served without a word.
    pub fn check_entry_points(&mut self, known: &[String]) {
        for r in &self.routers {
            for ep in r.entry_points.iter().flatten() {
                if !known.iter().any(|k| k == ep) {
                    self.diagnostics.push(Diagnostic {
                        severity: Severity::Refused,
                        error: ConfigError::whole(
                            "dynamic configuration".to_owned(),
                            format!(
                                "router {}: entry point {ep:?} does not exist (entry points: {})",
                                r.name,
                                known.join(", ")
                            ),
                        ),
                    });
                }
            }
        }
    }
}

/// Every dynamic configuration file: the named files, then the directory's `.toml`/`.yaml`/`.yml`
/// files in name order.
pub fn dynamic_paths(
    files: &[PathBuf],
    directory: Option<&Path>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = files.to_vec();
    if let Some(dir) = directory {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::whole(
                dir.display().to_string(),
                format!("cannot read directory: {e}"),
            )
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| Format::is_config_file(p))
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Loads, merges and validates dynamic configuration files. Names must be unique across files.
pub fn load_dynamic(
    files: &[PathBuf],
    directory: Option<&Path>,
) -> Result<RoutingConfig, ConfigErrors> {
    let paths = dynamic_paths(files, directory)?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in &paths {
        match Source::read(path) {
            Ok(src) => sources.push((src, Format::of(path))),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    compile(&sources)
}

/// Validates dynamic configuration given as text (for tools and fuzzing; files go through
/// [`load_dynamic`], which uses the same reader and validation).
pub fn parse_dynamic_str(
    name: &str,
    text: &str,
    format: Format,
) -> Result<RoutingConfig, ConfigErrors> {
    compile(&[(Source::new(name, text), format)])
}

/// Reads every file, then validates them together. Any error fails the whole load, so a reload
/// keeps the last good configuration; refusals and warnings travel with the result.
fn compile(sources: &[(Source, Format)]) -> Result<RoutingConfig, ConfigErrors> {
    let mut parts = Vec::new();
    let mut diagnostics = Vec::new();
    for (src, format) in sources {
        let tree = match source::parse(src, *format) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    error: e,
                });
                continue;
            }
        };
        let mut cx = Cx::new(src);
        let part = http::read_file(&mut cx, &tree);
        diagnostics.append(&mut cx.diagnostics);
        parts.push((src, part));
    }
    let config = validate::merge(parts, FILE_PROVIDER, &mut diagnostics);
    split(config, diagnostics)
}

/// Errors fail the load; the rest stays with the configuration.
fn split(
    mut config: RoutingConfig,
    diagnostics: Vec<Diagnostic>,
) -> Result<RoutingConfig, ConfigErrors> {
    let (errors, rest): (Vec<Diagnostic>, Vec<Diagnostic>) = diagnostics
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors.into_iter().map(|d| d.error).collect()));
    }
    config.diagnostics = rest;
    Ok(config)
}
