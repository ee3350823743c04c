//! Small bridges to the JavaScript side shared by the edge's modules.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A JavaScript error (or thrown value) as text, for logs and reasons.
pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// The global `fetch`. The error is the rejection value, so callers can tell an abort (their
/// signal) from a network failure.
pub async fn fetch(req: &web_sys::Request) -> Result<web_sys::Response, JsValue> {
    let global = js_sys::global();
    let fetch: js_sys::Function = Reflect::get(&global, &"fetch".into())?.unchecked_into();
    let promise: js_sys::Promise = fetch.call1(&global, req)?.unchecked_into();
    Ok(JsFuture::from(promise).await?.unchecked_into())
}
