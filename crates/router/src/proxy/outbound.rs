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
