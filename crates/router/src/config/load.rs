//! Reading configuration files: format by extension (`.toml`, `.yaml`, `.yml`), parse errors with
//! line and column, and the places of values for later validation errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use betaroute_core::rules::IpNet;
use betaroute_core::signature::{self, Freshness, RoutingKey};
use betaroute_core::HeaderPolicy;

use super::compile::{compile, RoutingConfig};
use super::model::{DynamicFile, HttpCfg, StaticFile};
use super::{ConfigError, ConfigErrors};

/// Text of a loaded file, kept to locate values in error messages.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: String,
    pub text: String,
}

impl Located {
    /// 1-based line and column of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
            before[nl + 1..].chars().count()
        }) + 1;
        (line, col)
    }

    /// Where `value` (a rule, a URL...) is written under the key `name`: the first occurrence of
    /// the value after the first occurrence of the name, else of the value anywhere.
    pub fn find(&self, name: &str, value: &str) -> Option<usize> {
        if value.is_empty() {
            return None;
        }
        let after = self.text.find(name).unwrap_or(0);
        self.text[after..]
            .find(value)
            .map(|i| after + i)
            .or_else(|| self.text.find(value))
    }

    pub fn error(&self, offset: Option<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = offset.map_or((0, 0), |o| self.position(o));
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
            snippet: None,
        }
    }
}

fn read(path: &Path) -> Result<Located, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
        snippet: None,
    })?;
    Ok(Located { file, text })
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Deserializes a file as TOML or YAML (by extension), with located syntax errors.
fn parse<T: DeserializeOwned + Default>(path: &Path, src: &Located) -> Result<T, ConfigError> {
    parse_as(is_yaml(path), src)
}

fn parse_as<T: DeserializeOwned + Default>(yaml: bool, src: &Located) -> Result<T, ConfigError> {
    if src.text.trim().is_empty() {
        return Ok(T::default());
    }
    if yaml {
        serde_yaml::from_str(&src.text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.to_string();
            // serde_yaml appends " at line X column Y": the location is already in front.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            ConfigError {
                file: src.file.clone(),
                line,
                column,
                message,
                snippet: None,
            }
        })
    } else {
        toml::from_str(&src.text).map_err(|e| {
            let offset = e.span().map(|s| s.start);
            src.error(offset, e.message().trim().to_owned())
        })
    }
}

/// The static configuration, with the dynamic configuration files it names resolved.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    pub entry_points: Vec<EntryPoint>,
    pub admin: Option<String>,
    /// Files holding dynamic configuration (the static file itself when it has `http`).
    pub dynamic_files: Vec<PathBuf>,
    /// Directory to rescan on reload, if any.
    pub dynamic_directory: Option<PathBuf>,
    pub watch: bool,
    pub access_log: Option<AccessLog>,
    pub timeouts: Timeouts,
}

/// One listening entry point.
#[derive(Debug, Clone)]
pub struct EntryPoint {
    pub name: String,
    pub address: String,
    pub header_timeout: Option<Duration>,
    pub forwarded: Forwarded,
    pub routing: RoutingTrust,
}

/// How an entry point treats routing headers sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustMode {
    /// Believe them as they are (only the edge can reach this entry point).
    Any,
    /// Always remove them.
    Strip,
    /// Keep them only under a valid, fresh signature from the edge.
    Signed,
}

#[derive(Debug, Clone)]
pub struct RoutingTrust {
    pub mode: TrustMode,
    /// Routing header names, lowercased.
    pub names: Vec<String>,
    /// Matches routing headers and the signature header in any case and with `_` for `-`.
    pub policy: HeaderPolicy,
    /// Signature header name, lowercased.
    pub signature_header: String,
    pub keys: Vec<RoutingKey>,
    pub fresh: Freshness,
}

impl Default for RoutingTrust {
    fn default() -> Self {
        let names = vec!["x-rikstv-beta".to_owned()];
        let signature_header = signature::DEFAULT_HEADER.to_ascii_lowercase();
        RoutingTrust {
            mode: TrustMode::Any,
            policy: HeaderPolicy::new(names.iter().chain([&signature_header])),
            names,
            signature_header,
            keys: Vec::new(),
            fresh: Freshness {
                max_age: 30,
                skew: 5,
            },
        }
    }
}

/// Whose X-Forwarded-* headers to believe.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub trusted: Vec<IpNet>,
    pub insecure: bool,
    pub use_forwarded_host: bool,
}

impl Forwarded {
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.insecure || self.trusted.iter().any(|n| n.contains(ip))
    }
}

