//! What every request of a running router shares: the current routing state (swapped whole on
//! reload), the metrics registry, the access log and the backend timeouts; and, per entry
//! point and per connection, who is asking and how far they are trusted.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::header::{HeaderName, HeaderValue};

use super::access_log::AccessLog;
use super::metrics::Registry;
use super::state::State;
use crate::config::static_config::{AdminToken, Forwarded, RoutingTrust};

pub struct Shared {
    pub state: ArcSwap<State>,
    pub registry: Arc<Registry>,
    pub access_log: Option<AccessLog>,
    pub response_header_timeout: Duration,
    /// Requests being served, so a shutdown can let them finish.
    pub in_flight: AtomicUsize,
    /// Bounds the retries in flight.
    pub retry_budget: super::request::upstream::RetryBudget,
    /// What the API shows beyond the routing state.
    pub api: super::api::ApiInfo,
    /// The beta kill switch's override on this replica (the admin API sets it).
    pub beta: super::cohorts::BetaControl,
    /// The bearer token the admin API's write endpoints require; none: they are refused.
    pub admin_token: Option<AdminToken>,
}

/// Counts a request as in flight for as long as it lives.
pub struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    pub fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An entry point's identity and trust settings, shared by its connections.
pub struct EntryPointCtx {
    pub name: String,
    pub forwarded: Forwarded,
    pub routing: RoutingTrust,
    /// The header whose value decides the cohort (lowercase; the static `cohort.header`).
    pub cohort_header: HeaderName,
    /// The header the edge labels holdback requests with (`cohort.labelHeader`).
    pub label_header: HeaderName,
    /// The response header naming the service that answered (`cohort.servedByHeader`).
    pub served_by: Option<HeaderName>,
    /// An upgraded connection (WebSocket) quiet both ways this long is closed; none: never.
    pub upgrade_idle_timeout: Option<Duration>,
}

/// A connection's peer address, as text and as a header value, and what its TLS handshake
/// settled: computed once per connection, not per request.
pub struct PeerIp {
    pub ip: IpAddr,
    pub text: String,
    pub value: HeaderValue,
    /// `None`: a plain-text connection.
    pub tls: Option<Arc<TlsConn>>,
}

impl PeerIp {
    pub fn new(ip: IpAddr) -> PeerIp {
        let text = ip.to_string();
        let value = HeaderValue::from_str(&text).expect("an IP address is a valid header value");
        PeerIp {
            ip,
            text,
            value,
            tls: None,
        }
    }
}

/// What a TLS connection's handshake settled, for its requests (routing, `passTLSClientCert`,
/// the access log).
#[derive(Debug, Clone, Default)]
pub struct TlsConn {
    /// The SNI the client sent, lower case.
    pub server_name: Option<String>,
    /// `1.2` or `1.3`, as Traefik's access log writes it.
    pub version: &'static str,
    /// The cipher suite, by Go's name (`TLS_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// The TLS options (`tls.options` name, qualified) the handshake used.
    pub options: String,
    /// The client's certificate chain, leaf first (empty: none was asked for or sent).
    pub peer_certificates: Vec<rustls_pki_types::CertificateDer<'static>>,
}
