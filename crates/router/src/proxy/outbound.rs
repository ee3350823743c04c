//! Connections the router makes on its own behalf (the judge's webhooks, `forwardAuth`'s auth
//! server): `http://` or `https://`, verified against the system's roots (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` honoured).

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

pub fn https_connector(connect_timeout: Duration) -> Result<HttpsConnector, String> {
    let tls =
        crate::provider::consul::tls::client_config(None, &|_| None).map_err(|e| e.to_string())?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// The client of a `forwardAuth` with its own `tls` block, made on first use.
#[derive(Debug)]
pub struct TlsClient {
    config: std::sync::Arc<rustls::ClientConfig>,
    client: std::sync::OnceLock<
        hyper_util::client::legacy::Client<HttpsConnector, http_body_util::Empty<bytes::Bytes>>,
    >,
}

impl TlsClient {
    pub fn new(t: &crate::config::dynamic::transport::TransportSpec) -> TlsClient {
        TlsClient {
            config: super::transport::client_config(Some(t)),
            client: std::sync::OnceLock::new(),
        }
    }

    pub fn get(
        &self,
    ) -> &hyper_util::client::legacy::Client<HttpsConnector, http_body_util::Empty<bytes::Bytes>>
    {
        self.client.get_or_init(|| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(Duration::from_secs(5)));
            // hyper-rustls sets ALPN itself (and refuses a configuration that has it).
            let mut tls = (*self.config).clone();
            tls.alpn_protocols.clear();
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(https)
        })
    }
}
