//! A small client for Consul's HTTP API (<https://developer.hashicorp.com/consul/api-docs>):
//! GET requests with the datacenter, consistency mode, ACL token and basic credentials of the
//! endpoint, and blocking queries (`index` and `wait`) answered with `X-Consul-Index`. General
//! enough for the catalog, health and KV endpoints alike.
//!
//! Unset endpoint fields fall back to Consul's environment variables, as the Go client that
//! Traefik uses does (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_SSL`, `CONSUL_HTTP_TOKEN`,
//! `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_HTTP_AUTH`). The token is sent in `X-Consul-Token`, never in
//! the URL, and appears in no error or log.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::tls;
use crate::config::static_config::consul::{ConsulEndpoint, Secret};

/// Consul answers a blocking query after `wait` plus up to `wait / 16` of jitter.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// A plain read that takes longer than this is taken as Consul being unavailable.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Catalog answers beyond this are refused (a catalog of 10,000 services is a few MiB).
const MAX_BODY: usize = 64 << 20;

/// Why a read failed. Says which endpoint and what happened; never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsulError {
    /// The endpoint configuration cannot be used (bad address, unreadable token file).
    Config(String),
    /// No connection, or it broke before an answer.
    Connect {
        url: String,
        reason: String,
    },
    Timeout {
        url: String,
        after: Duration,
    },
    /// An answer other than 200 (404 for a missing KV key is not an error for callers that
    /// ask for it: see [`Answer::status`]).
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// An answer that is not what the API documents (no `X-Consul-Index`, not JSON...).
    Garbage {
        url: String,
        reason: String,
    },
}

impl fmt::Display for ConsulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsulError::Config(m) => write!(f, "consul endpoint: {m}"),
            ConsulError::Connect { url, reason } => write!(f, "consul {url}: {reason}"),
            ConsulError::Timeout { url, after } => {
                write!(f, "consul {url}: no answer within {after:?}")
            }
            ConsulError::Status { url, status, body } => {
                write!(f, "consul {url}: HTTP {status}: {body}")
            }
            ConsulError::Garbage { url, reason } => {
                write!(f, "consul {url}: unexpected answer: {reason}")
            }
        }
    }
}

impl std::error::Error for ConsulError {}

/// Read options shared by every request (Traefik's `stale`, `cache`, `requireConsistent`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Consistency {
    pub stale: bool,
    pub cache: bool,
    pub require_consistent: bool,
}

/// One answer: its status, `X-Consul-Index` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub index: u64,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ConsulError> {
        serde_json::from_slice(&self.body).map_err(|e| ConsulError::Garbage {
            url: url.to_owned(),
            reason: format!("body is not the JSON expected: {e}"),
        })
    }
}

#[derive(Clone)]
pub struct ConsulClient {
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    /// `http://host:port`, no trailing slash.
    base: String,
    datacenter: Option<String>,
    token: Option<Secret>,
    basic: Option<HeaderValue>,
    wait: Duration,
    consistency: Consistency,
}

impl fmt::Debug for ConsulClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulClient")
            .field("base", &self.base)
            .field("datacenter", &self.datacenter)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An environment lookup, so tests can give their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl ConsulClient {
    pub fn new(
        ep: &ConsulEndpoint,
        consistency: Consistency,
        env: Env,
    ) -> Result<ConsulClient, ConsulError> {
        let base = base_url(ep, env)?;
        let tls = tls::client_config(ep.tls.as_ref(), env)?;
        let token = match ep
            .token
            .clone()
            .or_else(|| env("CONSUL_HTTP_TOKEN").map(Secret))
        {
            Some(t) => Some(t),
            None => match env("CONSUL_HTTP_TOKEN_FILE") {
                None => None,
                Some(path) => {
                    let t = std::fs::read_to_string(&path).map_err(|e| {
                        ConsulError::Config(format!(
                            "cannot read CONSUL_HTTP_TOKEN_FILE {path}: {e}"
                        ))
                    })?;
                    Some(Secret(t.trim().to_owned())).filter(|t| !t.0.is_empty())
                }
            },
        };
        let basic = match ep.http_auth.clone().or_else(|| {
            env("CONSUL_HTTP_AUTH").map(|a| match a.split_once(':') {
                Some((u, p)) => (u.to_owned(), Secret(p.to_owned())),
                None => (a, Secret(String::new())),
            })
        }) {
            None => None,
            Some((user, password)) => {
                use base64ct::Encoding;
                let raw = format!("{user}:{}", password.0);
                let mut v = HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64ct::Base64::encode_string(raw.as_bytes())
                ))
                .map_err(|_| ConsulError::Config("httpAuth: invalid characters".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(ConsulClient {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            base,
            datacenter: ep.datacenter.clone(),
            token,
            basic,
            wait: ep.wait_time.unwrap_or(DEFAULT_WAIT),
            consistency,
        })
    }

    /// Where requests go, for logs.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` with `query` and the endpoint's own parameters.
    fn url(&self, path: &str, query: &[(&str, &str)], index: Option<u64>) -> String {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", escape(v)))
            .collect();
        if let Some(dc) = &self.datacenter {
            q.push(format!("dc={}", escape(dc)));
        }
        let c = self.consistency;
        if c.stale {
            q.push("stale".into());
        }
        if c.require_consistent {
            q.push("consistent".into());
        }
        if c.cache {
            q.push("cached".into());
        }
        if let Some(i) = index {
            q.push(format!("index={i}"));
            q.push(format!("wait={}ms", self.wait.as_millis()));
        }
        let mut url = format!("{}{path}", self.base);
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q.join("&"));
        }
        url
    }

    /// A read. With `index`, a blocking query: Consul holds it until the result's index
    /// passes `index` or its wait time ends. `ok_statuses` beyond 200 are answers, not errors
    /// (404 for a missing KV key).
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        index: Option<u64>,
        ok_statuses: &[u16],
    ) -> Result<Answer, ConsulError> {
        let url = self.url(path, query, index);
        // Logs and errors name the path, not the host's credentials (there are none in it).
        let shown = path.to_owned();
        let uri: Uri = url
            .parse()
            .map_err(|e| ConsulError::Config(format!("bad URL {url}: {e}")))?;
        let mut req = Request::get(uri);
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&t.0)
                .map_err(|_| ConsulError::Config("the token has invalid characters".into()))?;
            v.set_sensitive(true);
            req = req.header("x-consul-token", v);
        }
        if let Some(b) = &self.basic {
            req = req.header(header::AUTHORIZATION, b.clone());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| ConsulError::Config(e.to_string()))?;
        let limit = match index {
            Some(_) => self.wait + self.wait / 16 + Duration::from_secs(10),
            None => READ_TIMEOUT,
        };
        let fetch = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| ConsulError::Connect {
                    url: shown.clone(),
                    reason: error_chain(&e),
                })?;
            let status = resp.status();
            let index = resp
                .headers()
                .get("x-consul-index")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().parse::<u64>());
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| ConsulError::Connect {
                    url: shown.clone(),
                    reason: format!("body not read: {e}"),
                })?
                .to_bytes();
            Ok::<_, ConsulError>((status, index, body))
        };
        let (status, index, body) =
            tokio::time::timeout(limit, fetch)
                .await
                .map_err(|_| ConsulError::Timeout {
                    url: shown.clone(),
                    after: limit,
                })??;
        if status != StatusCode::OK && !ok_statuses.contains(&status.as_u16()) {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(ConsulError::Status {
                url: shown,
                status: status.as_u16(),
                body: text,
            });
        }
        let index = match index {
            Some(Ok(i)) => i,
            Some(Err(_)) => {
                return Err(ConsulError::Garbage {
                    url: shown,
                    reason: "X-Consul-Index is not a number".into(),
                })
            }
            None => {
                return Err(ConsulError::Garbage {
                    url: shown,
                    reason: "no X-Consul-Index header".into(),
                })
            }
        };
        Ok(Answer {
            status,
            index,
            body,
        })
    }
}

