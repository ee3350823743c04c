//! Servers transports, ready to connect with: the TLS client configuration for `https://`
//! servers (the transport's CAs or the system's roots, `insecureSkipVerify`, its client
//! certificate; ALPN `h2` then `http/1.1`, as Go's transport offers them, unless `disableHTTP2`)
//! and the limits each server's connections keep.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;

use crate::config::dynamic::transport::TransportSpec;

/// How one server is reached: where to dial, over TLS or not, and its transport's limits.
#[derive(Debug)]
pub struct Endpoint {
    /// Keys the idle connections: the address, and for TLS the transport too (two transports
    /// to one address must not share connections: their certificates differ).
    pub key: Arc<str>,
    /// `host:port` to connect to.
    pub address: Arc<str>,
    pub tls: Option<TlsDial>,
    pub dial_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_idle: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TlsDial {
    /// Offers `h2` (unless the transport disables HTTP/2) and `http/1.1`.
    pub config: Arc<ClientConfig>,
    /// Offers `http/1.1` only: for upgrades (WebSocket) and health checks.
    pub config_h1: Arc<ClientConfig>,
    /// Whether `config` offers `h2`.
    pub h2: bool,
    /// What the server's certificate must name (and the SNI sent).
    pub name: ServerName<'static>,
}

impl Endpoint {
    /// `url` is `http://`, `https://` or `h2c://`; `address` its `host:port`.
    pub fn new(url: &http::Uri, address: Arc<str>, t: Option<&TransportSpec>) -> Endpoint {
        let tls = (url.scheme_str() == Some("https")).then(|| {
            let host = url.host().unwrap_or("localhost").trim_matches(['[', ']']);
            let name = t
                .and_then(|t| t.server_name.clone())
                .unwrap_or_else(|| host.to_owned());
            let h1 = client_config(t);
            let h2 = !t.is_some_and(|t| t.disable_http2);
            let config = if h2 {
                let mut c = (*h1).clone();
                c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                Arc::new(c)
            } else {
                h1.clone()
            };
            TlsDial {
                config,
                config_h1: h1,
                h2,
                name: ServerName::try_from(name)
                    .unwrap_or_else(|_| ServerName::try_from("invalid.name").expect("a name")),
            }
        });
        let key = match (&tls, t) {
            (Some(_), Some(t)) => format!("https://{address}#{}", t.name).into(),
            (Some(_), None) => format!("https://{address}").into(),
            (None, _) => address.clone(),
        };
        Endpoint {
            key,
            address,
            tls,
            dial_timeout: t.and_then(|t| t.dial_timeout),
            idle_timeout: t.and_then(|t| t.idle_conn_timeout),
            max_idle: t.and_then(|t| t.max_idle_per_host),
        }
    }
}

/// The system's roots, read once (`SSL_CERT_FILE` and `SSL_CERT_DIR` honoured).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            Arc::new(roots)
        })
        .clone()
}

pub(crate) fn client_config(t: Option<&TransportSpec>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => unreachable!("ring offers the default versions: {e}"),
    };
    let builder = match t {
        Some(t) if t.insecure_skip_verify => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(
                    crate::provider::consul::tls::AcceptAny(provider),
                ))
        }
        Some(t) if !t.root_cas.is_empty() => {
            let mut roots = RootCertStore::empty();
            let (added, bad) = roots.add_parsable_certificates(t.root_cas.iter().cloned());
            if bad > 0 || added == 0 {
                eprintln!(
                    "{}",
                    json!({"betaroute": "transport", "level": "warning", "transport": t.name, "message": format!("rootCAs: {bad} certificate(s) could not be used as roots")})
                );
            }
            builder.with_root_certificates(roots)
        }
        _ => builder.with_root_certificates(system_roots()),
    };
    let mut config = match t.and_then(|t| t.client_certificate.clone()) {
        Some(c) => builder.with_client_cert_resolver(Arc::new(ClientCert(c.key.clone()))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The transport's client certificate, offered whenever a server asks.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
