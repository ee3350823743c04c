//! The request path: configuration lookup, decision, forwarding, logging.

use std::cell::RefCell;
use std::rc::Rc;

use betaroute_core::alg::Family;
use betaroute_core::signature;
use betaroute_core::source::{self, Found};
use betaroute_core::{native, Decision, Reason, Rejection};
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, console_log, Env, Request, Response};

use crate::config::{upstream_url, EdgeConfig, Vars, VAR_NAMES};
use crate::{js, jwks, webcrypto};

/// The configuration in use, with the raw values it was parsed from and a generation number
/// that keys the WebCrypto key cache.
struct Loaded {
    /// The `env` object the values were read from. workerd passes the same object to every
    /// request of an isolate, so while it is the same, nothing needs reading again.
    env: JsValue,
    vars: Vars,
    generation: u64,
    config: Rc<EdgeConfig>,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

/// Reads a variable or secret as a string. A `[vars]` entry written as a TOML table reaches the
/// worker as an object: it is turned back into JSON so `JWT_KEYS` may be written either way.
fn read_var(env: &Env, name: &str) -> Option<String> {
    let v = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if let Some(s) = v.as_string() {
        return Some(s);
    }
    if v.is_object() {
        return js_sys::JSON::stringify(&v).ok().map(String::from);
    }
    None
}

/// The configuration for this request: parsed again only when a value changed.
fn config(env: &Env) -> (Rc<EdgeConfig>, u64) {
    let env_value: &JsValue = env.as_ref();
    let same_env = LOADED.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|l| js_sys::Object::is(&l.env, env_value))
            .map(|l| (l.config.clone(), l.generation))
    });
    if let Some(hit) = same_env {
        return hit;
    }
    let vars = Vars {
        values: VAR_NAMES.iter().map(|n| read_var(env, n)).collect(),
    };
    LOADED.with(|cell| {
        let mut loaded = cell.borrow_mut();
        if let Some(l) = loaded.as_mut().filter(|l| l.vars == vars) {
            // Another env object with the same values: keep the parsed configuration.
            l.env = env_value.clone();
            return (l.config.clone(), l.generation);
        }
        let generation = loaded.as_ref().map_or(1, |l| l.generation + 1);
        let config = Rc::new(EdgeConfig::parse(&vars));
        for problem in &config.problems {
            console_error!(
                "{}",
                json!({"betaroute": "config", "level": "error", "problem": problem})
            );
        }
        webcrypto::forget_keys_before(key_generation(generation, 0));
        *loaded = Some(Loaded {
            env: env_value.clone(),
            vars,
            generation,
            config: config.clone(),
        });
        (config, generation)
    })
}

/// What the log line and the decision endpoint report.
struct Outcome {
    decision: Decision,
    alg: Option<String>,
    kid: Option<String>,
}

impl Outcome {
    fn main(reason: Reason, detail: impl Into<String>) -> Outcome {
        Outcome {
            decision: Decision::main(reason, Some(detail.into())),
            alg: None,
            kid: None,
        }
    }

    fn rejected(r: Rejection) -> Outcome {
        Outcome {
            alg: r.alg().map(str::to_owned),
            kid: r.kid().map(str::to_owned),
            decision: r.into_decision(),
        }
    }
}

async fn decide(req: &Request, cfg: &EdgeConfig, generation: u64) -> Outcome {
    let headers = req.headers();
    let authorization = headers.get("authorization").ok().flatten();
    let cookie = headers.get("cookie").ok().flatten();
    let token = match source::find(
        authorization.as_deref(),
        cookie.as_deref(),
        cfg.token_cookie.as_deref(),
    ) {
        Found::None => return Outcome::main(Reason::NoToken, "no token in the request"),
        Found::Ambiguous(why) => return Outcome::main(Reason::Malformed, why),
        Found::Token(t) => t,
    };
    // Inline keys, or inline plus remote (JWT_JWKS_URL).
    let (verifier, remote) = match &cfg.jwks {
        None => match &cfg.verifier {
            Ok(v) => (v.clone(), 0),
            Err(e) => return Outcome::main(Reason::ConfigError, e.as_str()),
        },
        Some(settings) => match jwks::verifier(cfg, settings, generation, false).await {
            Ok(found) => found,
            Err(e) => return Outcome::main(Reason::ConfigError, e),
        },
    };
    match verifier.begin(token) {
        Err(r) if r.reason == Reason::UnknownKid && cfg.jwks.is_some() => {
            // The keys may have rotated: refresh (rate-limited) and try once more with new keys.
            let settings = cfg.jwks.as_ref().expect("checked above");
            match jwks::verifier(cfg, settings, generation, true).await {
                Ok((fresh, fresh_remote)) if fresh_remote != remote => {
                    let retry = fresh.begin(token);
                    finish_with(cfg, &fresh, key_generation(generation, fresh_remote), retry).await
                }
                _ => Outcome::rejected(r),
            }
        }
        pending => finish_with(cfg, &verifier, key_generation(generation, remote), pending).await,
    }
}

