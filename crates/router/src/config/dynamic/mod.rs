//! Dynamic configuration: Traefik's `http` section (routers, services, middlewares) from one or
//! more files, read with located errors ([`http`]) and validated across files ([`validate`])
//! into one immutable [`RoutingConfig`], the value the proxy serves from and swaps on reload.

mod drafts;
mod http;
mod middleware;
mod router;
mod service;
mod spec;
mod validate;

use std::path::{Path, PathBuf};

pub use spec::{HealthSpec, LoadBalancerSpec, RouterSpec, RoutingConfig, ServerSpec, ServiceSpec};

use super::error::{ConfigError, ConfigErrors};
use super::read::{Cx, Diagnostic, Severity};
use super::source::{self, Format, Source};

/// The provider name of files, as in `service@file`.
pub const FILE_PROVIDER: &str = "file";

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
