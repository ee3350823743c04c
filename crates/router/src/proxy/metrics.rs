//! Prometheus metrics, labelled so beta and main response times can be compared side by side.
//! Counters are atomics owned by each route, so recording a request takes no lock; the registry
//! lock is only taken when a configuration is built and when metrics are scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use betaroute_core::Cohort;

/// Histogram bucket upper bounds, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct CohortMetrics {
    /// Responses by status class: 1xx..5xx, and index 0 for anything else.
    codes: [AtomicU64; 6],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Metrics of one (entry point, router, service).
#[derive(Debug, Default)]
pub struct RouteMetrics {
    cohorts: [CohortMetrics; 3],
}

impl RouteMetrics {
    pub fn record(&self, cohort: Cohort, status: u16, elapsed: Duration) {
        let m = &self.cohorts[cohort as usize];
        let class = (status / 100) as usize;
        m.codes[if (1..=5).contains(&class) { class } else { 0 }].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            m.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        m.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Key: (entry point, router, service); the unmatched requests use router "" and service "".
type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct Registry {
    routes: Mutex<BTreeMap<Key, Arc<RouteMetrics>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Last reload failure counter snapshot is enough for alerts: 1 when the last reload failed.
    pub last_reload_failed: AtomicU64,
    /// Refused routing signatures by (entry point, reason). Rare: a lock is fine.
    signatures: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Each provider's health, by name.
    providers: Mutex<BTreeMap<String, ProviderHealth>>,
    /// Requests sent again to another server, by (service, reason). Rare: a lock is fine.
    retries: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// The judge's comparisons, kept across reloads.
    pub comparisons: super::judge::Comparisons,
    /// Requests whose cohort the router changed, by (entry point, cohort they had, reason).
    /// Only while the kill switch is off: a lock is fine.
    overrides: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// Upgraded connections (WebSocket) by (router, cohort). Counted when one opens and
    /// closes, never per message: a lock is fine.
    upgrades: Arc<Mutex<BTreeMap<(String, &'static str), Upgrades>>>,
}

/// Upgraded connections of one router and cohort.
#[derive(Debug, Default, Clone, Copy)]
struct Upgrades {
    opened: u64,
    open: u64,
    /// Lifetimes of those closed, summed.
    seconds: f64,
    closed: u64,
}

/// One upgraded connection, counted open until dropped.
pub struct UpgradedConnection {
    upgrades: Arc<Mutex<BTreeMap<(String, &'static str), Upgrades>>>,
    key: (String, &'static str),
    since: std::time::Instant,
}

impl Drop for UpgradedConnection {
    fn drop(&mut self) {
        let mut m = self.upgrades.lock().unwrap_or_else(|p| p.into_inner());
        let u = m.entry(self.key.clone()).or_default();
        u.open -= 1;
        u.closed += 1;
        u.seconds += self.since.elapsed().as_secs_f64();
    }
}

/// Whether a provider's source answers, for metrics and the API.
#[derive(Debug, Clone, Default)]
pub struct ProviderHealth {
    pub up: bool,
    /// Why it is down (no credentials in it: errors name the endpoint, never the token).
    pub error: Option<String>,
    /// When its configuration last changed, and when it was last read without error.
    pub last_change: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    pub changes: u64,
    pub failures: u64,
}

fn unix(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Registry {
    /// A connection of `router` and `cohort` upgraded (101): open until the guard is dropped.
    pub fn upgraded(&self, router: &str, cohort: Cohort) -> UpgradedConnection {
        let key = (router.to_owned(), cohort.as_str());
        let mut m = self.upgrades.lock().unwrap_or_else(|p| p.into_inner());
        let u = m.entry(key.clone()).or_default();
        u.opened += 1;
        u.open += 1;
        UpgradedConnection {
            upgrades: self.upgrades.clone(),
            key,
            since: std::time::Instant::now(),
        }
    }

    fn render_upgrades(&self, out: &mut String) {
        let m = self
            .upgrades
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.push_str("# HELP betaroute_upgraded_connections_total Connections upgraded (WebSocket, 101), by router and cohort.\n# TYPE betaroute_upgraded_connections_total counter\n");
        for ((router, cohort), u) in &m {
            let _ = writeln!(
                out,
                "betaroute_upgraded_connections_total{{router=\"{}\",cohort=\"{cohort}\"}} {}",
                esc(router),
                u.opened
            );
        }
        out.push_str("# HELP betaroute_upgraded_connections_open Upgraded connections open now, by router and cohort.\n# TYPE betaroute_upgraded_connections_open gauge\n");
        for ((router, cohort), u) in &m {
            let _ = writeln!(
                out,
                "betaroute_upgraded_connections_open{{router=\"{}\",cohort=\"{cohort}\"}} {}",
                esc(router),
                u.open
            );
        }
        out.push_str("# HELP betaroute_upgraded_connection_seconds How long closed upgraded connections lasted, by router and cohort.\n# TYPE betaroute_upgraded_connection_seconds summary\n");
        for ((router, cohort), u) in &m {
            let l = format!("router=\"{}\",cohort=\"{cohort}\"", esc(router));
            let _ = writeln!(
                out,
                "betaroute_upgraded_connection_seconds_sum{{{l}}} {}\nbetaroute_upgraded_connection_seconds_count{{{l}}} {}",
                u.seconds, u.closed
            );
        }
    }

    pub fn signature_rejected(
        &self,
        entry_point: &str,
        reason: betaroute_core::signature::Rejected,
    ) {
        let mut m = self.signatures.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((entry_point.to_owned(), reason.code()))
            .or_default() += 1;
    }

    /// A request of `cohort` routed as main instead, for `reason` (`kill_switch`).
    pub fn cohort_overridden(&self, entry_point: &str, cohort: Cohort, reason: &'static str) {
        let mut m = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((entry_point.to_owned(), cohort.as_str(), reason))
            .or_default() += 1;
    }

    /// Records what a provider reported: a new configuration (`Ok`) or why it cannot be read.
    pub fn provider_report(&self, name: &str, result: Result<(), String>) {
        let mut m = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        let h = m.entry(name.to_owned()).or_default();
        let now = Some(SystemTime::now());
        match result {
            Ok(()) => {
                h.up = true;
                h.error = None;
                h.last_change = now;
                h.last_success = now;
                h.changes += 1;
            }
            Err(why) => {
                h.up = false;
                h.error = Some(why);
                h.failures += 1;
            }
        }
    }

    /// A provider read its source without error and found nothing new.
    pub fn provider_alive(&self, name: &str) {
        let mut m = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        let h = m.entry(name.to_owned()).or_default();
        h.up = true;
        h.error = None;
        h.last_success = Some(SystemTime::now());
    }

    pub fn providers(&self) -> BTreeMap<String, ProviderHealth> {
        self.providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn retried(&self, service: &str, reason: &'static str) {
        let mut m = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((service.to_owned(), reason)).or_default() += 1;
    }

    /// The metrics of a route, created on first use and kept across reloads.
    pub fn route(&self, entry_point: &str, router: &str, service: &str) -> Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .entry((
                entry_point.to_owned(),
                router.to_owned(),
                service.to_owned(),
            ))
            .or_default()
            .clone()
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self, servers: &[(String, String, bool)], beta_enabled: bool) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        render_requests(&mut out, &routes);
        render_durations(&mut out, &routes);
        render_servers(&mut out, servers);
        self.render_signatures(&mut out);
        self.render_reloads(&mut out);
        self.render_providers(&mut out);
        self.render_retries(&mut out);
        self.render_cohorts(&mut out, beta_enabled);
        self.render_upgrades(&mut out);
        out
    }

    fn render_cohorts(&self, out: &mut String, beta_enabled: bool) {
        let _ = writeln!(
            out,
            "# HELP betaroute_beta_enabled Whether beta routing is on (1) or the kill switch is off (0).\n# TYPE betaroute_beta_enabled gauge\nbetaroute_beta_enabled {}",
            u8::from(beta_enabled)
        );
        out.push_str("# HELP betaroute_cohort_overrides_total Requests the router routed as main instead of their cohort, by reason.\n# TYPE betaroute_cohort_overrides_total counter\n");
        let m = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        for ((ep, cohort, reason), n) in m.iter() {
            let _ = writeln!(
                out,
                "betaroute_cohort_overrides_total{{entrypoint=\"{}\",cohort=\"{cohort}\",reason=\"{reason}\"}} {n}",
                esc(ep)
            );
        }
    }

    fn render_providers(&self, out: &mut String) {
        let providers = self.providers();
        out.push_str("# HELP betaroute_provider_up Whether a provider's source answered its last read (1) or not (0: its last good configuration is served).\n# TYPE betaroute_provider_up gauge\n");
        for (name, h) in &providers {
            let _ = writeln!(
                out,
                "betaroute_provider_up{{provider=\"{}\"}} {}",
                esc(name),
                u8::from(h.up)
            );
        }
        out.push_str("# HELP betaroute_provider_updates_total Configurations a provider produced (changed) or could not read (failed).\n# TYPE betaroute_provider_updates_total counter\n");
        for (name, h) in &providers {
            let n = esc(name);
            let _ = writeln!(out, "betaroute_provider_updates_total{{provider=\"{n}\",result=\"changed\"}} {}\nbetaroute_provider_updates_total{{provider=\"{n}\",result=\"failed\"}} {}", h.changes, h.failures);
        }
        out.push_str("# HELP betaroute_provider_last_success_timestamp_seconds When a provider's source was last read without error (Unix time).\n# TYPE betaroute_provider_last_success_timestamp_seconds gauge\n");
        for (name, h) in &providers {
            let _ = writeln!(
                out,
                "betaroute_provider_last_success_timestamp_seconds{{provider=\"{}\"}} {}",
                esc(name),
                unix(h.last_success)
            );
        }
    }

    fn render_retries(&self, out: &mut String) {
        out.push_str("# HELP betaroute_retries_total Requests sent again (to another server after the first got no response, or by a retry middleware: reason retry-middleware), by service and reason.\n# TYPE betaroute_retries_total counter\n");
        for ((service, reason), n) in self
            .retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "betaroute_retries_total{{service=\"{}\",reason=\"{reason}\"}} {n}",
                esc(service)
            );
        }
    }

    fn render_signatures(&self, out: &mut String) {
        out.push_str("# HELP betaroute_signature_rejected_total Routing headers removed because their signature was missing or invalid, by reason.\n# TYPE betaroute_signature_rejected_total counter\n");
        for ((ep, reason), n) in self
            .signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "betaroute_signature_rejected_total{{entrypoint=\"{}\",reason=\"{reason}\"}} {n}",
                esc(ep)
            );
        }
    }

    fn render_reloads(&self, out: &mut String) {
        out.push_str("# HELP betaroute_config_reloads_total Configuration reloads by result.\n# TYPE betaroute_config_reloads_total counter\n");
        for (result, n) in [
            ("success", &self.reloads_ok),
            ("failure", &self.reloads_failed),
        ] {
            let _ = writeln!(
                out,
                "betaroute_config_reloads_total{{result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP betaroute_config_last_reload_failed 1 when the last reload was refused (the previous configuration is still served).\n# TYPE betaroute_config_last_reload_failed gauge\n");
        let _ = writeln!(
            out,
            "betaroute_config_last_reload_failed {}",
            self.last_reload_failed.load(Ordering::Relaxed)
        );
    }
}

type Routes = BTreeMap<(String, String, String), Arc<RouteMetrics>>;

/// Labels of one route and cohort.
fn labels(ep: &str, router: &str, service: &str, cohort: Cohort) -> String {
    format!(
        "entrypoint=\"{}\",router=\"{}\",service=\"{}\",cohort=\"{}\"",
        esc(ep),
        esc(router),
        esc(service),
        cohort.as_str()
    )
}

fn render_requests(out: &mut String, routes: &Routes) {
    out.push_str("# HELP betaroute_requests_total Requests by entry point, router, service, cohort and status class.\n# TYPE betaroute_requests_total counter\n");
    for ((ep, router, service), m) in routes {
        for cohort in [Cohort::Beta, Cohort::Main, Cohort::Holdback] {
            let c = &m.cohorts[cohort as usize];
            for (i, code) in c.codes.iter().enumerate() {
                let n = code.load(Ordering::Relaxed);
                if n > 0 {
                    let class = if i == 0 {
                        "other".to_owned()
                    } else {
                        format!("{i}xx")
                    };
                    let l = labels(ep, router, service, cohort);
                    let _ = writeln!(out, "betaroute_requests_total{{{l},code=\"{class}\"}} {n}");
                }
            }
        }
    }
}

fn render_durations(out: &mut String, routes: &Routes) {
    out.push_str("# HELP betaroute_request_duration_seconds Time to the response headers, by router, service and cohort.\n# TYPE betaroute_request_duration_seconds histogram\n");
    for ((ep, router, service), m) in routes {
        for cohort in [Cohort::Beta, Cohort::Main, Cohort::Holdback] {
            let c = &m.cohorts[cohort as usize];
            let count = c.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let l = labels(ep, router, service, cohort);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += c.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "betaroute_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {cumulative}"
                );
            }
            let sum = c.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "betaroute_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}\nbetaroute_request_duration_seconds_sum{{{l}}} {sum}\nbetaroute_request_duration_seconds_count{{{l}}} {count}"
            );
        }
    }
}

