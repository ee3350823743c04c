//! An upgraded connection (RFC 9110 7.8; WebSocket, RFC 6455): the backend's `101` goes to the
//! client with its `Upgrade` and `Connection: Upgrade`, and once both sides have switched, the
//! two connections are spliced both ways until either closes. The request was routed like any
//! other (cohort, rules, middlewares), so a beta user's WebSocket lands on beta and stays
//! there. No idle cut-off: a quiet WebSocket is a healthy one (Go's hijacked connections in
//! Traefik have none either); the router's header timeout never applies past the 101.

use http::header;
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::super::metrics::{Cohort, Registry};
use super::super::pool::PooledBody;
use super::forwarded;
use super::Body;

/// The client's answer to a backend's `101`, and the splice behind it. A `101` the client did
/// not ask for (no upgrade on its side) is the backend's error: 502.
pub fn open(
    mut resp: Response<PooledBody>,
    client_side: Option<OnUpgrade>,
    router: &str,
    cohort: Cohort,
    registry: &Registry,
) -> Response<Body> {
    let protocol = resp.headers().get(header::UPGRADE).cloned();
    let backend_side = resp.extensions_mut().remove::<OnUpgrade>();
    let (Some(client_side), Some(backend_side), Some(protocol)) =
        (client_side, backend_side, protocol)
    else {
        let mut r = Response::new(Body::own("502 Bad Gateway\n"));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        return r;
    };
    let open = registry.upgraded(router, cohort);
    tokio::spawn(async move {
        let _open = open;
        let (client, backend) = tokio::join!(client_side, backend_side);
        let (Ok(client), Ok(backend)) = (client, backend) else {
            return;
        };
        let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
        // Either side closing (or failing) ends both: copy_bidirectional shuts the other's
        // write half when one reaches its end, and returns on the first error.
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    forwarded::strip_hop_by_hop(resp.headers_mut(), false);
    forwarded::restore_upgrade(resp.headers_mut(), protocol);
    // A 101 has no body; the backend's (empty) one goes with its pooled wrapper.
    resp.map(|_| Body::own(""))
}