/// Keys the WebCrypto key cache: changes with the configuration and with every JWKS refresh, so a
/// key imported for one key set is never used for another.
pub fn key_generation(config: u64, remote: u64) -> u64 {
    (config << 32) | (remote & 0xffff_ffff)
}

/// Checks the signature of a parsed token against its candidate keys, then its claims.
async fn finish_with(
    cfg: &EdgeConfig,
    verifier: &betaroute_core::Verifier,
    generation: u64,
    pending: Result<betaroute_core::Pending, Rejection>,
) -> Outcome {
    let pending = match pending {
        Ok(p) => p,
        Err(r) => return Outcome::rejected(r),
    };
    let mut verified_by = None;
    for &i in &pending.candidates {
        let key = &verifier.keys().keys[i];
        let jws = &pending.jws;
        let ok = if pending.alg.family() == Family::Hmac {
            // HMAC in Rust costs a few microseconds in wasm: no need for a round trip to JS.
            native::verify(
                pending.alg,
                &key.material,
                &jws.signing_input,
                &jws.signature,
            )
            .unwrap_or(false)
        } else {
            match webcrypto::verify(
                generation,
                i,
                &key.material,
                pending.alg,
                &jws.signing_input,
                &jws.signature,
            )
            .await
            {
                Ok(ok) => ok,
                Err(e) => {
                    let kid = key.kid.as_deref().unwrap_or("-");
                    console_error!(
                        "{}",
                        json!({"betaroute": "key", "level": "error", "kid": kid, "problem": e})
                    );
                    false
                }
            }
        };
        if ok {
            verified_by = Some(i);
            break;
        }
    }
    let kid = pending.jws.kid.clone();
    let alg = Some(pending.alg.name().to_owned());
    let now = js_sys::Date::now() / 1000.0;
    match verifier.finish(pending, verified_by, now) {
        Ok(v) => Outcome {
            decision: cfg.beta.decide(&v.claims),
            alg,
            kid,
        },
        Err(r) => Outcome::rejected(r),
    }
}

/// Either the origin's response, passed back as is (status, status text, headers, streamed body),
/// or one of betaroute's own.
pub enum Reply {
    Origin(web_sys::Response),
    Own(Response),
}

impl worker::IntoResponse for Reply {
    fn into_raw(self) -> Result<web_sys::Response, impl Into<Box<dyn std::error::Error>>> {
        match self {
            Reply::Origin(r) => Ok::<_, worker::Error>(r),
            Reply::Own(r) => Ok(r.into()),
        }
    }
}

pub async fn handle(req: Request, env: Env) -> worker::Result<Reply> {
    let (cfg, generation) = config(&env);
    // The raw URL string: worker's Url-based accessors pull the `url` crate and its Unicode
    // tables into the bundle (tens of KB) for what is a slice of a string.
    let url = req.inner().url();
    let (_, _, path_and_query) = split_url(&url);
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p)
        .to_owned();
    let outcome = decide(&req, &cfg, generation).await;

    if let Some(rest) = path.strip_prefix(cfg.prefix.as_str()) {
        return own_page(req, &env, &cfg, rest, &outcome)
            .await
            .map(Reply::Own);
    }

    let method = req.method().to_string();
    let started = js_sys::Date::now();
    let result = forward(req, &cfg, &outcome.decision).await;
    let status = result.as_ref().map_or(502, |r| r.status());
    if cfg.log_requests {
        console_log!(
            "{}",
            json!({
                "betaroute": "request",
                "cohort": outcome.decision.cohort,
                "reason": outcome.decision.reason,
                "detail": outcome.decision.detail,
                "alg": outcome.alg,
                "kid": outcome.kid,
                "method": method,
                "path": path,
                "status": status,
                "ms": js_sys::Date::now() - started,
            })
        );
    }
    match result {
        Ok(resp) => Ok(Reply::Origin(resp)),
        Err(e) => {
            console_error!(
                "{}",
                json!({"betaroute": "upstream", "level": "error", "problem": e})
            );
            let resp = Response::error("Bad Gateway: the origin could not be reached\n", 502)?;
            Ok(Reply::Own(resp))
        }
    }
}

