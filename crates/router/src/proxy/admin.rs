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
    Ok(match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.registry.render(&state.servers()),
        ),
        "/ping" => reply(StatusCode::OK, "text/plain", "OK".into()),
        "/api/routers" => {
            let mut routers: Vec<Value> = state
                .config
                .routers
                .iter()
                .map(|r| {
                    let explicit = r.priority.filter(|&p| p != 0);
                    let available = state
                        .services
                        .get(&r.service)
                        .is_some_and(|s| s.available());
                    json!({
                        "name": r.name,
                        "rule": r.rule.text(),
                        "priority": explicit.unwrap_or_else(|| r.rule.default_priority()),
                        "priorityExplicit": explicit.is_some(),
                        "service": r.service,
                        "entryPoints": r.entry_points,
                        "status": "enabled",
                        "serviceAvailable": available,
                    })
                })
                .collect();
            routers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            reply(
                StatusCode::OK,
                "application/json",
                Value::Array(routers).to_string(),
            )
        }
        "/api/services" => {
            let mut names: Vec<&String> = state.services.keys().collect();
            names.sort();
            let services: Vec<Value> = names
                .into_iter()
                .map(|name| {
                    let svc = &state.services[name];
                    match &**svc {
                        Service::LoadBalancer(lb) => json!({
                            "name": name,
                            "type": "loadBalancer",
                            "available": lb.available(),
                            "passHostHeader": lb.pass_host_header,
                            "healthCheck": lb.health.as_ref().map(|h| json!({"path": h.path, "interval": format!("{:?}", h.interval), "timeout": format!("{:?}", h.timeout)})),
                            "servers": lb.servers.iter().map(|s| json!({"url": s.url.to_string(), "weight": s.weight, "status": if s.available() { "UP" } else { "DOWN" }})).collect::<Vec<_>>(),
                        }),
                        Service::Weighted { .. } => {
                            let children = match state.config.services.get(name) {
                                Some(ServiceSpec::Weighted(c)) => c.iter().map(|(n, w)| json!({"name": n, "weight": w})).collect(),
                                _ => Vec::new(),
                            };
                            json!({"name": name, "type": "weighted", "available": svc.available(), "services": children})
                        }
                        Service::Failover { .. } => {
                            let (main, fallback) = match state.config.services.get(name) {
                                Some(ServiceSpec::Failover { service, fallback }) => (Some(service), Some(fallback)),
                                _ => (None, None),
                            };
                            json!({"name": name, "type": "failover", "available": svc.available(), "service": main, "fallback": fallback})
                        }
                    }
                })
                .collect();
            reply(
                StatusCode::OK,
                "application/json",
                Value::Array(services).to_string(),
            )
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    })
}
