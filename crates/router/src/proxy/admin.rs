//! The admin entry point: Prometheus metrics, `/ping`, and Traefik's API ([`api`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::api;
use super::shared::Shared;

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
    let path = req.uri().path();
    Ok(match path {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.registry.render(&state.servers()),
        ),
        "/ping" => reply(StatusCode::OK, "text/plain", "OK".into()),
        _ if path.starts_with("/api/") => {
            let providers = shared.registry.providers();
            let query = req.uri().query().unwrap_or_default();
            match api::route(&state, &shared.api, &providers, path, query) {
                None => reply(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "404 page not found\n".into(),
                ),
                // Traefik's API routes answer GET only.
                Some(_) if req.method() != Method::GET => {
                    reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new())
                }
                Some(a) => api_reply(a),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    })
}

fn api_reply(a: api::Answer) -> Response<Full<Bytes>> {
    let content_type = if a.error {
        "text/plain; charset=utf-8"
    } else {
        "application/json"
    };
    let mut r = reply(a.status, content_type, a.body);
    if a.error {
        r.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        );
    }
    if let Some(n) = a.next_page {
        r.headers_mut()
            .insert("x-next-page", header::HeaderValue::from(n as u64));
    }
    r
}
