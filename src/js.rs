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

/// Starts the global `fetch`; the promise's rejection value lets callers tell an abort (their
/// signal) from a network failure. The function is looked up once per isolate.
pub fn fetch(input: &JsValue, init: &web_sys::RequestInit) -> Result<js_sys::Promise, JsValue> {
    thread_local! {
        static FETCH: (JsValue, Result<js_sys::Function, JsValue>) = {
            let global: JsValue = js_sys::global().into();
            let f = Reflect::get(&global, &"fetch".into()).map(JsCast::unchecked_into);
            (global, f)
        };
    }
    FETCH.with(|(global, f)| {
        let f = f.as_ref().map_err(Clone::clone)?;
        Ok(f.call2(global, input, init)?.unchecked_into())
    })
}

/// The same, awaited.
pub async fn fetch_await(req: &web_sys::Request) -> Result<web_sys::Response, JsValue> {
    let init = web_sys::RequestInit::new();
    Ok(JsFuture::from(fetch(req, &init)?).await?.unchecked_into())
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A promise, seen through the one method needed here.
    #[wasm_bindgen(js_name = Promise)]
    type Settling;

    #[wasm_bindgen(method, js_name = then)]
    fn then_both(this: &Settling, on_fulfilled: &JsValue, on_rejected: &JsValue)
        -> js_sys::Promise;
}

/// `promise.then(f, f)`: one function for both outcomes, so a once-closure is always called (and
/// freed) whichever way the promise settles.
pub fn then_both(promise: &js_sys::Promise, f: &JsValue) -> js_sys::Promise {
    promise.unchecked_ref::<Settling>().then_both(f, f)
}
