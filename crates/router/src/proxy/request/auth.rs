//! The `forwardAuth` call: the auth request a middleware built, sent with one shared client
//! (`http://` and `https://`, the system's roots; redirects are not followed, as in Traefik;
//! 30 s at most), and the answer read (bounded by `maxResponseBodySize`).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type AuthClient = Client<crate::proxy::outbound::HttpsConnector, Empty<Bytes>>;

fn client() -> Option<&'static AuthClient> {
    static CLIENT: OnceLock<Option<AuthClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = crate::proxy::outbound::https_connector(Duration::from_secs(5)).ok()?;
            Some(
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(https),
            )
        })
        .as_ref()
}

/// What the auth server answered; `Err` is the status the client gets instead (500: no answer;
/// 401: an answer larger than allowed, as Traefik does).
pub async fn call(
    req: http::Request<()>,
    max_body: Option<u64>,
    tls: Option<&crate::proxy::outbound::TlsClient>,
) -> Result<(StatusCode, HeaderMap, Bytes), StatusCode> {
    let client = match tls {
        Some(t) => t.get(),
        None => client().ok_or(StatusCode::INTERNAL_SERVER_ERROR)?,
    };
    let (parts, ()) = req.into_parts();
    let req = http::Request::from_parts(parts, Empty::new());
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let (parts, body) = resp.into_parts();
    let limit = max_body.map_or(usize::MAX, |m| m as usize);
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        })?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}
