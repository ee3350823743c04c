//! Configuration files as written: Traefik's static and dynamic (file provider) shapes.
//! Unknown fields are ignored (serde's default), so files brought over from Traefik load; the
//! Traefik features that change behaviour and are not implemented (middlewares, sticky sessions,
//! mirroring) are kept here so that validation can say they are ignored or refused.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

/// `betaroute serve --config FILE`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticFile {
    #[serde(default)]
    pub entry_points: BTreeMap<String, EntryPointCfg>,
    pub admin: Option<AdminCfg>,
    #[serde(default)]
    pub providers: ProvidersCfg,
    pub access_log: Option<AccessLogCfg>,
    pub servers_transport: Option<ServersTransportCfg>,
    /// A static file may also carry routing directly (handy for small setups and tests).
    pub http: Option<HttpCfg>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryPointCfg {
    pub address: String,
    /// Read timeout for request headers, e.g. `10s`.
    pub header_timeout: Option<DurationCfg>,
    pub forwarded_headers: Option<ForwardedHeadersCfg>,
    pub routing_headers: Option<RoutingHeadersCfg>,
}

/// Which routing headers (e.g. `X-RiksTV-Beta`) the router believes, and how it checks the edge's
/// signature over them (betaroute; Traefik has no equivalent).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingHeadersCfg {
    /// Routing header names (default `["X-RiksTV-Beta"]`).
    pub names: Option<Vec<String>>,
    /// `signed` (default when keys are configured), `any` (default otherwise) or `strip`.
    pub trust: Option<String>,
    pub signature_header: Option<String>,
    /// A JWKS of `oct` keys (kid + k), the same the edge's ROUTING_SIGNING_KEYS holds.
    pub keys_file: Option<String>,
    /// How old a signature may be.
    pub max_age: Option<DurationCfg>,
    /// Clock difference tolerated between edge and router.
    pub clock_skew: Option<DurationCfg>,
}

/// Traefik's `entryPoints.NAME.forwardedHeaders`, plus `useForwardedHost` (betaroute).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedHeadersCfg {
    /// Peers whose X-Forwarded-* headers are kept (IPs or CIDRs); others' are replaced.
    #[serde(default, rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
    /// Trust every peer's X-Forwarded-* headers.
    #[serde(default)]
    pub insecure: bool,
    /// Route on X-Forwarded-Host (instead of Host) when a trusted peer sends it: for an edge that
    /// must address the router by IP, such as a Worker with ORIGIN_URL.
    #[serde(default)]
    pub use_forwarded_host: bool,
}

/// Traefik's `serversTransport.forwardingTimeouts`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportCfg {
    #[serde(default)]
    pub forwarding_timeouts: ForwardingTimeoutsCfg,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardingTimeoutsCfg {
    pub dial_timeout: Option<DurationCfg>,
    pub response_header_timeout: Option<DurationCfg>,
    pub idle_conn_timeout: Option<DurationCfg>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCfg {
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvidersCfg {
    pub file: Option<FileProviderCfg>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileProviderCfg {
    pub filename: Option<String>,
    pub directory: Option<String>,
    #[serde(default)]
    pub watch: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogCfg {
    /// `json` (default) or `common`.
    pub format: Option<String>,
    /// Where to write; default standard output.
    pub file_path: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A dynamic configuration file: `http.routers` and `http.services`.
#[derive(Debug, Default, Deserialize)]
pub struct DynamicFile {
    pub http: Option<HttpCfg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpCfg {
    #[serde(default)]
    pub routers: BTreeMap<String, RouterCfg>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceCfg>,
    pub middlewares: Option<BTreeMap<String, IgnoredAny>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterCfg {
    pub rule: String,
    pub service: String,
    pub priority: Option<i64>,
    pub entry_points: Option<Vec<String>>,
    pub middlewares: Option<Vec<String>>,
    pub rule_syntax: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCfg {
    pub load_balancer: Option<LoadBalancerCfg>,
    pub weighted: Option<WeightedCfg>,
    pub failover: Option<FailoverCfg>,
    pub mirroring: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerCfg {
    #[serde(default)]
    pub servers: Vec<ServerCfg>,
    pub health_check: Option<HealthCheckCfg>,
    pub pass_host_header: Option<bool>,
    pub sticky: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCfg {
    pub url: String,
    pub weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckCfg {
    pub path: Option<String>,
    pub interval: Option<DurationCfg>,
    pub timeout: Option<DurationCfg>,
    pub hostname: Option<String>,
    pub status: Option<u16>,
    pub headers: Option<BTreeMap<String, String>>,
    pub scheme: Option<String>,
    pub port: Option<u16>,
    pub method: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WeightedCfg {
    #[serde(default)]
    pub services: Vec<WeightedRefCfg>,
}

#[derive(Debug, Deserialize)]
pub struct WeightedRefCfg {
    pub name: String,
    pub weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverCfg {
    pub service: String,
    pub fallback: String,
}

/// A duration as Traefik accepts it: a Go duration string (`10s`, `1m30s`, `250ms`) or a number
/// of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationCfg {
    Seconds(u64),
    Text(String),
}

impl DurationCfg {
    pub fn parse(&self) -> Result<std::time::Duration, String> {
        match self {
            DurationCfg::Seconds(s) => Ok(std::time::Duration::from_secs(*s)),
            DurationCfg::Text(t) => parse_go_duration(t),
        }
    }
}

/// Parses Go's `time.ParseDuration` format (`1h2m3.5s`, `300ms`, `10us`); a bare integer is seconds.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 10s, 1m30s, 250ms)");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}