/// Forwards the request to the origin: same method, path, query, headers (minus routing
/// headers, plus the decision's) and body, streamed. Redirects are returned, not followed.
async fn forward(
    req: Request,
    cfg: &EdgeConfig,
    decision: &Decision,
) -> Result<web_sys::Response, String> {
    let incoming: &web_sys::Request = req.inner();
    let url = upstream_url(cfg.origin.as_deref(), &incoming.url());
    // `new Request(url, incoming)` copies method, headers, body stream, redirect mode ("manual"
    // for incoming requests) and cf: the body is never buffered.
    let outgoing = web_sys::Request::new_with_str_and_init(&url, incoming.unchecked_ref())
        .map_err(|e| format!("building the upstream request: {e:?}"))?;
    let headers = outgoing.headers();
    let names: Vec<String> = js_sys::try_iter(&headers)
        .ok()
        .flatten()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| Reflect::get(&entry, &0.into()).ok()?.as_string())
        .collect();
    for name in names.iter().filter(|n| cfg.strip.is_routing_header(n)) {
        headers
            .delete(name)
            .map_err(|e| format!("removing {name}: {e:?}"))?;
    }
    // Always overwritten, never passed on from the client: the origin router may route on
    // X-Forwarded-Host from the edge (useForwardedHost), so a client must not be able to set it.
    // The value is the authority of the URL the edge was called with (what Cloudflare routed on).
    let incoming_url = incoming.url();
    let (proto, authority, _) = split_url(&incoming_url);
    let _ = headers.set("x-forwarded-host", authority);
    let _ = headers.set("x-forwarded-proto", proto);
    for (name, value) in &decision.inject {
        headers
            .set(name, value)
            .map_err(|e| format!("setting {name}: {e:?}"))?;
    }
    if let Some(key) = &cfg.signer {
        // Sign what the origin router will see: the routing headers as set now (or absent), the
        // method, the host it routes on (X-Forwarded-Host, set above) and the path as forwarded.
        let (_, _, path_and_query) = split_url(&incoming_url);
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let values: Vec<Option<String>> = cfg
            .routing_names
            .iter()
            .map(|n| headers.get(n).ok().flatten())
            .collect();
        let pairs: Vec<(&str, Option<&str>)> = cfg
            .routing_names
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(|v| v.as_deref()))
            .collect();
        let method = incoming.method();
        let req = signature::Request {
            method: &method,
            host: authority,
            path: if path.is_empty() { "/" } else { path },
        };
        let value = signature::sign(key, (js_sys::Date::now() / 1000.0) as u64, &req, &pairs);
        headers
            .set(&cfg.signature_header, &value)
            .map_err(|e| format!("setting the signature: {e:?}"))?;
    }
    js::fetch(&outgoing)
        .await
        .map_err(|e| format!("fetch {url} failed: {}", js::describe(&e)))
}

/// betaroute's own paths: the decision as JSON, else static files from `ASSETS`.
async fn own_page(
    req: Request,
    env: &Env,
    cfg: &EdgeConfig,
    rest: &str,
    outcome: &Outcome,
) -> worker::Result<Response> {
    if rest == "api/decision" {
        let body = json!({
            "cohort": outcome.decision.cohort,
            "reason": outcome.decision.reason,
            "detail": outcome.decision.detail,
            "alg": outcome.alg,
            "kid": outcome.kid,
            "inject": outcome.decision.inject.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "beta_header": cfg.beta.header,
            "beta_claim": cfg.beta.claim,
            "config_problems": cfg.problems,
        });
        let mut resp = Response::from_json(&body)?;
        resp.headers_mut().set("cache-control", "no-store")?;
        return Ok(resp);
    }
    let Ok(assets) = env.assets("ASSETS") else {
        return Response::error("Not Found\n", 404);
    };
    // Assets live at the root of www/; the prefix is stripped so it stays configurable.
    let url = req.inner().url();
    let (scheme, authority, _) = split_url(&url);
    let asset_url = format!("{scheme}://{authority}/{rest}");
    assets.fetch(asset_url, None).await
}

/// Scheme, authority and the rest (path and query, fragment dropped) of an absolute URL.
fn split_url(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let tail = &rest[end..];
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    (scheme, &rest[..end], tail)
}