/// `http://host:port` from the endpoint, else the environment, else Consul's default.
fn base_url(ep: &ConsulEndpoint, env: Env) -> Result<String, ConsulError> {
    let address = ep
        .address
        .clone()
        .or_else(|| env("CONSUL_HTTP_ADDR"))
        .unwrap_or_else(|| "127.0.0.1:8500".into());
    let (scheme_in_address, host) = match address.split_once("://") {
        Some((s, rest)) => (Some(s.to_ascii_lowercase()), rest.trim_end_matches('/')),
        None => (None, address.trim_end_matches('/')),
    };
    let ssl = env("CONSUL_HTTP_SSL").is_some_and(|v| v == "true" || v == "1");
    let scheme = match (scheme_in_address, &ep.scheme) {
        (Some(s), _) => s,
        (None, Some(s)) => s.clone(),
        (None, None) if ssl => "https".into(),
        (None, None) => "http".into(),
    };
    if scheme == "unix" {
        return Err(ConsulError::Config(format!(
            "address {address:?}: unix sockets are not supported; use host:port"
        )));
    }
    if scheme != "http" && scheme != "https" {
        return Err(ConsulError::Config(format!(
            "address {address:?}: scheme {scheme:?} is not http or https"
        )));
    }
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(ConsulError::Config(format!(
            "address {address:?} is not host:port"
        )));
    }
    let url = format!("{scheme}://{host}");
    url.parse::<Uri>()
        .map_err(|e| ConsulError::Config(format!("address {address:?}: {e}")))?;
    Ok(url)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path segment (a service name).
pub fn segment(v: &str) -> String {
    escape(v)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(address: Option<&str>) -> ConsulEndpoint {
        ConsulEndpoint {
            address: address.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn address_scheme_and_environment() {
        let none = |_: &str| None;
        assert_eq!(base_url(&ep(None), &none).unwrap(), "http://127.0.0.1:8500");
        assert_eq!(
            base_url(&ep(Some("http://consul:8500/")), &none).unwrap(),
            "http://consul:8500"
        );
        assert_eq!(
            base_url(&ep(Some("consul:8500")), &none).unwrap(),
            "http://consul:8500"
        );
        let env = |k: &str| (k == "CONSUL_HTTP_ADDR").then(|| "10.0.0.1:8500".to_owned());
        assert_eq!(base_url(&ep(None), &env).unwrap(), "http://10.0.0.1:8500");
        assert_eq!(
            base_url(&ep(Some("c:1")), &env).unwrap(),
            "http://c:1",
            "the configured address wins"
        );
        let ssl = |k: &str| (k == "CONSUL_HTTP_SSL").then(|| "true".to_owned());
        assert_eq!(base_url(&ep(None), &ssl).unwrap(), "https://127.0.0.1:8500");
        assert!(base_url(&ep(Some("unix:///run/consul.sock")), &none).is_err());
        assert!(base_url(&ep(Some("ftp://x:1")), &none).is_err());
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(escape("traefik.enable=true"), "traefik.enable%3Dtrue");
        assert_eq!(segment("my service/v2"), "my%20service%2Fv2");
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let e = ConsulEndpoint {
            token: Some(Secret("s3cr3t".into())),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        let c = ConsulClient::new(&e, Consistency::default(), &|_| None).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
