//! Backend selection: load balancers (smooth weighted round-robin over available servers),
//! weighted services and failover services, with health state that survives reloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{HealthSpec, ServiceSpec};

/// How long a server that refused a connection is skipped when no active health check watches it.
pub const PASSIVE_COOLDOWN: Duration = Duration::from_secs(10);

/// One backend server and its health.
#[derive(Debug)]
pub struct Server {
    pub url: http::Uri,
    /// The URL as text, for logs.
    pub url_text: String,
    /// `host:port` of the URL.
    pub authority: String,
    /// The Host header sent when `passHostHeader` is false.
    pub host_header: http::HeaderValue,
    /// Where and how to connect: `host:port` (port 80, 443 for https, when the URL has none),
    /// TLS for `https://`, the transport's limits; keys the connection pool.
    pub endpoint: super::transport::Endpoint,
    /// The transport's response header timeout, if it sets one.
    pub response_header_timeout: Option<std::time::Duration>,
    /// The transport it was made with (a reload that changes it makes new servers).
    transport: Option<Arc<crate::config::dynamic::transport::TransportSpec>>,
    /// An `h2c://` server: HTTP/2 with prior knowledge (what gRPC backends speak).
    pub h2c: bool,
    /// Path of the server URL, without a trailing `/` ("" for none): prefixed to request paths.
    base_path: String,
    pub weight: u32,
    /// The load-balancer service this server belongs to (qualified), as the opt-in
    /// `cohort.servedByHeader` names it: the pool that answered, never the address.
    pub service: http::HeaderValue,
    /// Result of the last active health check (true until a check says otherwise).
    pub healthy: AtomicBool,
    /// Milliseconds since `epoch()` until which a passive failure keeps the server out.
    down_until_ms: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Server {
    pub fn new(
        url: http::Uri,
        weight: u32,
        service: &str,
        transport: Option<Arc<crate::config::dynamic::transport::TransportSpec>>,
    ) -> Server {
        let authority = url.authority().map(|a| a.to_string()).unwrap_or_default();
        let default_port = if url.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let address: Arc<str> = format!(
            "{}:{}",
            url.host().unwrap_or("localhost"),
            url.port_u16().unwrap_or(default_port)
        )
        .into();
        Server {
            endpoint: super::transport::Endpoint::new(&url, address, transport.as_deref()),
            response_header_timeout: transport.as_ref().and_then(|t| t.response_header_timeout),
            transport,
            service: http::HeaderValue::from_str(service)
                .unwrap_or(http::HeaderValue::from_static("(unnamed)")),
            url_text: url.to_string(),
            host_header: http::HeaderValue::from_str(&authority)
                .unwrap_or(http::HeaderValue::from_static("localhost")),
            base_path: url.path().trim_end_matches('/').to_owned(),
            h2c: url.scheme_str() == Some("h2c"),
            authority,
            url,
            weight,
            healthy: AtomicBool::new(true),
            down_until_ms: AtomicU64::new(0),
        }
    }

    /// The origin-form target of a request to this server: its path (if any) followed by the
    /// request's path and query, untouched.
    pub fn target_for(&self, path_and_query: Option<&http::uri::PathAndQuery>) -> http::Uri {
        let pq = match (self.base_path.is_empty(), path_and_query) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => http::uri::PathAndQuery::from_static("/"),
            (false, pq) => {
                let joined = format!("{}{}", self.base_path, pq.map_or("/", |p| p.as_str()));
                joined
                    .parse()
                    .unwrap_or_else(|_| http::uri::PathAndQuery::from_static("/"))
            }
        };
        http::Uri::from(pq)
    }

    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && now_ms() >= self.down_until_ms.load(Ordering::Relaxed)
    }

    /// A connection to this server failed: keep it out for a while.
    pub fn mark_failed(&self) {
        self.down_until_ms.store(
            now_ms() + PASSIVE_COOLDOWN.as_millis() as u64,
            Ordering::Relaxed,
        );
    }
}

#[derive(Debug)]
pub struct LoadBalancer {
    pub name: String,
    pub servers: Vec<Arc<Server>>,
    pub health: Option<HealthSpec>,
    pub pass_host_header: bool,
    /// Smooth weighted round-robin state (NGINX's algorithm): one current weight per server.
    current: Mutex<Vec<i64>>,
}

impl LoadBalancer {
    /// Picks an available server, skipping `exclude` (servers already tried).
    pub fn pick(&self, exclude: &[Arc<Server>]) -> Option<Arc<Server>> {
        let b = smooth_weighted_pick(
            &self.current,
            self.servers.iter().map(|s| {
                let eligible = s.available() && !exclude.iter().any(|e| Arc::ptr_eq(e, s));
                if eligible {
                    s.weight
                } else {
                    0
                }
            }),
        )?;
        Some(self.servers[b].clone())
    }

    pub fn available(&self) -> bool {
        self.servers.iter().any(|s| s.available() && s.weight > 0)
    }
}

