//! Active health checks: one task per server of every load balancer that has a `healthCheck`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::json;
use tokio::task::JoinHandle;

use super::balancer::{LoadBalancer, Server, Service};
use super::state::State;
use crate::config::HealthSpec;

/// The checks' clients: HTTP/1.1 for `http://` servers, HTTP/2 with prior knowledge for
/// `h2c://` ones (which may speak nothing else).
#[derive(Clone)]
pub struct CheckClient {
    http1: Client<HttpConnector, Empty<Bytes>>,
    h2c: Client<HttpConnector, Empty<Bytes>>,
}

impl CheckClient {
    pub fn new(connect_timeout: std::time::Duration) -> CheckClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        let exec = hyper_util::rt::TokioExecutor::new();
        CheckClient {
            http1: Client::builder(exec.clone()).build(connector.clone()),
            h2c: Client::builder(exec).http2_only(true).build(connector),
        }
    }

    fn of(&self, server: &Server) -> &Client<HttpConnector, Empty<Bytes>> {
        if server.h2c {
            &self.h2c
        } else {
            &self.http1
        }
    }
}

/// Starts the checks of a state; the caller aborts the handles when the state is replaced.
pub fn spawn_all(state: &State, client: &CheckClient) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for svc in state.services.values() {
        let Service::LoadBalancer(lb) = &**svc else {
            continue;
        };
        if lb.health.is_none() {
            continue;
        }
        for server in &lb.servers {
            handles.push(tokio::spawn(check_loop(
                lb.clone(),
                server.clone(),
                client.clone(),
            )));
        }
    }
    handles
}

async fn check_loop(lb: Arc<LoadBalancer>, server: Arc<Server>, client: CheckClient) {
    let Some(spec) = lb.health.clone() else {
        return;
    };
    let url = check_url(&server.url, &spec);
    // An https:// server is checked over TLS as its transport connects to it.
    let https = server.endpoint.tls.as_ref().map(|t| {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(spec.timeout));
        // hyper-rustls sets ALPN itself (and refuses a configuration that has it).
        let mut tls = (*t.config_h1).clone();
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(t.name.clone()))
            .enable_http1()
            .wrap_connector(http);
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
    });
    loop {
        let outcome = match &https {
            Some(c) => check_once(&spec, &server, &url, c).await,
            None => check_once(&spec, &server, &url, client.of(&server)).await,
        };
        let healthy = outcome.is_ok();
        let was = server.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            eprintln!(
                "{}",
                json!({"betaroute": "health", "service": lb.name, "server": server.url.to_string(), "healthy": healthy, "reason": outcome.err().map(|e| e.to_string())})
            );
        }
        // Traefik's unhealthyInterval: a server that is down is checked at its own pace.
        let every = if healthy {
            spec.interval
        } else {
            spec.unhealthy_interval
        };
        tokio::time::sleep(every).await;
    }
}

/// The URL checked: the server's, with the check's port when it has one, and its path.
fn check_url(server: &http::Uri, spec: &HealthSpec) -> String {
    let host = server.host().unwrap_or("localhost");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let https = server.scheme_str() == Some("https");
    let port = spec
        .port
        .or(server.port_u16())
        .unwrap_or(if https { 443 } else { 80 });
    let base = server.path().trim_end_matches('/');
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}:{port}{base}{}", spec.path)
}

/// Why a server failed its health check (logged when its state changes).
#[derive(Debug)]
enum Unhealthy {
    /// The configured method, header or URL does not make a request.
    BadRequest(http::Error),
    Status {
        got: http::StatusCode,
        want: Option<u16>,
    },
    Failed(hyper_util::client::legacy::Error),
    Timeout(std::time::Duration),
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::BadRequest(e) => write!(f, "invalid check request: {e}"),
            Unhealthy::Status { got, want: Some(w) } => write!(f, "status {got}, expected {w}"),
            Unhealthy::Status { got, want: None } => write!(f, "status {got}"),
            Unhealthy::Failed(e) => write!(f, "request failed: {e}"),
            Unhealthy::Timeout(t) => write!(f, "no answer within {t:?}"),
        }
    }
}

async fn check_once<C>(
    spec: &HealthSpec,
    server: &Server,
    url: &str,
    client: &Client<C, Empty<Bytes>>,
) -> Result<(), Unhealthy>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut req = Request::builder().method(spec.method.as_str()).uri(url);
    let host = spec
        .hostname
        .clone()
        .unwrap_or_else(|| server.authority.clone());
    if let Ok(h) = HeaderValue::from_str(&host) {
        req = req.header(header::HOST, h);
    }
    for (k, v) in &spec.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Empty::new()).map_err(Unhealthy::BadRequest)?;
    match tokio::time::timeout(spec.timeout, client.request(req)).await {
        Ok(Ok(resp)) => {
            let s = resp.status();
            match spec.status {
                Some(want) if s.as_u16() == want => Ok(()),
                None if s.is_success() || s.is_redirection() => Ok(()),
                want => Err(Unhealthy::Status { got: s, want }),
            }
        }
        Ok(Err(e)) => Err(Unhealthy::Failed(e)),
        Err(_) => Err(Unhealthy::Timeout(spec.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_urls_take_the_port_override_and_the_server_path() {
        let mut spec = HealthSpec {
            path: "/health".into(),
            interval: std::time::Duration::from_secs(1),
            unhealthy_interval: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_secs(1),
            hostname: None,
            port: None,
            status: None,
            headers: vec![],
            method: "GET".into(),
        };
        let u: http::Uri = "http://10.0.0.1:8080/api/".parse().unwrap();
        assert_eq!(check_url(&u, &spec), "http://10.0.0.1:8080/api/health");
        spec.port = Some(9000);
        assert_eq!(check_url(&u, &spec), "http://10.0.0.1:9000/api/health");
        let v6: http::Uri = "http://[::1]/".parse().unwrap();
        assert_eq!(check_url(&v6, &spec), "http://[::1]:9000/health");
    }
}