fn render_servers(out: &mut String, servers: &[(String, String, bool)]) {
    out.push_str("# HELP betaroute_server_up Whether a backend server is available (1) or not (0).\n# TYPE betaroute_server_up gauge\n");
    for (service, url, up) in servers {
        let _ = writeln!(
            out,
            "betaroute_server_up{{service=\"{}\",url=\"{}\"}} {}",
            esc(service),
            esc(url),
            u8::from(*up)
        );
    }
}

/// Traefik's `tls_certs_not_after`: each configured certificate's expiry, to alert on before
/// it comes (the generated default certificate is not listed, as in Traefik).
pub fn render_certificates(out: &mut String, tls: &crate::config::dynamic::TlsConfig) {
    let certs: Vec<_> = tls
        .certificates
        .iter()
        .chain(tls.default_certificate.as_ref())
        .collect();
    if certs.is_empty() {
        return;
    }
    out.push_str("# HELP betaroute_tls_certs_not_after When a configured certificate expires (Unix seconds).\n# TYPE betaroute_tls_certs_not_after gauge\n");
    for c in certs {
        let _ = writeln!(
            out,
            "betaroute_tls_certs_not_after{{cn=\"{}\",sans=\"{}\",serial=\"{}\"}} {}",
            esc(&c.common_name),
            esc(&c.names.join(",")),
            esc(&c.serial),
            c.not_after
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
