//! The send phase: a server of the target's service, and the request sent to it (bodies
//! streamed), once more when that is safe.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response};
use http_body_util::{Either, Empty};
use hyper::body::{Body as _, Incoming};

use super::super::balancer::Server;
use super::super::error::ProxyError;
use super::super::pool::{Pool, PooledBody, SendError};
use super::super::state::Target;

/// Sends to a server of the target's service. A request without a body is sent once more when
/// its connection was refused (to another server) or when a reused keep-alive connection turned
/// out closed by the backend (on a new connection). Returns the server tried last, for the log.
pub async fn send(
    timeout: std::time::Duration,
    pool: &Arc<Pool>,
    target: &Target,
    mut parts: Parts,
    body: Incoming,
    original_host: Option<HeaderValue>,
) -> (
    Result<Response<PooledBody>, ProxyError>,
    Option<Arc<Server>>,
) {
    let Some(lb) = target.service.as_ref().and_then(|s| s.resolve()) else {
        return (Err(ProxyError::NoServer), None);
    };
    let Some(mut server) = lb.pick(None) else {
        return (Err(ProxyError::NoServer), None);
    };
    let replayable = body.is_end_stream();
    // Headers are copied only when a second attempt can go to another server: copying them for
    // every request would cost more than the rare stale keep-alive connection it would save.
    let mut spare_headers = (replayable && lb.servers.len() > 1).then(|| parts.headers.clone());
    let mut headers = Some(std::mem::take(&mut parts.headers));
    let path_and_query = parts.uri.path_and_query().cloned();
    let mut body = Some(body);
    for attempt in 0..2 {
        let mut req = Request::new(if replayable {
            Either::Right(Empty::<Bytes>::new())
        } else {
            Either::Left(body.take().expect("a body is sent once"))
        });
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = server.target_for(path_and_query.as_ref());
        *req.headers_mut() = headers
            .take()
            .or_else(|| spare_headers.take())
            .unwrap_or_default();
        let host = match (&original_host, lb.pass_host_header) {
            (Some(h), true) => h.clone(),
            _ => server.host_header.clone(),
        };
        req.headers_mut().insert(header::HOST, host);
        let retry = attempt == 0 && spare_headers.is_some();
        match tokio::time::timeout(timeout, pool.send(&server.address, req)).await {
            Ok(Ok(resp)) => return (Ok(resp), Some(server)),
            Ok(Err(SendError::Connect)) => {
                server.mark_failed();
                if retry {
                    if let Some(next) = lb.pick(Some(&server)) {
                        server = next;
                        continue;
                    }
                }
                return (Err(ProxyError::Connect), Some(server));
            }
            Ok(Err(SendError::Stale)) if retry => continue,
            Ok(Err(_)) => return (Err(ProxyError::Upstream), Some(server)),
            Err(_) => return (Err(ProxyError::Timeout), Some(server)),
        }
    }
    (Err(ProxyError::Connect), Some(server))
}
