//! The route phase: the rule engine's view of a request, and the lookup in the entry point's
//! table.

use std::net::IpAddr;
use std::sync::Arc;

use http::header;
use http::request::Parts;

use super::super::state::{State, Target};
use betaroute_core::rules::RequestView;

/// The rule engine's view of a request.
pub struct View<'a> {
    pub parts: &'a Parts,
    pub client: IpAddr,
    /// Host to route on instead of the request's (X-Forwarded-Host from a trusted edge).
    pub forwarded_host: Option<&'a str>,
}

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }
    fn host(&self) -> &str {
        if let Some(h) = self.forwarded_host {
            return h;
        }
        // An absolute-form target's authority wins over the Host header (as in Go's net/http).
        match self.parts.uri.authority() {
            Some(a) => a.as_str(),
            None => self
                .parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        }
    }
    fn path(&self) -> &str {
        self.parts.uri.path()
    }
    fn query(&self) -> Option<&str> {
        self.parts.uri.query()
    }
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.parts
            .headers
            .get_all(name)
            .iter()
            .any(|v| f(v.as_bytes()))
    }
    fn client_ip(&self) -> Option<IpAddr> {
        Some(self.client)
    }
}

/// The router a request takes on an entry point, if any: among its TLS routers for a request
/// that came over TLS, among the others for a plain one (as Traefik's HTTP and HTTPS handlers).
pub fn find(state: &State, entry_point: &str, tls: bool, view: &View<'_>) -> Option<Arc<Target>> {
    let tables = state.tables.get(entry_point)?;
    let table = if tls { &tables.tls } else { &tables.plain };
    table.find(view).map(|r| r.target.clone())
}

/// X-Forwarded-Host's first value, from a trusted peer when the entry point routes on it.
pub fn forwarded_host(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
}
