//! What one file defines, as read and before validation across files.

use betaroute_core::rules::Rule;

use super::spec::ServiceSpec;

/// A reference to another object, as written (`api`, `api@file`), and where.
#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub at: usize,
}

#[derive(Debug, Clone)]
pub struct RouterDraft {
    pub name: String,
    pub at: usize,
    /// `None` when the rule is missing or invalid (already reported).
    pub rule: Option<Rule>,
    pub priority: Option<i64>,
    pub service: Option<Ref>,
    pub entry_points: Option<Vec<String>>,
    pub middlewares: Vec<Ref>,
    /// Features of the router itself that betaroute refuses.
    pub refused: Vec<String>,
    /// `tls`: a TLS router, served on TLS connections only.
    pub tls: Option<RouterTlsDraft>,
}

/// A router's `tls`.
#[derive(Debug, Clone, Default)]
pub struct RouterTlsDraft {
    /// `tls.options`, as written; `None`: the default options.
    pub options: Option<Ref>,
}

#[derive(Debug, Clone)]
pub struct ServiceDraft {
    pub name: String,
    pub at: usize,
    /// `None` when the service is refused or invalid (already reported).
    pub spec: Option<ServiceSpec>,
    /// Services this one points at (weighted, failover), for reference checks.
    pub refs: Vec<Ref>,
    pub refused: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MiddlewareDraft {
    pub name: String,
    pub at: usize,
    pub kind: String,
    /// Its configuration in canonical form, to tell two definitions apart.
    pub config: String,
    /// The middleware, when betaroute implements its kind (`chain` has none: its references are
    /// in `chain`, flattened when the configuration is combined).
    pub spec: Option<std::sync::Arc<crate::middleware::Middleware>>,
    pub chain: Vec<Ref>,
    /// Why a kind betaroute does not run is refused, when there is more to say than "not
    /// supported yet" (a plugin: which one).
    pub refusal: Option<String>,
}

/// A comparison, names as written.
#[derive(Debug, Clone)]
pub struct ComparisonDraft {
    pub name: String,
    pub at: usize,
    pub spec: super::spec::ComparisonSpec,
}

/// Everything one file defines.
#[derive(Debug, Clone, Default)]
pub struct Part {
    pub routers: Vec<RouterDraft>,
    pub services: Vec<ServiceDraft>,
    pub middlewares: Vec<MiddlewareDraft>,
    /// `cohorts.beta.enabled`, when the file sets it.
    pub beta_enabled: Option<bool>,
    pub comparisons: Vec<ComparisonDraft>,
    /// The `tls` section: certificates, the default store, options.
    pub tls: Option<super::tls::TlsPart>,
    /// `http.serversTransports`.
    pub transports: Vec<super::transport::TransportDraft>,
}

/// What every defined object has: a name, unique across files, and where it is written.
pub trait Named {
    fn name(&self) -> &str;
    fn at(&self) -> usize;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn name(&self) -> &str {
                &self.name
            }
            fn at(&self) -> usize {
                self.at
            }
        }
    )*};
}

named!(
    RouterDraft,
    ServiceDraft,
    MiddlewareDraft,
    ComparisonDraft,
    super::transport::TransportDraft
);