/// Timeouts towards backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub dial: Duration,
    /// Time allowed for a backend's response headers (504 past it).
    pub response_header: Duration,
    pub idle_conn: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dial: Duration::from_secs(30),
            response_header: Duration::from_secs(60),
            idle_conn: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub json: bool,
    pub file: Option<PathBuf>,
}

/// `":8080"` listens on every interface, as in Traefik.
fn listen_address(a: &str) -> String {
    if a.starts_with(':') {
        format!("0.0.0.0{a}")
    } else {
        a.to_owned()
    }
}

pub fn load_static(path: &Path) -> Result<StaticConfig, ConfigErrors> {
    let src = read(path)?;
    let file: StaticFile = parse(path, &src)?;
    let mut errors = Vec::new();
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let mut entry_points = Vec::new();
    for (name, ep) in &file.entry_points {
        let addr = listen_address(&ep.address);
        if addr.parse::<std::net::SocketAddr>().is_err() {
            errors.push(src.error(
                src.find(name, &ep.address),
                format!(
                    "entry point {name}: address {:?} is not host:port",
                    ep.address
                ),
            ));
        }
        let timeout = match ep.header_timeout.as_ref().map(|d| d.parse()) {
            Some(Err(e)) => {
                errors.push(src.error(
                    src.find(name, "headerTimeout"),
                    format!("entry point {name}: headerTimeout: {e}"),
                ));
                None
            }
            Some(Ok(d)) => Some(d),
            None => None,
        };
        let mut forwarded = Forwarded::default();
        if let Some(fh) = &ep.forwarded_headers {
            forwarded.insecure = fh.insecure;
            forwarded.use_forwarded_host = fh.use_forwarded_host;
            for ip in &fh.trusted_ips {
                match IpNet::parse(ip) {
                    Some(n) => forwarded.trusted.push(n),
                    None => errors.push(src.error(
                        src.find(name, ip),
                        format!("entry point {name}: trustedIPs: {ip:?} is not an IP or CIDR"),
                    )),
                }
            }
        }
        let routing = match &ep.routing_headers {
            None => RoutingTrust::default(),
            Some(rh) => routing_trust(&src, name, rh, &resolve, &mut errors),
        };
        entry_points.push(EntryPoint {
            routing,
            name: name.clone(),
            address: addr,
            header_timeout: timeout,
            forwarded,
        });
    }
    if entry_points.is_empty() {
        errors.push(src.error(
            None,
            "no entry point: add [entryPoints.web] address = \":8080\"",
        ));
    }
    let admin = file.admin.as_ref().map(|a| listen_address(&a.address));
    if let Some(a) = &admin {
        if a.parse::<std::net::SocketAddr>().is_err() {
            errors.push(src.error(
                src.find("admin", a.trim_start_matches("0.0.0.0")),
                format!("admin address {a:?} is not host:port"),
            ));
        }
    }
    let mut dynamic_files = Vec::new();
    let mut dynamic_directory = None;
    let mut watch = false;
    if let Some(fp) = &file.providers.file {
        watch = fp.watch;
        match (&fp.filename, &fp.directory) {
            (Some(f), None) => dynamic_files.push(resolve(f)),
            (None, Some(d)) => dynamic_directory = Some(resolve(d)),
            _ => errors.push(src.error(
                src.find("providers", "file"),
                "providers.file needs exactly one of filename or directory",
            )),
        }
    }
    if file.http.is_some() {
        dynamic_files.insert(0, path.to_owned());
    }
    if dynamic_files.is_empty() && dynamic_directory.is_none() {
        errors.push(src.error(None, "no routing configuration: set providers.file.filename (or directory), or add [http] here"));
    }
    let access_log = file
        .access_log
        .as_ref()
        .filter(|a| a.enabled)
        .map(|a| AccessLog {
            json: a.format.as_deref() != Some("common"),
            file: a.file_path.as_deref().map(resolve),
        });
    let mut timeouts = Timeouts::default();
    if let Some(ft) = file
        .servers_transport
        .as_ref()
        .map(|t| &t.forwarding_timeouts)
    {
        for (value, slot, what) in [
            (&ft.dial_timeout, &mut timeouts.dial, "dialTimeout"),
            (
                &ft.response_header_timeout,
                &mut timeouts.response_header,
                "responseHeaderTimeout",
            ),
            (
                &ft.idle_conn_timeout,
                &mut timeouts.idle_conn,
                "idleConnTimeout",
            ),
        ] {
            match value.as_ref().map(|d| d.parse()) {
                Some(Ok(d)) if !d.is_zero() => *slot = d,
                Some(Ok(_)) | None => {}
                Some(Err(e)) => errors.push(src.error(
                    src.find("forwardingTimeouts", what),
                    format!("serversTransport.forwardingTimeouts.{what}: {e}"),
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(StaticConfig {
        entry_points,
        admin,
        dynamic_files,
        dynamic_directory,
        watch,
        access_log,
        timeouts,
    })
}

/// Every dynamic configuration file: the named files, then the directory's `.toml`/`.yaml`/`.yml`
/// files in name order.
pub fn dynamic_paths(
    files: &[PathBuf],
    directory: Option<&Path>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = files.to_vec();
    if let Some(dir) = directory {
        let entries = std::fs::read_dir(dir).map_err(|e| ConfigError {
            file: dir.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read directory: {e}"),
            snippet: None,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("toml" | "yaml" | "yml")
                )
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Loads, merges and validates dynamic configuration. Names must be unique across files.
pub fn load_dynamic(
    files: &[PathBuf],
    directory: Option<&Path>,
) -> Result<RoutingConfig, ConfigErrors> {
    let paths = dynamic_paths(files, directory)?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in &paths {
        match read(path).and_then(|src| {
            let f: DynamicFile = parse(path, &src)?;
            Ok((src, f.http.unwrap_or_default()))
        }) {
            Ok(s) => sources.push(s),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let parts: Vec<(&Located, &HttpCfg)> = sources.iter().map(|(s, h)| (s, h)).collect();
    compile(&parts)
}

fn routing_trust(
    src: &Located,
    ep: &str,
    rh: &super::model::RoutingHeadersCfg,
    resolve: &dyn Fn(&str) -> PathBuf,
    errors: &mut Vec<ConfigError>,
) -> RoutingTrust {
    let mut t = RoutingTrust::default();
    if let Some(names) = &rh.names {
        t.names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    }
    if let Some(h) = &rh.signature_header {
        t.signature_header = h.to_ascii_lowercase();
    }
    t.policy = HeaderPolicy::new(t.names.iter().chain([&t.signature_header]));
    if let Some(file) = &rh.keys_file {
        let path = resolve(file);
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|j| RoutingKey::from_jwks(&j))
        {
            Ok(keys) => t.keys = keys,
            Err(e) => errors.push(src.error(
                src.find(ep, file),
                format!(
                    "entry point {ep}: routingHeaders.keysFile {}: {e}",
                    path.display()
                ),
            )),
        }
    }
    let secs = |d: &Option<super::model::DurationCfg>,
                what: &str,
                errors: &mut Vec<ConfigError>|
     -> Option<u64> {
        match d.as_ref().map(|d| d.parse()) {
            Some(Ok(v)) => Some(v.as_secs()),
            Some(Err(e)) => {
                errors.push(src.error(
                    src.find(ep, what),
                    format!("entry point {ep}: routingHeaders.{what}: {e}"),
                ));
                None
            }
            None => None,
        }
    };
    if let Some(v) = secs(&rh.max_age, "maxAge", errors) {
        t.fresh.max_age = v;
    }
    if let Some(v) = secs(&rh.clock_skew, "clockSkew", errors) {
        t.fresh.skew = v;
    }
    t.mode = match rh.trust.as_deref() {
        None if !t.keys.is_empty() || rh.keys_file.is_some() => TrustMode::Signed,
        None | Some("any") => TrustMode::Any,
        Some("strip") => TrustMode::Strip,
        Some("signed") => {
            if rh.keys_file.is_none() {
                errors.push(src.error(
                    src.find(ep, "signed"),
                    format!("entry point {ep}: routingHeaders.trust = \"signed\" needs keysFile"),
                ));
            }
            TrustMode::Signed
        }
        Some(other) => {
            errors.push(src.error(
                src.find(ep, other),
                format!(
                    "entry point {ep}: routingHeaders.trust {other:?} is not signed, any or strip"
                ),
            ));
            TrustMode::Strip
        }
    };
    t
}

/// Validates dynamic configuration given as text (for tools and fuzzing; files go through
/// [`load_dynamic`], which uses the same parser and validation).
pub fn parse_dynamic_str(
    name: &str,
    text: &str,
    yaml: bool,
) -> Result<RoutingConfig, ConfigErrors> {
    let src = Located {
        file: name.to_owned(),
        text: text.to_owned(),
    };
    let f: DynamicFile = parse_as(yaml, &src)?;
    let http = f.http.unwrap_or_default();
    compile(&[(&src, &http)])
}
