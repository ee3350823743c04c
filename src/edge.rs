//! The request path, in order: the configuration for the `env` object ([`environment`]), the
//! rollout policy in force ([`rollout`]), the decision ([`decide`]), then either the origin fetch ([`forward`]) or, under the reserved
//! prefix, betaroute's own pages ([`pages`]).
//!
//! [`environment`]: crate::environment
//! [`rollout`]: crate::rollout
//! [`decide`]: crate::decide
//! [`forward`]: crate::forward
//! [`pages`]: crate::pages

use std::rc::Rc;

use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, Env, Response};

use crate::config::EdgeConfig;
use crate::decide::{self, Now};
use crate::rollout::{self, Active, Lookup};
use crate::url::path_of;
use crate::{environment, forward, js, pages};

/// The fetch handler: a promise of the response. Most decisions need no promise (see
/// [`decide::now`]): then the request is forwarded at once and the origin's own fetch promise is
/// handed back, with no Rust future, no executor and no extra trips through the microtask queue.
/// A WebCrypto check costs one continuation; only key imports and remote key sets take the
/// async path.
pub fn entry(req: web_sys::Request, env: Env) -> js_sys::Promise {
    let (cfg, generation) = environment::config(&env);
    let url = req.url();
    let policy = match rollout::current(&env, &cfg, generation) {
        Lookup::Ready(p) => Some(p),
        Lookup::Stale => None,
    };
    if let (false, Some(policy)) = (path_of(&url).starts_with(cfg.prefix.as_str()), &policy) {
        match decide::now(&req.headers(), &url, &cfg, policy.as_ref(), generation) {
            Now::Decided(verdict) => {
                let reply = forward::respond(&req, &url, &cfg, policy.as_deref(), &verdict);
                return js_sys::Promise::resolve(&reply).unchecked_into();
            }
            Now::Verifying(check, verifying) => {
                let policy = policy.clone();
                let then = wasm_bindgen::closure::Closure::once_into_js(move |result: JsValue| {
                    let verdict = verifying.settled(&cfg, &result);
                    forward::respond(&req, &url, &cfg, policy.as_deref(), &verdict)
                });
                return js::then_both(&check, &then);
            }
            Now::Later => {}
        }
    }
    wasm_bindgen_futures::future_to_promise(async move {
        match handle(req, url, env, cfg, policy, generation).await {
            // Resolving with a promise adopts it: the origin's response, without awaiting here.
            Ok(reply) => Ok(reply),
            Err(e) => Ok(internal_error(&e)),
        }
    })
}

/// The async path: a policy to read from KV, key imports, several candidate keys, remote key
/// sets, and betaroute's own pages.
async fn handle(
    req: web_sys::Request,
    url: String,
    env: Env,
    cfg: Rc<EdgeConfig>,
    policy: Option<Option<Rc<Active>>>,
    generation: u64,
) -> worker::Result<JsValue> {
    let policy = match policy {
        Some(p) => p,
        None => rollout::refresh(&env, &cfg, generation).await,
    };
    let verdict = decide::later(&req.headers(), &url, &cfg, policy.as_ref(), generation).await;
    if let Some(rest) = path_of(&url).strip_prefix(cfg.prefix.as_str()) {
        return pages::serve(&url, &env, &cfg, policy.as_deref(), rest, &verdict)
            .map_err(|e| worker::Error::JsError(crate::js::describe(&e)));
    }
    Ok(forward::respond(
        &req,
        &url,
        &cfg,
        policy.as_deref(),
        &verdict,
    ))
}

/// The 500 for an error on the async path (a page that could not be served), logged.
fn internal_error(e: &worker::Error) -> JsValue {
    console_error!(
        "{}",
        json!({"betaroute": "error", "level": "error", "problem": e.to_string()})
    );
    Response::error("Internal Server Error\n", 500)
        .map(web_sys::Response::from)
        .map(JsValue::from)
        .unwrap_or(JsValue::UNDEFINED)
}
