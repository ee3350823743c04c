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

pub type CheckClient = Client<HttpConnector, Empty<Bytes>>;

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
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let url = format!(
            "{}{}",
            server.url.to_string().trim_end_matches('/'),
            spec.path
        );
        let mut req = Request::builder().method(spec.method.as_str()).uri(&url);
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
        let Ok(req) = req.body(Empty::new()) else {
            continue;
        };
        let outcome = match tokio::time::timeout(spec.timeout, client.request(req)).await {
            Ok(Ok(resp)) => {
                let s = resp.status();
                match spec.status {
                    Some(want) if s.as_u16() == want => Ok(()),
                    Some(want) => Err(format!("status {s}, expected {want}")),
                    None if s.is_success() || s.is_redirection() => Ok(()),
                    None => Err(format!("status {s}")),
                }
            }
            Ok(Err(e)) => Err(format!("request failed: {e}")),
            Err(_) => Err(format!("no answer within {:?}", spec.timeout)),
        };
        let healthy = outcome.is_ok();
        let was = server.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            eprintln!(
                "{}",
                json!({"betaroute": "health", "service": lb.name, "server": server.url.to_string(), "healthy": healthy, "reason": outcome.err()})
            );
        }
    }
}
