//! The routing state the proxy serves from: built off the request path from a validated
//! configuration, then swapped in atomically. Never mutated once built.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use betaroute_core::rules::{Router, Table};

use super::balancer::{self, Service};
use super::judge::{Comparison, Side};
use super::metrics::{Registry, RouteMetrics};
use crate::config::dynamic::{Baseline, ComparisonSpec};
use crate::config::RoutingConfig;

/// What a matched router leads to.
#[derive(Debug)]
pub struct Target {
    pub router: String,
    pub service_name: String,
    /// `None` for a refused router, which never forwards.
    pub service: Option<Arc<Service>>,
    /// Why the router is refused (its configuration uses what betaroute does not implement).
    pub refused: Option<String>,
    pub metrics: Arc<RouteMetrics>,
    /// The comparisons this router's requests count for, and on which side.
    pub comparisons: Vec<(Arc<Comparison>, Side)>,
    /// The router's middlewares, in order (empty: the phase costs nothing).
    pub chain: Vec<Arc<crate::middleware::Middleware>>,
    /// One of Traefik's `@internal` services betaroute answers itself.
    pub internal: Option<crate::config::Internal>,
    /// A TLS router: the TLS options its requests' connections must have used (else 421, as
    /// Traefik's SNI check answers a request whose Host has other options than its SNI).
    pub tls_options: Option<String>,
}

/// An entry point's routers: those for plain connections, and the TLS routers for TLS ones.
#[derive(Debug)]
pub struct Tables {
    pub plain: Table<Arc<Target>>,
    pub tls: Table<Arc<Target>>,
}

#[derive(Debug)]
pub struct State {
    pub generation: u64,
    /// Per entry point (routers without `entryPoints` are on all of them).
    pub tables: HashMap<String, Tables>,
    /// What TLS handshakes use: certificates and, by SNI, TLS options.
    pub tls: super::tls::TlsState,
    pub services: HashMap<String, Arc<Service>>,
    pub config: RoutingConfig,
    /// Metrics of requests no router matched, per entry point.
    pub unmatched: HashMap<String, Arc<RouteMetrics>>,
    /// Every comparison configured, and those whose baseline is the holdback cohort.
    pub comparisons: Vec<Arc<Comparison>>,
    pub holdback: Vec<Arc<Comparison>>,
}

impl State {
    pub fn build(
        config: RoutingConfig,
        entry_points: &[String],
        previous: Option<&State>,
        registry: &Registry,
    ) -> State {
        let empty = HashMap::new();
        let comparisons: Vec<(ComparisonSpec, Arc<Comparison>)> = config
            .comparisons
            .iter()
            .map(|spec| (spec.clone(), registry.comparisons.get(spec)))
            .collect();
        let holdback = comparisons
            .iter()
            .filter(|(s, _)| s.baseline == Baseline::Holdback)
            .map(|(_, c)| c.clone())
            .collect();
        let sides = |router: &str, service: &str| -> Vec<(Arc<Comparison>, Side)> {
            let named = |n: &str| n == router || n == service;
            let mut out = Vec::new();
            for (s, c) in &comparisons {
                if named(&s.beta) {
                    out.push((c.clone(), Side::Beta));
                }
                match &s.baseline {
                    Baseline::Named(b) if named(b) => out.push((c.clone(), Side::Baseline)),
                    Baseline::Default(Some(twin)) if twin == router => {
                        out.push((c.clone(), Side::Baseline));
                        out.push((c.clone(), Side::Holdback));
                    }
                    _ => {}
                }
            }
            out
        };
        let services = balancer::build(&config.services, previous.map_or(&empty, |p| &p.services));
        let mut tables = HashMap::new();
        let mut unmatched = HashMap::new();
        for ep in entry_points {
            let (mut plain, mut tls) = (Vec::new(), Vec::new());
            for r in config.routers.iter().filter(|r| {
                r.entry_points
                    .as_ref()
                    .is_none_or(|eps| eps.iter().any(|e| e == ep))
            }) {
                let internal = crate::config::Internal::of(&r.service);
                let service = match (&r.refused, internal) {
                    (Some(_), _) | (None, Some(_)) => None,
                    (None, None) => match services.get(&r.service) {
                        Some(s) => Some(s.clone()),
                        None => continue,
                    },
                };
                let tls_options = super::tls::effective_options(r, ep).map(str::to_owned);
                let target = Arc::new(Target {
                    router: r.name.clone(),
                    service_name: r.service.clone(),
                    service,
                    refused: r.refused.clone(),
                    metrics: registry.route(ep, &r.name, &r.service),
                    comparisons: sides(&r.name, &r.service),
                    chain: r.chain.clone(),
                    internal,
                    tls_options: tls_options.clone(),
                });
                let router = Router::new(&r.name, r.rule.clone(), r.priority, target);
                if tls_options.is_some() {
                    tls.push(router);
                } else {
                    plain.push(router);
                }
            }
            tables.insert(
                ep.clone(),
                Tables {
                    plain: Table::new(plain),
                    tls: Table::new(tls),
                },
            );
            unmatched.insert(ep.clone(), registry.route(ep, "", ""));
        }
        let tls = super::tls::TlsState::build(&config.tls, &config.routers, entry_points);
        State {
            generation: previous.map_or(1, |p| p.generation + 1),
            tables,
            tls,
            services,
            config,
            unmatched,
            comparisons: comparisons.into_iter().map(|(_, c)| c).collect(),
            holdback,
        }
    }

    /// Every server with its service and availability, for metrics and the API.
    pub fn servers(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        let sorted: BTreeMap<_, _> = self.services.iter().collect();
        for (name, svc) in sorted {
            if let Service::LoadBalancer(lb) = &**svc {
                for s in &lb.servers {
                    out.push((name.clone(), s.url.to_string(), s.available()));
                }
            }
        }
        out
    }
}

/// A one-line summary of what a reload changed, for the log.
pub fn diff(old: &RoutingConfig, new: &RoutingConfig) -> String {
    let describe = |c: &RoutingConfig| -> BTreeMap<String, String> {
        c.routers
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    format!(
                        "{} -> {} ({:?}){}",
                        r.rule.text(),
                        r.service,
                        r.priority,
                        if r.refused.is_some() { " refused" } else { "" }
                    ),
                )
            })
            .collect()
    };
    let (a, b) = (describe(old), describe(new));
    let added: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let removed: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let changed: Vec<&String> = b
        .keys()
        .filter(|k| a.get(*k).is_some_and(|v| v != &b[*k]))
        .collect();
    let services_changed: Vec<&String> = new
        .services
        .keys()
        .filter(|k| old.services.get(*k) != new.services.get(*k))
        .collect();
    format!("routers added {added:?}, removed {removed:?}, changed {changed:?}; services added or changed {services_changed:?}")
}
