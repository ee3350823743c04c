//! Dynamic configuration: Traefik's `http` section (routers, services, middlewares) from one or
//! more files, read with located errors ([`http`]) and validated across files ([`validate`])
//! into one immutable [`RoutingConfig`], the value the proxy serves from and swaps on reload.

mod comparison;
pub(crate) mod drafts;
mod headers;
pub(crate) mod http;
mod middleware;
mod router;
mod service;
mod spec;
pub mod tls;
pub mod transport;
mod validate;

use std::path::{Path, PathBuf};

pub use middleware::IMPLEMENTED as IMPLEMENTED_MIDDLEWARES;
pub use spec::{
    Baseline, BetaSwitch, ComparisonSpec, EntryPointModel, EntryPointRedirect, HealthSpec,
    LoadBalancerSpec, RouterSpec, RouterTls, RoutingConfig, ServerSpec, ServiceSpec, Statics,
    TlsConfig,
};
pub use validate::{combine, layer, qualify, Layer};

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

/// Loads, merges and validates dynamic configuration files alone (for `check` and `route
/// explain`; `serve` combines the files' [`Layer`] with other providers'). Names must be unique
/// across files.
pub fn load_dynamic(
    files: &[PathBuf],
    directory: Option<&Path>,
) -> Result<RoutingConfig, ConfigErrors> {
    let layer = load_file_layer(files, directory)?;
    Ok(combine(&[&layer], &Statics::default()).0)
}

/// The file provider's configuration: every file read, validated together.
pub fn load_file_layer(files: &[PathBuf], directory: Option<&Path>) -> Result<Layer, ConfigErrors> {
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
    compile(sources)
}

/// Validates dynamic configuration given as text (for tools and fuzzing; files go through
/// [`load_dynamic`], which uses the same reader and validation).
pub fn parse_dynamic_str(
    name: &str,
    text: &str,
    format: Format,
) -> Result<RoutingConfig, ConfigErrors> {
    let layer = compile(vec![(Source::new(name, text), format)])?;
    Ok(combine(&[&layer], &Statics::default()).0)
}

/// Reads every file, then validates them together. Any error fails the whole load, so a reload
/// keeps the last good configuration; refusals and warnings travel with the result.
fn compile(sources: Vec<(Source, Format)>) -> Result<Layer, ConfigErrors> {
    let mut parts = Vec::new();
    let mut diagnostics = Vec::new();
    for (src, format) in sources {
        let tree = match source::parse(&src, format) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    error: e,
                });
                continue;
            }
        };
        let mut cx = Cx::new(&src);
        let part = http::read_file(&mut cx, &tree);
        diagnostics.append(&mut cx.diagnostics);
        parts.push((src, part));
    }
    layer(FILE_PROVIDER, parts, diagnostics, true)
}
