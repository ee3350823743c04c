//! What dynamic configuration validates into: the routers and services the proxy serves, as
//! plain data.

use std::collections::BTreeMap;
use std::time::Duration;

use betaroute_core::rules::Rule;

use crate::config::error::ConfigError;
use crate::config::read::{Diagnostic, Severity};

/// A validated router.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub rule: Rule,
    /// Configured priority (`None` or 0: the rule's default).
    pub priority: Option<i64>,
    /// The service's qualified name (`api@file`).
    pub service: String,
    /// The service as written (`api`, `api@consulcatalog`), as Traefik's API shows it.
    pub service_written: String,
    /// Middlewares, qualified, in order.
    pub middlewares: Vec<String>,
    /// Entry points this router serves; `None`: all of them.
    pub entry_points: Option<Vec<String>>,
    /// Why this router is not served, when it uses something betaroute does not implement. It
    /// stays in the table and answers 503, so that its requests never fall through to another,
    /// less protected router.
    pub refused: Option<String>,
    /// The middlewares it runs, in order (`chain`s flattened).
    pub chain: Vec<std::sync::Arc<crate::middleware::Middleware>>,
    /// A TLS router (served on TLS connections only), with its TLS options.
    pub tls: Option<RouterTls>,
}

/// A TLS router's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterTls {
    /// The TLS options' qualified name (`default`, `modern@file`).
    pub options: String,
    /// Entry points where another router serves one of its hosts with other options: there it
    /// uses the default options, as Traefik arbitrates.
    pub default_on: Vec<String>,
}

/// What an entry point's `http` section applies to its routers (Traefik's router models), and
/// its redirection router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPointModel {
    pub entry_point: String,
    /// `http.tls`: its routers are TLS routers; the options as written (`None`: default).
    pub tls: Option<Option<String>>,
    /// `http.middlewares`, run before each router's own.
    pub middlewares: Vec<String>,
    /// `http.redirections.entryPoint`.
    pub redirect: Option<EntryPointRedirect>,
}

/// `http.redirections.entryPoint`: every plain request to this entry point is redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointRedirect {
    /// The entry point (or `:port`) redirected to, as written.
    pub to: String,
    /// The port the redirect names (the target entry point's).
    pub port: String,
    pub scheme: String,
    pub permanent: bool,
    pub priority: i64,
}

/// What the static configuration tells the dynamic one: the entry points, and their models.
#[derive(Debug, Clone, Default)]
pub struct Statics {
    /// Every entry point's name (routers without `entryPoints` are on all of them).
    pub entry_points: Vec<String>,
    pub models: Vec<EntryPointModel>,
    /// The static `serversTransport` (`default@internal`), if set.
    pub default_transport: Option<std::sync::Arc<super::transport::TransportSpec>>,
}

impl Statics {
    pub fn model(&self, ep: &str) -> Option<&EntryPointModel> {
        self.models.iter().find(|m| m.entry_point == ep)
    }
}

/// The TLS configuration served: the default store's certificates and the TLS options.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub certificates: Vec<std::sync::Arc<super::tls::Certificate>>,
    /// `tls.stores.default.defaultCertificate`; `None`: a generated one.
    pub default_certificate: Option<std::sync::Arc<super::tls::Certificate>>,
    /// By qualified name; `default` is always there.
    pub options: BTreeMap<String, std::sync::Arc<super::tls::TlsOptions>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        let mut options = BTreeMap::new();
        options.insert(
            super::tls::DEFAULT_OPTIONS.to_owned(),
            std::sync::Arc::new(super::tls::TlsOptions::default()),
        );
        TlsConfig {
            certificates: Vec::new(),
            default_certificate: None,
            options,
        }
    }
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
    /// `serversTransport` as written (resolved when the configuration is combined).
    pub transport_ref: Option<String>,
    /// The transport its servers are connected with (`None`: betaroute's defaults).
    pub transport: Option<std::sync::Arc<super::transport::TransportSpec>>,
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
    /// Services defined but refused, with why (for the API).
    pub refused_services: BTreeMap<String, String>,
    /// Middlewares defined, by qualified name: their kind.
    pub middlewares: BTreeMap<String, String>,
    /// Refusals and warnings (errors make the load fail instead).
    pub diagnostics: Vec<Diagnostic>,
    /// `cohorts.beta.enabled`, when a provider sets it (unset: beta is on).
    pub beta_switch: Option<BetaSwitch>,
    /// `http.comparisons`, names qualified.
    pub comparisons: Vec<ComparisonSpec>,
    pub tls: TlsConfig,
}

/// A comparison of beta with its baseline (`http.comparisons.NAME`).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonSpec {
    pub name: String,
    /// A router or service name.
    pub beta: String,
    pub baseline: Baseline,
    pub interval: std::time::Duration,
    pub window: std::time::Duration,
    pub thresholds: betaroute_core::stats::judge::Thresholds,
    pub failure_threshold: u32,
    pub webhook: Option<String>,
}

/// What beta is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// Main requests of this router or service.
    Named(String),
    /// Holdback requests (like users kept on main), wherever they are routed.
    Holdback,
    /// None configured: the main router of beta's rule (its "twin", the same rule without the
    /// `Header(..., `true`)` operand; found when the configuration is combined, `None` if there
    /// is none), its holdback requests once they are enough to judge by.
    Default(Option<String>),
}

/// The beta kill switch as the dynamic configuration sets it, and which provider set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetaSwitch {
    pub enabled: bool,
    pub provider: String,
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
