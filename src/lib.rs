//! betaroute's edge: a Cloudflare Worker in front of the origin.
//!
//! Per request: strip every client-sent routing header, verify the JWT, add the beta header when
//! the verified token carries the beta claim, and forward the request (body streamed) to the
//! origin, returning its response unchanged. Verification never fails a request: a bad token, a
//! missing key or a broken configuration only means the request goes on as main.
//!
//! Paths under the reserved prefix (`/_betaroute/` by default) are betaroute's own: static pages
//! from the `ASSETS` binding and a JSON view of the decision for the caller's token.
#![forbid(unsafe_code)]

pub mod config;
#[cfg(target_arch = "wasm32")]
mod decide;
#[cfg(target_arch = "wasm32")]
pub mod edge;
#[cfg(target_arch = "wasm32")]
mod environment;
pub mod error;
#[cfg(target_arch = "wasm32")]
mod forward;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod jwks;
#[cfg(target_arch = "wasm32")]
mod ofrep;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
mod rollout;
pub mod url;
#[cfg(target_arch = "wasm32")]
mod webcrypto;

/// The fetch handler, exported under the name worker-build wires to the Worker's `fetch`. Not
/// `#[event(fetch)]`: that wraps every request in a Rust future, and most requests need none
/// (see `edge::entry`).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(
    req: web_sys::Request,
    env: worker::Env,
    _ctx: wasm_bindgen::JsValue,
) -> js_sys::Promise {
    edge::entry(req, env)
}
