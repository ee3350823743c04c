//! Validation: dynamic configuration files become one immutable [`RoutingConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use betaroute_core::rules::Rule;

use super::load::Located;
use super::model::{HttpCfg, ServiceCfg};
use super::{ConfigError, ConfigErrors};

/// A validated router.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub rule: Rule,
    /// Configured priority (`None` or 0: the rule's default).
    pub priority: Option<i64>,
    pub service: String,
    /// Entry points this router serves; `None`: all of them.
    pub entry_points: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub url: http::Uri,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub hostname: Option<String>,
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
    pub services: BTreeMap<String, ServiceSpec>,
    /// Non-fatal notes (unsupported Traefik features that were ignored).
    pub warnings: Vec<String>,
}

pub fn compile(parts: &[(&Located, &HttpCfg)]) -> Result<RoutingConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut out = RoutingConfig::default();
    let mut service_src: BTreeMap<&str, &Located> = BTreeMap::new();
    let mut router_names = BTreeSet::new();

    for (src, http) in parts {
        for (name, svc) in &http.services {
            if service_src.insert(name, src).is_some() {
                errors.push(src.error(
                    src.find(name, name),
                    format!("service {name:?} is defined more than once"),
                ));
                continue;
            }
            match service(src, name, svc, &mut out.warnings) {
                Ok(spec) => {
                    out.services.insert(name.clone(), spec);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if http.middlewares.as_ref().is_some_and(|m| !m.is_empty()) {
            out.warnings.push(format!(
                "{}: middlewares are not supported by betaroute and are ignored",
                src.file
            ));
        }
    }

    for (src, http) in parts {
        for (name, r) in &http.routers {
            let at = |value: &str| src.find(name, value);
            if name.contains('@') {
                errors.push(src.error(
                    at(name),
                    format!("router name {name:?} must not contain '@'"),
                ));
            }
            if !router_names.insert(name.clone()) {
                errors.push(src.error(
                    at(name),
                    format!("router {name:?} is defined more than once"),
                ));
                continue;
            }
            if r.rule_syntax.as_deref().is_some_and(|s| s != "v3") {
                errors.push(src.error(
                    at("ruleSyntax"),
                    format!("router {name}: only ruleSyntax v3 is supported"),
                ));
            }
            if r.middlewares.as_ref().is_some_and(|m| !m.is_empty()) {
                out.warnings
                    .push(format!("router {name}: middlewares are ignored"));
            }
            let rule = match Rule::compile(&r.rule) {
                Ok(rule) => Some(rule),
                Err(e) => {
                    let offset = at(&r.rule).map(|o| o + e.span.start);
                    let mut err = src.error(
                        offset.or_else(|| at("rule")),
                        format!("router {name}: invalid rule: {}", e.kind),
                    );
                    err.snippet = Some(e.caret(&r.rule));
                    errors.push(err);
                    None
                }
            };
            if !out.services.contains_key(&r.service)
                && !service_src.contains_key(r.service.as_str())
            {
                errors.push(src.error(
                    at(&r.service),
                    format!("router {name}: service {:?} does not exist", r.service),
                ));
            }
            if let Some(rule) = rule {
                out.routers.push(RouterSpec {
                    name: name.clone(),
                    rule,
                    priority: r.priority,
                    service: r.service.clone(),
                    entry_points: r.entry_points.clone(),
                });
            }
        }
    }

    // References between services, and cycles (weighted/failover pointing back at themselves).
    for (name, spec) in &out.services {
        let src = service_src[name.as_str()];
        let refs: Vec<&String> = match spec {
            ServiceSpec::Weighted(children) => children.iter().map(|(c, _)| c).collect(),
            ServiceSpec::Failover { service, fallback } => vec![service, fallback],
            ServiceSpec::LoadBalancer(_) => vec![],
        };
        for r in refs {
            if !out.services.contains_key(r) {
                errors.push(src.error(
                    src.find(name, r),
                    format!("service {name}: refers to unknown service {r:?}"),
                ));
            }
        }
        if cycles_back(&out.services, name, name, &mut BTreeSet::new()) {
            errors.push(src.error(
                src.find(name, name),
                format!("service {name}: refers to itself through weighted or failover services"),
            ));
        }
    }

    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn cycles_back(
    all: &BTreeMap<String, ServiceSpec>,
    start: &str,
    at: &str,
    seen: &mut BTreeSet<String>,
) -> bool {
    let children: Vec<&String> = match all.get(at) {
        Some(ServiceSpec::Weighted(c)) => c.iter().map(|(n, _)| n).collect(),
        Some(ServiceSpec::Failover { service, fallback }) => vec![service, fallback],
        _ => return false,
    };
    children
        .into_iter()
        .any(|c| c == start || (seen.insert(c.clone()) && cycles_back(all, start, c, seen)))
}

fn service(
    src: &Located,
    name: &str,
    svc: &ServiceCfg,
    warnings: &mut Vec<String>,
) -> Result<ServiceSpec, Vec<ConfigError>> {
    let kinds = [
        svc.load_balancer.is_some(),
        svc.weighted.is_some(),
        svc.failover.is_some(),
        svc.mirroring.is_some(),
    ];
    if kinds.iter().filter(|&&k| k).count() != 1 {
        return Err(vec![src.error(
            src.find(name, name),
            format!("service {name}: define exactly one of loadBalancer, weighted or failover"),
        )]);
    }
    if svc.mirroring.is_some() {
        return Err(vec![src.error(
            src.find(name, "mirroring"),
            format!("service {name}: mirroring is not supported"),
        )]);
    }
    if let Some(w) = &svc.weighted {
        if w.services.is_empty() {
            return Err(vec![src.error(
                src.find(name, "weighted"),
                format!("service {name}: weighted.services is empty"),
            )]);
        }
        return Ok(ServiceSpec::Weighted(
            w.services
                .iter()
                .map(|s| (s.name.clone(), s.weight.unwrap_or(1)))
                .collect(),
        ));
    }
    if let Some(f) = &svc.failover {
        return Ok(ServiceSpec::Failover {
            service: f.service.clone(),
            fallback: f.fallback.clone(),
        });
    }
    let lb = svc.load_balancer.as_ref().expect("one kind is set");
    let mut errors = Vec::new();
    if lb.sticky.is_some() {
        warnings.push(format!(
            "service {name}: sticky sessions are not supported and are ignored"
        ));
    }
    if lb.servers.is_empty() {
        errors.push(src.error(
            src.find(name, "servers"),
            format!("service {name}: loadBalancer has no servers"),
        ));
    }
    let mut servers = Vec::new();
    for s in &lb.servers {
        match s.url.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => {
                servers.push(ServerSpec {
                    url: u,
                    weight: s.weight.unwrap_or(1),
                })
            }
            Ok(u) if u.scheme_str() == Some("https") => errors.push(src.error(
                src.find(name, &s.url),
                format!("service {name}: server {u}: https to backends is not supported yet"),
            )),
            _ => errors.push(src.error(
                src.find(name, &s.url),
                format!(
                    "service {name}: server url {:?} is not http://host:port",
                    s.url
                ),
            )),
        }
    }
    let health = match &lb.health_check {
        None => None,
        Some(hc) => {
            let mut dur = |d: &Option<super::model::DurationCfg>, default: u64, what: &str| match d
            {
                None => Some(Duration::from_secs(default)),
                Some(d) => match d.parse() {
                    Ok(v) if !v.is_zero() => Some(v),
                    Ok(_) => {
                        errors.push(src.error(
                            src.find(name, what),
                            format!("service {name}: healthCheck.{what} must be positive"),
                        ));
                        None
                    }
                    Err(e) => {
                        errors.push(src.error(
                            src.find(name, what),
                            format!("service {name}: healthCheck.{what}: {e}"),
                        ));
                        None
                    }
                },
            };
            let interval = dur(&hc.interval, 30, "interval");
            let timeout = dur(&hc.timeout, 5, "timeout");
            let path = hc.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                errors.push(src.error(
                    src.find(name, &path),
                    format!("service {name}: healthCheck.path must start with '/'"),
                ));
            }
            if hc.scheme.as_deref().is_some_and(|s| s != "http") || hc.port.is_some() {
                warnings.push(format!(
                    "service {name}: healthCheck scheme and port overrides are not supported"
                ));
            }
            match (interval, timeout) {
                (Some(interval), Some(timeout)) => Some(HealthSpec {
                    path,
                    interval,
                    timeout,
                    hostname: hc.hostname.clone(),
                    status: hc.status,
                    headers: hc.headers.clone().unwrap_or_default().into_iter().collect(),
                    method: hc.method.clone().unwrap_or_else(|| "GET".into()),
                }),
                _ => None,
            }
        }
    };
    if errors.is_empty() {
        Ok(ServiceSpec::LoadBalancer(LoadBalancerSpec {
            servers,
            health,
            pass_host_header: lb.pass_host_header.unwrap_or(true),
        }))
    } else {
        Err(errors)
    }
}
