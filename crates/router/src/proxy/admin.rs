//! The admin entry point: Prometheus metrics and the live routing table as JSON.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::balancer::Service;
use super::shared::Shared;
use super::state::State;
use crate::config::ServiceSpec;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let state = shared.state.load_full();
    let json = |v: Value| reply(StatusCode::OK, "application/json", v.to_string());
    Ok(match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.registry.render(&state.servers()),
        ),
        "/ping" => reply(StatusCode::OK, "text/plain", "OK".into()),
        "/api/routers" => json(routers(&state)),
        "/api/services" => json(services(&state)),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    })
}

/// The routers as served, sorted by name; a refused router is `disabled` with its reason under
/// `error`, as in Traefik's API.
fn routers(state: &State) -> Value {
    let mut routers: Vec<Value> = state
        .config
        .routers
        .iter()
        .map(|r| {
            let explicit = r.priority.filter(|&p| p != 0);
            let available = r.refused.is_none()
                && state
                    .services
                    .get(&r.service)
                    .is_some_and(|s| s.available());
            let mut v = json!({
                "name": r.name,
                "rule": r.rule.text(),
                "priority": explicit.unwrap_or_else(|| r.rule.default_priority()),
                "priorityExplicit": explicit.is_some(),
                "service": r.service,
                "entryPoints": r.entry_points,
                "status": if r.refused.is_some() { "disabled" } else { "enabled" },
                "serviceAvailable": available,
            });
            if let Some(why) = &r.refused {
                v["error"] = json!([why]);
            }
            v
        })
        .collect();
    routers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::Array(routers)
}

fn services(state: &State) -> Value {
    let mut names: Vec<&String> = state.services.keys().collect();
    names.sort();
    Value::Array(
        names
            .into_iter()
            .map(|name| service(state, name, &state.services[name]))
            .collect(),
    )
}

fn service(state: &State, name: &str, svc: &Service) -> Value {
    match svc {
        Service::LoadBalancer(lb) => json!({
            "name": name,
            "type": "loadBalancer",
            "available": lb.available(),
            "passHostHeader": lb.pass_host_header,
            "healthCheck": lb.health.as_ref().map(|h| json!({"path": h.path, "interval": format!("{:?}", h.interval), "timeout": format!("{:?}", h.timeout)})),
            "servers": lb.servers.iter().map(|s| json!({"url": s.url.to_string(), "weight": s.weight, "status": if s.available() { "UP" } else { "DOWN" }})).collect::<Vec<_>>(),
        }),
        Service::Weighted { .. } => {
            let children: Vec<Value> = match state.config.services.get(name) {
                Some(ServiceSpec::Weighted(c)) => c
                    .iter()
                    .map(|(n, w)| json!({"name": n, "weight": w}))
                    .collect(),
                _ => Vec::new(),
            };
            json!({"name": name, "type": "weighted", "available": svc.available(), "services": children})
        }
        Service::Failover { .. } => {
            let (main, fallback) = match state.config.services.get(name) {
                Some(ServiceSpec::Failover { service, fallback }) => {
                    (Some(service), Some(fallback))
                }
                _ => (None, None),
            };
            json!({"name": name, "type": "failover", "available": svc.available(), "service": main, "fallback": fallback})
        }
    }
}
