//! betaroute's own pages under the reserved prefix (`/_betaroute/` by default): the decision for
//! the caller's token as JSON (`api/decision`, with the rollout policy it was made under), else
//! static files from the `ASSETS` binding.

use betaroute_core::Verdict;
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

use crate::config::EdgeConfig;
use crate::rollout::{self, Active};
use crate::url::split_url;

/// The page at `rest`, the path after the prefix of `url`: a response, or a promise of one
/// (the `ASSETS` binding's). Called through JavaScript directly: `worker`'s `Fetcher` wrapper
/// carries request-init conversions that cost the bundle several KB.
pub fn serve(
    url: &str,
    env: &Env,
    cfg: &EdgeConfig,
    policy: Option<&Active>,
    rest: &str,
    verdict: &Verdict,
) -> Result<JsValue, JsValue> {
    if rest == "api/decision" {
        return decision(cfg, policy, verdict);
    }
    let assets = Reflect::get(env, &"ASSETS".into())?;
    let fetch = Reflect::get(&assets, &"fetch".into())?;
    let Some(fetch) = fetch.dyn_ref::<js_sys::Function>() else {
        return respond(404, "text/plain", "Not Found\n");
    };
    // Assets live at the root of www/; the prefix is stripped so it stays configurable.
    let (scheme, authority, _) = split_url(url);
    let asset_url = format!("{scheme}://{authority}/{rest}");
    fetch.call1(&assets, &asset_url.into())
}

/// A response of ours, never cached.
pub fn respond(status: u16, content_type: &str, body: &str) -> Result<JsValue, JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "no-store")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(body), &init).map(JsValue::from)
}

/// The verdict, with the configuration that produced it; never cached.
fn decision(
    cfg: &EdgeConfig,
    policy: Option<&Active>,
    verdict: &Verdict,
) -> Result<JsValue, JsValue> {
    let mut body = serde_json::to_value(verdict).unwrap_or_default();
    body["beta_header"] = json!(cfg.beta.header);
    body["beta_claim"] = json!(cfg.beta.claim);
    // The rollout state the decision was made under (switches and sizes; no subjects).
    body["policy"] = match policy {
        Some(p) => {
            let mut v = rollout::summary(&p.policy);
            v["source"] = json!(p.source);
            v
        }
        None => serde_json::Value::Null,
    };
    body["config_problems"] = json!(cfg.problems);
    // What the tester console needs: where its compare panel sends requests, the header that
    // names the pool that answered, and the cookie a token may come in (its name only).
    body["console"] = json!({
        "compare_path": cfg.console_path,
        "served_by_header": cfg.served_by_header,
        "token_cookie": cfg.token_cookie,
    });
    respond(200, "application/json", &body.to_string())
}
