//! betaroute's own pages under the reserved prefix (`/_betaroute/` by default): the decision for
//! the caller's token as JSON (`api/decision`, with the rollout policy it was made under), else
//! static files from the `ASSETS` binding.

use betaroute_core::Verdict;
use serde_json::json;
use worker::{Env, Response};

use crate::config::EdgeConfig;
use crate::rollout::{self, Active};
use crate::url::split_url;

/// The page at `rest`, the path after the prefix of `url`.
pub async fn serve(
    url: &str,
    env: &Env,
    cfg: &EdgeConfig,
    policy: Option<&Active>,
    rest: &str,
    verdict: &Verdict,
) -> worker::Result<Response> {
    if rest == "api/decision" {
        return decision(cfg, policy, verdict);
    }
    let Ok(assets) = env.assets("ASSETS") else {
        return Response::error("Not Found\n", 404);
    };
    // Assets live at the root of www/; the prefix is stripped so it stays configurable.
    let (scheme, authority, _) = split_url(url);
    let asset_url = format!("{scheme}://{authority}/{rest}");
    assets.fetch(asset_url, None).await
}

/// The verdict, with the configuration that produced it; never cached.
fn decision(
    cfg: &EdgeConfig,
    policy: Option<&Active>,
    verdict: &Verdict,
) -> worker::Result<Response> {
    let mut body = serde_json::to_value(verdict)?;
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
    let mut resp = Response::from_json(&body)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}
