//! Static configuration: entry points, the admin address, providers, the access log, backend
//! timeouts and the cohort header, in Traefik's static shape plus betaroute's own keys. Read key
//! by key like the dynamic configuration: what betaroute cannot honour and would change what is
//! served is refused (and `serve` does not start); settings that only concern Traefik's own
//! logs, telemetry or dashboard are accepted with a warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use betaroute_core::rules::IpNet;
use betaroute_core::signature::{self, Freshness, RoutingKey};
use betaroute_core::HeaderPolicy;

pub mod consul;
mod entry_point;
mod sections;

use super::error::{ConfigError, ConfigErrors};
use super::read::{Cx, Diagnostic, Obj, Severity};
use super::source::{self, Format, Node, Source, Value};
use entry_point::entry_point;
use sections::{access_log, informational, providers, servers_transport};

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
    /// `providers.consulCatalog`, when set.
    pub consul: Option<consul::ConsulOptions>,
    pub access_log: Option<AccessLog>,
    pub timeouts: Timeouts,
    /// The header whose value puts a request in the beta cohort (`cohort.header`).
    pub cohort_header: String,
    /// The header the edge labels holdback requests with (`cohort.labelHeader`).
    pub label_header: String,
    /// The response header naming the service that answered (`cohort.servedByHeader`), for the
    /// edge's tester console; off unless configured.
    pub served_by_header: Option<String>,
    /// The bearer token the admin API's write endpoints require (`admin.tokenFile`), if any.
    pub admin_token: Option<AdminToken>,
    /// Warnings (refusals and errors stop the load).
    pub diagnostics: Vec<Diagnostic>,
    /// What each entry point's `http` section applies to its routers.
    pub models: Vec<crate::config::dynamic::EntryPointModel>,
    /// `serversTransport`: how servers are connected to unless their service names another.
    pub default_transport: Option<std::sync::Arc<crate::config::dynamic::transport::TransportSpec>>,
}

impl StaticConfig {
    /// What the dynamic configuration needs to know of this one.
    pub fn statics(&self) -> crate::config::dynamic::Statics {
        crate::config::dynamic::Statics {
            entry_points: self.entry_points.iter().map(|e| e.name.clone()).collect(),
            models: self.models.clone(),
            default_transport: self.default_transport.clone(),
        }
    }
}

/// The entry points' models, redirections resolved to the port they name (Traefik's
/// `getRedirectPort`: `to` is `:port` or an entry point, whose address gives the port).
fn models(cx: &mut Cx, eps: &[EntryPoint]) -> Vec<crate::config::dynamic::EntryPointModel> {
    let mut out = Vec::new();
    for ep in eps {
        let Some(h) = &ep.http else { continue };
        let redirect = h.redirect.as_ref().and_then(|r| {
            let port = if let Some(p) = r.to.strip_prefix(':').filter(|p| p.parse::<u16>().is_ok()) {
                p.to_owned()
            } else if let Some(dst) = eps.iter().find(|e| e.name == r.to) {
                dst.address.rsplit_once(':').map_or(String::new(), |(_, p)| p.to_owned())
            } else {
                let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
                cx.error(
                    r.at,
                    format!("entry point {}: http.redirections.entryPoint.to {:?} is no entry point (entry points: {}) nor :port", ep.name, r.to, names.join(", ")),
                );
                return None;
            };
            Some(crate::config::dynamic::EntryPointRedirect {
                to: r.to.clone(),
                port,
                scheme: r.scheme.clone(),
                permanent: r.permanent,
                priority: r.priority,
            })
        });
        out.push(crate::config::dynamic::EntryPointModel {
            entry_point: ep.name.clone(),
            tls: h.tls.clone(),
            middlewares: h.middlewares.clone(),
            redirect,
        });
    }
    out
}

/// One listening entry point.
#[derive(Debug, Clone)]
pub struct EntryPoint {
    pub name: String,
    pub address: String,
    pub header_timeout: Option<Duration>,
    /// `upgrades.idleTimeout`: an upgraded connection idle both ways this long is closed.
    pub upgrade_idle_timeout: Option<Duration>,
    pub http2: Http2,
    pub forwarded: Forwarded,
    pub routing: RoutingTrust,
    /// `http`: TLS, middlewares and redirection for its routers.
    pub http: Option<HttpModel>,
}

/// An entry point's `http` section, as read (the redirect's port is resolved once every entry
/// point is known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpModel {
    pub tls: Option<Option<String>>,
    pub middlewares: Vec<String>,
    pub redirect: Option<RedirectDraft>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectDraft {
    pub to: String,
    pub at: usize,
    pub scheme: String,
    pub permanent: bool,
    pub priority: i64,
}

