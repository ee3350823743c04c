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

use super::error::{ConfigError, ConfigErrors};
use super::read::{Cx, Diagnostic, Obj, Severity};
use super::source::{self, Format, Node, Source, Value};

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
    /// The header whose value puts a request in the beta cohort (`cohort.header`).
    pub cohort_header: String,
    /// Warnings (refusals and errors stop the load).
    pub diagnostics: Vec<Diagnostic>,
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

impl RoutingTrust {
    /// Trust every routing header, the cohort header being the one routing header.
    pub fn new(cohort_header: &str) -> RoutingTrust {
        let names = vec![cohort_header.to_ascii_lowercase()];
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
        RoutingTrust::new(betaroute_core::cohort::DEFAULT_HEADER)
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
fn listen_address(a: &str) -> String {
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
    let cohort_header = match top.obj(cx, "cohort") {
        None => betaroute_core::cohort::DEFAULT_HEADER.to_owned(),
        Some(mut c) => {
            let h = c.get(cx, "header").and_then(|n| {
                let h = super::read::string(cx, n, &c.child("header"))?;
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    cx.error(n.at, format!("cohort: header {h:?} is not a header name"));
                    return None;
                }
                Some(h)
            });
            c.finish(cx, &["header"]);
            h.unwrap_or_else(|| betaroute_core::cohort::DEFAULT_HEADER.to_owned())
        }
    };
    let mut entry_points = Vec::new();
    match top.obj(cx, "entryPoints") {
        Some(mut eps) => {
            for e in eps.named() {
                if let Some(ep) = entry_point(cx, e, &cohort_header, &resolve) {
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
        a.finish(cx, &["address"]);
        addr
    });
    let (dynamic_files, dynamic_directory, watch) = providers(cx, &mut top, &resolve);
    let mut dynamic_files = dynamic_files;
    if top.entry("http").is_some() {
        // Routing written into the static file itself (betaroute): read as a dynamic file.
        top.get(cx, "http");
        dynamic_files.insert(0, path.to_owned());
    }
    for key in ["tcp", "udp", "tls"] {
        if top.entry(key).is_some() {
            top.get(cx, key);
            dynamic_files.insert(0, path.to_owned());
        }
    }
    dynamic_files.dedup();
    if dynamic_files.is_empty() && dynamic_directory.is_none() && !cx.has_errors() {
        cx.error(0, "no routing configuration: set providers.file.filename (or directory), or add [http] here");
    }
    let access_log = access_log(cx, &mut top, &resolve);
    let timeouts = servers_transport(cx, &mut top);
    informational(cx, &mut top);
    top.finish(cx, STATIC_KEYS);
    if cx.has_errors() {
        return None;
    }
    Some(StaticConfig {
        entry_points,
        admin,
        dynamic_files,
        dynamic_directory,
        watch,
        access_log,
        timeouts,
        cohort_header,
        diagnostics: Vec::new(),
    })
}

fn entry_point(
    cx: &mut Cx,
    e: &super::source::Entry,
    cohort_header: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<EntryPoint> {
    let name = &e.key;
    let mut o = Obj::of(cx, &e.value, format!("entry point {name}"))?;
    let address = match o.get(cx, "address") {
        None => {
            cx.error(e.at, format!("entry point {name}: no address"));
            None
        }
        Some(n) => super::read::string(cx, n, &o.child("address")).and_then(|a| {
            // Traefik's `:8080/tcp` is the default protocol; `/udp` entry points are refused.
            let (a, protocol) = match a.rsplit_once('/') {
                Some((addr, p)) => (addr.to_owned(), p.to_ascii_lowercase()),
                None => (a.clone(), "tcp".to_owned()),
            };
            if protocol != "tcp" {
                cx.refuse(
                    n.at,
                    format!("entry point {name}: {protocol} entry points are not supported"),
                );
                return None;
            }
            let l = listen_address(&a);
            if l.parse::<std::net::SocketAddr>().is_err() {
                cx.error(
                    n.at,
                    format!("entry point {name}: address {a:?} is not host:port"),
                );
                return None;
            }
            Some(l)
        }),
    };
    let header_timeout = o.duration(cx, "headerTimeout");
    let forwarded = o
        .obj(cx, "forwardedHeaders")
        .map_or_else(Forwarded::default, |fh| forwarded_headers(cx, fh, name));
    let routing = match o.obj(cx, "routingHeaders") {
        None => RoutingTrust::new(cohort_header),
        Some(rh) => routing_trust(cx, rh, name, cohort_header, resolve),
    };
    refuse_unsupported(cx, &mut o, name);
    // Each worker thread binds its own socket with SO_REUSEPORT anyway.
    o.ignore(
        cx,
        "reusePort",
        "betaroute always listens with SO_REUSEPORT",
    );
    o.ignore(
        cx,
        "observability",
        "betaroute logs and counts every entry point",
    );
    o.finish(
        cx,
        &[
            "address",
            "headerTimeout",
            "forwardedHeaders",
            "routingHeaders",
            "http",
            "http2",
            "http3",
            "transport",
            "proxyProtocol",
            "udp",
            "asDefault",
            "reusePort",
            "observability",
        ],
    );
    Some(EntryPoint {
        name: name.clone(),
        address: address?,
        header_timeout,
        forwarded,
        routing,
    })
}

/// Traefik's `forwardedHeaders`, plus betaroute's `useForwardedHost`.
fn forwarded_headers(cx: &mut Cx, mut fh: Obj, name: &str) -> Forwarded {
    let mut forwarded = Forwarded {
        insecure: fh.boolean(cx, "insecure").unwrap_or(false),
        use_forwarded_host: fh.boolean(cx, "useForwardedHost").unwrap_or(false),
        ..Forwarded::default()
    };
    for (ip, at) in fh.strings(cx, "trustedIPs").unwrap_or_default() {
        match IpNet::parse(&ip) {
            Some(n) => forwarded.trusted.push(n),
            None => cx.error(
                at,
                format!("entry point {name}: trustedIPs: {ip:?} is not an IP or CIDR"),
            ),
        }
    }
    for key in [
        "connection",
        "notAppendXForwardedFor",
        "addXForwardedSchemeHeaders",
    ] {
        fh.refuse(cx, key, "is not supported yet");
    }
    fh.finish(
        cx,
        &[
            "trustedIPs",
            "insecure",
            "useForwardedHost",
            "connection",
            "notAppendXForwardedFor",
            "addXForwardedSchemeHeaders",
        ],
    );
    forwarded
}

/// Entry point settings that change what is served and that betaroute does not implement.
fn refuse_unsupported(cx: &mut Cx, o: &mut Obj, name: &str) {
    for (key, why) in [
        ("http", "(entry point redirections, middlewares and TLS) is not supported yet"),
        ("http2", "settings are not supported yet"),
        ("http3", "is not supported"),
        ("transport", "(responding timeouts, life cycle, keep-alive limits) is not supported yet; betaroute's entry points take headerTimeout"),
        ("proxyProtocol", "is not supported yet"),
        ("udp", "is not supported"),
        ("allowACMEByPass", "is not supported (no ACME)"),
    ] {
        o.refuse(cx, key, why);
    }
    if o.boolean(cx, "asDefault") == Some(true) {
        cx.refuse(
            o.at_key("asDefault"),
            format!("entry point {name}: asDefault is not supported yet (routers without entryPoints are on every entry point)"),
        );
    }
}

fn routing_trust(
    cx: &mut Cx,
    mut rh: Obj,
    ep: &str,
    cohort_header: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> RoutingTrust {
    let mut t = RoutingTrust::new(cohort_header);
    if let Some(names) = rh.strings(cx, "names") {
        t.names = names
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
    }
    if let Some(h) = rh.string(cx, "signatureHeader") {
        t.signature_header = h.to_ascii_lowercase();
    }
    t.policy = HeaderPolicy::new(t.names.iter().chain([&t.signature_header]));
    let keys_file = rh.get(cx, "keysFile").and_then(|n| {
        let file = super::read::string(cx, n, "routingHeaders.keysFile")?;
        let path = resolve(&file);
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|j| RoutingKey::from_jwks(&j))
        {
            Ok(keys) => t.keys = keys,
            Err(e) => cx.error(
                n.at,
                format!(
                    "entry point {ep}: routingHeaders.keysFile {}: {e}",
                    path.display()
                ),
            ),
        }
        Some(file)
    });
    if let Some(d) = rh.duration(cx, "maxAge") {
        t.fresh.max_age = d.as_secs();
    }
    if let Some(d) = rh.duration(cx, "clockSkew") {
        t.fresh.skew = d.as_secs();
    }
    let trust_at = rh.at_key("trust");
    t.mode = match rh.string(cx, "trust").as_deref() {
        None if keys_file.is_some() => TrustMode::Signed,
        None | Some("any") => TrustMode::Any,
        Some("strip") => TrustMode::Strip,
        Some("signed") => {
            if keys_file.is_none() {
                cx.error(
                    trust_at,
                    format!("entry point {ep}: routingHeaders.trust = \"signed\" needs keysFile"),
                );
            }
            TrustMode::Signed
        }
        Some(other) => {
            cx.error(
                trust_at,
                format!(
                    "entry point {ep}: routingHeaders.trust {other:?} is not signed, any or strip"
                ),
            );
            TrustMode::Strip
        }
    };
    rh.finish(
        cx,
        &[
            "names",
            "trust",
            "signatureHeader",
            "keysFile",
            "maxAge",
            "clockSkew",
        ],
    );
    t
}

fn providers(
    cx: &mut Cx,
    top: &mut Obj,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> (Vec<PathBuf>, Option<PathBuf>, bool) {
    let mut files = Vec::new();
    let mut directory = None;
    let mut watch = false;
    let Some(mut p) = top.obj(cx, "providers") else {
        return (files, directory, watch);
    };
    if let Some(mut f) = p.obj(cx, "file") {
        watch = f.boolean(cx, "watch").unwrap_or(false);
        let filename = f.string(cx, "filename");
        let dir = f.string(cx, "directory");
        match (filename, dir) {
            (Some(name), None) => files.push(resolve(&name)),
            (None, Some(d)) => directory = Some(resolve(&d)),
            _ => cx.error(
                f.at,
                "providers.file needs exactly one of filename or directory",
            ),
        }
        f.refuse(
            cx,
            "debugLogGeneratedTemplate",
            "is not supported (no Go templates yet)",
        );
        f.finish(cx, &["filename", "directory", "watch"]);
    }
    p.ignore(
        cx,
        "providersThrottleDuration",
        "betaroute applies each new configuration as soon as it is validated",
    );
    for key in [
        "docker",
        "swarm",
        "kubernetesIngress",
        "kubernetesIngressNGINX",
        "kubernetesCRD",
        "kubernetesGateway",
        "knative",
        "rest",
        "consulCatalog",
        "nomad",
        "ecs",
        "consul",
        "etcd",
        "zooKeeper",
        "redis",
        "http",
        "plugin",
        "precedence",
    ] {
        p.refuse(
            cx,
            key,
            "is not supported yet: betaroute reads the file provider",
        );
    }
    p.finish(cx, &["file", "providersThrottleDuration"]);
    (files, directory, watch)
}

fn access_log(cx: &mut Cx, top: &mut Obj, resolve: &dyn Fn(&str) -> PathBuf) -> Option<AccessLog> {
    let node = top.get(cx, "accessLog")?;
    let mut a = Obj::of(cx, node, "accessLog")?;
    let format = a.string(cx, "format");
    let json = match format.as_deref() {
        None | Some("json") => true,
        Some("common") => false,
        Some(other) => {
            cx.error(
                a.at_key("format"),
                format!("accessLog: format {other:?} is not json or common"),
            );
            true
        }
    };
    let file = a.string(cx, "filePath").map(|f| resolve(&f));
    let enabled = a.boolean(cx, "enabled").unwrap_or(true);
    for key in ["filters", "fields", "bufferingSize", "addInternals", "otlp"] {
        a.ignore(
            cx,
            key,
            "betaroute logs every request with a fixed set of fields",
        );
    }
    a.finish(
        cx,
        &[
            "format",
            "filePath",
            "enabled",
            "filters",
            "fields",
            "bufferingSize",
        ],
    );
    enabled.then_some(AccessLog { json, file })
}

fn servers_transport(cx: &mut Cx, top: &mut Obj) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let Some(mut st) = top.obj(cx, "serversTransport") else {
        return timeouts;
    };
    if let Some(mut ft) = st.obj(cx, "forwardingTimeouts") {
        for (key, slot) in [
            ("dialTimeout", &mut timeouts.dial),
            ("responseHeaderTimeout", &mut timeouts.response_header),
            ("idleConnTimeout", &mut timeouts.idle_conn),
        ] {
            // Zero is Traefik's "no timeout": betaroute keeps its default instead.
            if let Some(d) = ft.duration(cx, key).filter(|d| !d.is_zero()) {
                *slot = d;
            }
        }
        for key in ["readIdleTimeout", "pingTimeout"] {
            ft.ignore(cx, key, "HTTP/2 backends are not supported yet");
        }
        ft.finish(
            cx,
            &[
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            ],
        );
    }
    for key in ["insecureSkipVerify", "rootCAs"] {
        st.ignore(
            cx,
            key,
            "https backends are not supported yet (they are refused)",
        );
    }
    st.ignore(
        cx,
        "maxIdleConnsPerHost",
        "idle backend connections are kept per worker thread and closed after idleConnTimeout",
    );
    st.refuse(cx, "spiffe", "is not supported");
    st.finish(
        cx,
        &[
            "forwardingTimeouts",
            "insecureSkipVerify",
            "rootCAs",
            "maxIdleConnsPerHost",
            "spiffe",
        ],
    );
    timeouts
}

/// Traefik settings for its own logs, telemetry and dashboard: accepted with a word.
fn informational(cx: &mut Cx, top: &mut Obj) {
    for (key, why) in [
        ("global", "Traefik's version checks and anonymous usage do not apply"),
        ("log", "betaroute writes JSON log lines to standard error"),
        ("api", "Traefik's API and dashboard are not served; betaroute's admin address serves /api/routers, /api/services and /metrics"),
        ("ping", "betaroute's admin address answers /ping"),
        ("metrics", "betaroute's admin address serves Prometheus metrics at /metrics"),
        ("tracing", "tracing is not implemented"),
        ("hostResolver", "CNAME flattening is not implemented"),
        ("experimental", "experimental features and plugins are not implemented (middlewares that use them are refused)"),
        ("certificatesResolvers", "ACME needs the network; routers that use a resolver are refused with their tls"),
        ("tcpServersTransport", "TCP routing is not supported"),
        ("ocsp", "TLS is not supported yet"),
    ] {
        top.ignore(cx, key, why);
    }
    top.refuse(cx, "spiffe", "is not supported");
    if let Some(mut core) = top.obj(cx, "core") {
        if let Some(s) = core.string(cx, "defaultRuleSyntax") {
            if !s.eq_ignore_ascii_case("v3") {
                cx.error(
                    core.at_key("defaultRuleSyntax"),
                    format!("core: defaultRuleSyntax {s:?}: only v3 rules are supported"),
                );
            }
        }
        core.finish(cx, &["defaultRuleSyntax"]);
    }
}
