//! The admin entry point: Prometheus metrics, `/ping`, Traefik's API ([`api`]), and betaroute's
//! cohort controls (`/api/cohorts`, [`cohorts`]).
//!
//! Reads are open, as Traefik's API is; every endpoint that changes behaviour requires the
//! bearer token of `admin.tokenFile`, and is refused (403) when none is configured.

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
use super::cohorts;
use super::shared::Shared;

/// The dashboard: one page and its script, built in (no external assets).
const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");

/// A built-in page, with a policy that allows nothing but this origin's script and API.
fn page(content_type: &'static str, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = reply(StatusCode::OK, content_type, body.to_owned());
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'",
        ),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

/// The largest body a write endpoint reads.
const MAX_BODY: usize = 4096;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), peer, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

pub const METRICS_TYPE: &str = "text/plain; version=0.0.4";

/// The Prometheus text of `/metrics` (also `prometheus@internal` behind a router).
pub fn metrics(shared: &Shared, state: &super::state::State) -> String {
    let beta_config = state.config.beta_switch.as_ref();
    let mut m = shared
        .registry
        .render(&state.servers(), shared.beta.enabled(beta_config));
    super::judge::render(&mut m, &state.comparisons);
    super::metrics::render_certificates(&mut m, &state.config.tls);
    m
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
    peer: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let state = shared.state.load_full();
    let path = req.uri().path().to_owned();
    Ok(match path.as_str() {
        "/metrics" => reply(StatusCode::OK, METRICS_TYPE, metrics(&shared, &state)),
        "/dashboard" | "/dashboard/" => page("text/html; charset=utf-8", DASHBOARD_HTML),
        "/dashboard.js" => page("text/javascript; charset=utf-8", DASHBOARD_JS),
        // Browsers ask for it with every page: no icon, and no 404 in their console.
        "/favicon.ico" => reply(StatusCode::NO_CONTENT, "image/x-icon", String::new()),
        _ if path == "/api/comparisons" || path.starts_with("/api/comparisons/") => {
            comparisons(&state, &path, req.method())
        }
        "/api/cohorts" | "/api/cohorts/beta" => cohorts(&shared, peer, req).await,
        "/ping" => reply(StatusCode::OK, "text/plain", "OK".into()),
        _ if path.starts_with("/api/") => {
            let providers = shared.registry.providers();
            let query = req.uri().query().unwrap_or_default();
            match api::route(&state, &shared.api, &providers, &path, query) {
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

/// `GET /api/cohorts` (every cohort control) and `GET`, `PUT` or `DELETE /api/cohorts/beta`.
async fn cohorts(
    shared: &Shared,
    peer: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let state = shared.state.load_full();
    let config = state.config.beta_switch.as_ref();
    let whole = req.uri().path() == "/api/cohorts";
    let view = |shared: &Shared| {
        let beta = shared.beta.view(config);
        let body = if whole {
            serde_json::json!({ "beta": beta })
        } else {
            beta
        };
        reply(StatusCode::OK, "application/json", format!("{body}\n"))
    };
    let method = req.method().clone();
    match method {
        Method::GET => return view(shared),
        Method::PUT | Method::DELETE if !whole => {}
        _ => return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new()),
    }
    if let Some(refused) = authorize(shared, &req) {
        return refused;
    }
    let enabled = if method == Method::PUT {
        let body = match read_body(req).await {
            Ok(b) => b,
            Err(why) => return reply(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", why),
        };
        match cohorts::parse_put(&body) {
            Ok(e) => Some(e),
            Err(why) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    format!("{why}\n"),
                )
            }
        }
    } else {
        None
    };
    shared.beta.set(enabled);
    println!(
        "{}",
        serde_json::json!({"betaroute": "cohorts", "level": "warn", "cohort": "beta",
            "override": enabled, "enabled": shared.beta.enabled(config), "by": "api",
            "peer": peer.ip().to_string()})
    );
    view(shared)
}

/// `GET /api/comparisons` (every comparison) and `GET /api/comparisons/NAME` (one).
fn comparisons(state: &super::state::State, path: &str, method: &Method) -> Response<Full<Bytes>> {
    if method != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new());
    }
    let body = match path.strip_prefix("/api/comparisons/") {
        None => serde_json::Value::Array(state.comparisons.iter().map(|c| c.view()).collect()),
        Some(name) => match state.comparisons.iter().find(|c| c.name() == name) {
            Some(c) => c.view(),
            None => {
                return reply(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    format!("no comparison named {name:?}\n"),
                )
            }
        },
    };
    reply(StatusCode::OK, "application/json", format!("{body}\n"))
}

/// `None` when the request carries the admin token; else the answer that refuses it.
fn authorize<B>(shared: &Shared, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
    let Some(token) = &shared.admin_token else {
        return Some(reply(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "403 Forbidden: write endpoints need admin.tokenFile in the static configuration\n"
                .into(),
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if token.accepts(given) {
        return None;
    }
    let mut r = reply(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        "401 Unauthorized: send Authorization: Bearer <the token in admin.tokenFile>\n".into(),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"betaroute admin\""),
    );
    Some(r)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, String> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(format!(
            "the body could not be read ({e}); at most {MAX_BODY} bytes\n"
        )),
    }
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