/// `entryPoints.NAME.http2`: Traefik's `maxConcurrentStreams` and `maxDecoderHeaderTableSize`,
/// and betaroute's limits on a header list and the flow-control windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2 {
    /// Traefik's default: 250.
    pub max_concurrent_streams: u32,
    /// The HPACK table our decoder keeps (SETTINGS_HEADER_TABLE_SIZE); Traefik's default 4096.
    pub header_table_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a request's headers, uncompressed, at most (64 KiB).
    pub max_header_list_size: u32,
    /// Flow-control windows; none: hyper's (1 MiB... adaptive off).
    pub initial_stream_window_size: Option<u32>,
    pub initial_connection_window_size: Option<u32>,
}

impl Default for Http2 {
    fn default() -> Self {
        Http2 {
            max_concurrent_streams: 250,
            header_table_size: 4096,
            max_header_list_size: 64 << 10,
            initial_stream_window_size: None,
            initial_connection_window_size: None,
        }
    }
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

impl RoutingTrust {
    /// Trust every routing header, the cohort headers (the beta header and the label header)
    /// being the routing headers.
    pub fn new(cohort_headers: &[&str]) -> RoutingTrust {
        let names: Vec<String> = cohort_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
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

impl Default for RoutingTrust {
    fn default() -> Self {
        RoutingTrust::new(&[
            betaroute_core::cohort::DEFAULT_HEADER,
            betaroute_core::cohort::DEFAULT_COHORT_HEADER,
        ])
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

/// The top-level keys that only a static configuration has: a file with any of them is static.
pub const STATIC_KEYS: &[&str] = &[
    "entryPoints",
    "providers",
    "admin",
    "accessLog",
    "serversTransport",
    "cohort",
    "global",
    "api",
    "metrics",
    "ping",
    "log",
    "tracing",
    "hostResolver",
    "certificatesResolvers",
    "experimental",
    "core",
    "spiffe",
    "ocsp",
    "tcpServersTransport",
];

/// Whether a parsed file is a static configuration: decided by its top-level keys, never by
/// text that merely looks like one (`entryPoints:` under a router is a router's key).
pub fn is_static(tree: &Node) -> bool {
    match &tree.value {
        Value::Map(entries) => entries
            .iter()
            .any(|e| STATIC_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&e.key))),
        _ => false,
    }
}

/// `":8080"` listens on every interface, as in Traefik.
pub(super) fn listen_address(a: &str) -> String {
    if a.starts_with(':') {
        format!("0.0.0.0{a}")
    } else {
        a.to_owned()
    }
}

pub fn load_static(path: &Path) -> Result<StaticConfig, ConfigErrors> {
    let src = Source::read(path)?;
    read_source(&src, Format::of(path), path)
}

/// Validates a static configuration given as text (for tools and fuzzing); relative paths in it
/// are taken from the current directory.
pub fn parse_static_str(
    name: &str,
    text: &str,
    format: Format,
) -> Result<StaticConfig, ConfigErrors> {
    read_source(&Source::new(name, text), format, Path::new(name))
}

fn read_source(src: &Source, format: Format, path: &Path) -> Result<StaticConfig, ConfigErrors> {
    let tree = source::parse(src, format)?;
    let mut cx = Cx::new(src);
    let config = read_static(&mut cx, &tree, path);
    let (fatal, rest): (Vec<Diagnostic>, Vec<Diagnostic>) = cx
        .diagnostics
        .into_iter()
        .partition(|d| d.severity >= Severity::Refused);
    if !fatal.is_empty() {
        return Err(ConfigErrors(
            fatal.into_iter().map(describe_fatal).collect(),
        ));
    }
    let mut config = config.expect("no errors means a configuration");
    config.diagnostics = rest;
    Ok(config)
}

/// A refused static setting stops the load: say so in its message.
fn describe_fatal(d: Diagnostic) -> ConfigError {
    let mut e = d.error;
    if d.severity == Severity::Refused {
        e.message = format!("refused: {}", e.message);
    }
    e
}

fn read_static(cx: &mut Cx, tree: &Node, path: &Path) -> Option<StaticConfig> {
    let mut top = Obj::of(cx, tree, "static configuration")?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let (cohort_header, label_header, served_by_header) = match top.obj(cx, "cohort") {
        None => (
            betaroute_core::cohort::DEFAULT_HEADER.to_owned(),
            betaroute_core::cohort::DEFAULT_COHORT_HEADER.to_owned(),
            None,
        ),
        Some(mut c) => {
            let name = |cx: &mut Cx, c: &mut Obj, key: &str| {
                c.get(cx, key).and_then(|n| {
                    let h = super::read::string(cx, n, &c.child(key))?;
                    if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                        cx.error(n.at, format!("cohort: {key} {h:?} is not a header name"));
                        return None;
                    }
                    Some(h)
                })
            };
            let beta = name(cx, &mut c, "header")
                .unwrap_or_else(|| betaroute_core::cohort::DEFAULT_HEADER.to_owned());
            let label = name(cx, &mut c, "labelHeader")
                .unwrap_or_else(|| betaroute_core::cohort::DEFAULT_COHORT_HEADER.to_owned());
            let served_by = name(cx, &mut c, "servedByHeader");
            c.finish(cx, &["header", "labelHeader", "servedByHeader"]);
            (beta, label, served_by)
        }
    };
    let mut entry_points = Vec::new();
    match top.obj(cx, "entryPoints") {
        Some(mut eps) => {
            for e in eps.named() {
                if let Some(ep) = entry_point(cx, e, &[&cohort_header, &label_header], &resolve) {
                    entry_points.push(ep);
                }
            }
        }
        None => cx.error(
            0,
            "no entry point: add [entryPoints.web] address = \":8080\" (a dynamic file alone goes to --dynamic)",
        ),
    }
    if entry_points.is_empty() && !cx.has_errors() {
        cx.error(top.at_key("entryPoints"), "no entry point defined");
    }
    let mut admin_token = None;
    let admin = top.obj(cx, "admin").and_then(|mut a| {
        let addr = a.get(cx, "address").and_then(|n| {
            let s = super::read::string(cx, n, "admin: address")?;
            let l = listen_address(&s);
            if l.parse::<std::net::SocketAddr>().is_err() {
                cx.error(n.at, format!("admin: address {s:?} is not host:port"));
                return None;
            }
            Some(l)
        });
        if let Some(n) = a.get(cx, "tokenFile") {
            if let Some(file) = super::read::string(cx, n, "admin: tokenFile") {
                match AdminToken::read(&resolve(&file)) {
                    Ok(t) => admin_token = Some(t),
                    Err(e) => cx.error(n.at, format!("admin: tokenFile: {e}")),
                }
            }
        }
        a.finish(cx, &["address", "tokenFile"]);
        addr
    });
    let sections::Providers {
        files: mut dynamic_files,
        directory: dynamic_directory,
        watch,
        consul,
    } = providers(cx, &mut top, &resolve);
    if top.entry("http").is_some() {
        // Routing written into the static file itself (betaroute): read as a dynamic file.
        top.get(cx, "http");
        dynamic_files.insert(0, path.to_owned());
    }
    for key in ["tcp", "udp", "tls", "cohorts"] {
        if top.entry(key).is_some() {
            top.get(cx, key);
            dynamic_files.insert(0, path.to_owned());
        }
    }
    dynamic_files.dedup();
    if dynamic_files.is_empty()
        && dynamic_directory.is_none()
        && consul.is_none()
        && !cx.has_errors()
    {
        cx.error(0, "no routing configuration: set providers.file.filename (or directory) or providers.consulCatalog, or add [http] here");
    }
    let access_log = access_log(cx, &mut top, &resolve);
    let (timeouts, default_transport) = servers_transport(cx, &mut top);
    let default_transport = default_transport.map(|mut t| {
        t.name = crate::config::dynamic::transport::DEFAULT_TRANSPORT.to_owned();
        std::sync::Arc::new(t)
    });
    informational(cx, &mut top);
    top.finish(cx, STATIC_KEYS);
    let models = models(cx, &entry_points);
    if cx.has_errors() {
        return None;
    }
    Some(StaticConfig {
        models,
        default_transport,
        entry_points,
        admin,
        dynamic_files,
        dynamic_directory,
        watch,
        consul,
        access_log,
        timeouts,
        cohort_header,
        label_header,
        served_by_header,
        admin_token,
        diagnostics: Vec::new(),
    })
}

/// The admin API's bearer token: never printed (its `Debug` is masked), compared in constant
/// time.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// The shortest admin token accepted: 16 bytes, so it cannot be guessed online.
pub const MIN_ADMIN_TOKEN: usize = 16;

impl AdminToken {
    /// The token in `path`: the file's text without surrounding whitespace.
    pub fn read(path: &Path) -> Result<AdminToken, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AdminToken::new(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn new(token: &str) -> Result<AdminToken, String> {
        if token.len() < MIN_ADMIN_TOKEN {
            return Err(format!(
                "the token has {} bytes; at least {MIN_ADMIN_TOKEN} are required",
                token.len()
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(AdminToken(token.to_owned()))
    }

    /// Whether an `Authorization` header value carries this token as a bearer credential;
    /// constant time in the token's bytes.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(given) = value
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case(b"bearer "))
            .map(|_| value[7..].trim_ascii())
        else {
            return false;
        };
        let want = self.0.as_bytes();
        // Every byte is compared whatever the lengths, so timing reveals neither.
        let mut diff = u8::from(given.len() != want.len());
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ given.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}