/// Smooth weighted round-robin (NGINX's algorithm) over candidates given by their effective
/// weight (0: not eligible now). `current` holds one running weight per candidate.
fn smooth_weighted_pick(
    current: &Mutex<Vec<i64>>,
    weights: impl Iterator<Item = u32>,
) -> Option<usize> {
    let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for (i, w) in weights.enumerate() {
        if w == 0 {
            continue;
        }
        current[i] += w as i64;
        total += w as i64;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    current[b] -= total;
    Some(b)
}

/// A service as the proxy runs it.
#[derive(Debug)]
pub enum Service {
    LoadBalancer(Arc<LoadBalancer>),
    Weighted {
        children: Vec<(Arc<Service>, u32)>,
        current: Mutex<Vec<i64>>,
    },
    Failover {
        main: Arc<Service>,
        fallback: Arc<Service>,
    },
}

impl Service {
    pub fn available(&self) -> bool {
        match self {
            Service::LoadBalancer(lb) => lb.available(),
            Service::Weighted { children, .. } => {
                children.iter().any(|(c, w)| *w > 0 && c.available())
            }
            Service::Failover { main, fallback } => main.available() || fallback.available(),
        }
    }

    /// The load balancer that serves the next request of this service.
    pub fn resolve(&self) -> Option<Arc<LoadBalancer>> {
        match self {
            Service::LoadBalancer(lb) => Some(lb.clone()),
            Service::Failover { main, fallback } => {
                if main.available() {
                    main.resolve()
                } else {
                    fallback.resolve()
                }
            }
            Service::Weighted { children, current } => {
                let b = smooth_weighted_pick(
                    current,
                    children
                        .iter()
                        .map(|(c, w)| if c.available() { *w } else { 0 }),
                )?;
                children[b].0.resolve()
            }
        }
    }
}

/// Builds every service of a configuration. Health state of servers that already existed (same
/// service name and URL) is carried over, so a reload neither forgets a dead server nor resets a
/// round-robin position that matters.
pub fn build(
    specs: &std::collections::BTreeMap<String, ServiceSpec>,
    previous: &HashMap<String, Arc<Service>>,
) -> HashMap<String, Arc<Service>> {
    let mut built: HashMap<String, Arc<Service>> = HashMap::new();
    // Load balancers first, then composites (in dependency order; cycles were refused).
    let mut pending: Vec<&String> = specs.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|name| {
            let svc = match &specs[*name] {
                ServiceSpec::LoadBalancer(lb) => Some(load_balancer(name, lb, previous.get(*name))),
                ServiceSpec::Weighted(children) => weighted(children, &built),
                ServiceSpec::Failover { service, fallback } => {
                    match (built.get(service), built.get(fallback)) {
                        (Some(m), Some(f)) => Some(Service::Failover {
                            main: m.clone(),
                            fallback: f.clone(),
                        }),
                        _ => None,
                    }
                }
            };
            match svc {
                Some(svc) => {
                    built.insert((*name).clone(), Arc::new(svc));
                    false
                }
                None => true, // a child is not built yet
            }
        });
        if pending.len() == before {
            break; // unresolvable references were refused by validation
        }
    }
    built
}

/// A load balancer whose servers keep their state from the previous one when unchanged.
fn load_balancer(
    name: &str,
    lb: &crate::config::LoadBalancerSpec,
    previous: Option<&Arc<Service>>,
) -> Service {
    let old = match previous.map(|s| &**s) {
        Some(Service::LoadBalancer(old)) => Some(old.clone()),
        _ => None,
    };
    let servers = lb
        .servers
        .iter()
        .map(|s| {
            let reused = old.as_ref().and_then(|o| {
                o.servers
                    .iter()
                    .find(|os| {
                        os.url == s.url && os.weight == s.weight && os.transport == lb.transport
                    })
                    .cloned()
            });
            reused.unwrap_or_else(|| {
                Arc::new(Server::new(
                    s.url.clone(),
                    s.weight,
                    name,
                    lb.transport.clone(),
                ))
            })
        })
        .collect::<Vec<_>>();
    let n = servers.len();
    Service::LoadBalancer(Arc::new(LoadBalancer {
        name: name.to_owned(),
        servers,
        health: lb.health.clone(),
        pass_host_header: lb.pass_host_header,
        current: Mutex::new(vec![0; n]),
    }))
}

/// A weighted service, once all its children are built.
fn weighted(children: &[(String, u32)], built: &HashMap<String, Arc<Service>>) -> Option<Service> {
    let resolved = children
        .iter()
        .map(|(c, w)| built.get(c).map(|s| (s.clone(), *w)))
        .collect::<Option<Vec<_>>>()?;
    let n = resolved.len();
    Some(Service::Weighted {
        children: resolved,
        current: Mutex::new(vec![0; n]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(weights: &[u32]) -> LoadBalancer {
        LoadBalancer {
            name: "t".into(),
            servers: weights
                .iter()
                .enumerate()
                .map(|(i, &w)| {
                    Arc::new(Server::new(
                        format!("http://127.0.0.1:{}", 1000 + i).parse().unwrap(),
                        w,
                        "t",
                        None,
                    ))
                })
                .collect(),
            health: None,
            pass_host_header: true,
            current: Mutex::new(vec![0; weights.len()]),
        }
    }

    #[test]
    fn smooth_weighted_round_robin() {
        let b = lb(&[5, 1, 1]);
        let picks: Vec<u16> = (0..7)
            .map(|_| b.pick(&[]).unwrap().url.port_u16().unwrap() - 1000)
            .collect();
        // NGINX's sequence for 5/1/1: a a b a c a a (interleaved, exact shares).
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn unavailable_and_excluded_servers_are_skipped() {
        let b = lb(&[1, 1]);
        b.servers[0].healthy.store(false, Ordering::Relaxed);
        for _ in 0..4 {
            assert_eq!(b.pick(&[]).unwrap().url.port_u16(), Some(1001));
        }
        let s1 = b.servers[1].clone();
        assert!(b.pick(std::slice::from_ref(&s1)).is_none());
        b.servers[1].mark_failed();
        assert!(!b.available());
    }
}
