//! The request path: configuration lookup, decision, forwarding, logging.

use std::cell::RefCell;
use std::rc::Rc;

use betaroute_core::alg::Family;
use betaroute_core::signature;
use betaroute_core::source::{self, Found};
use betaroute_core::{native, Decision, Reason, Rejection, Verdict};
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, console_log, Env, Response};

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
        webcrypto::forget_keys_before(webcrypto::key_generation(generation, 0));
        *loaded = Some(Loaded {
            env: env_value.clone(),
            vars,
            generation,
            config: config.clone(),
        });
        (config, generation)
    })
}

/// The token the request carries, or the verdict when there is none to check.
fn token_of(headers: &web_sys::Headers, cfg: &EdgeConfig) -> Result<String, Verdict> {
    let authorization = headers.get("authorization").ok().flatten();
    let cookie = headers.get("cookie").ok().flatten();
    match source::find(
        authorization.as_deref(),
        cookie.as_deref(),
        cfg.token_cookie.as_deref(),
    ) {
        Found::None => Err(Verdict::main(Reason::NoToken, "no token in the request")),
        Found::Ambiguous(why) => Err(Verdict::main(Reason::Malformed, why)),
        Found::Token(t) => Ok(t.to_owned()),
    }
}

/// How far a decision gets without awaiting anything.
enum Now {
    /// No token, a configuration error, a token refused before any signature check, or an HMAC
    /// token (checked in Rust).
    Decided(Verdict),
    /// One candidate key, already imported: its WebCrypto check is running.
    Verifying {
        verifier: Rc<betaroute_core::Verifier>,
        pending: betaroute_core::Pending,
        index: usize,
        check: js_sys::Promise,
    },
    /// Keys to import, several candidate keys or a remote key set: the async path.
    Later,
}

/// Decides what can be decided at once. The common cases so skip Rust futures and their executor
/// entirely.
fn decide_now(headers: &web_sys::Headers, cfg: &EdgeConfig, generation: u64) -> Now {
    let token = match token_of(headers, cfg) {
        Ok(t) => t,
        Err(verdict) => return Now::Decided(verdict),
    };
    if cfg.jwks.is_some() {
        return Now::Later;
    }
    let verifier = match &cfg.verifier {
        Ok(v) => v,
        Err(e) => return Now::Decided(Verdict::main(Reason::ConfigError, e.as_str())),
    };
    let pending = match verifier.begin(&token) {
        Err(r) => return Now::Decided(Verdict::rejected(r)),
        Ok(p) => p,
    };
    if pending.alg.family() == Family::Hmac {
        let verified_by = pending
            .candidates
            .iter()
            .copied()
            .find(|&i| verify_hmac(verifier, &pending, i));
        return Now::Decided(conclude(cfg, verifier, pending, verified_by));
    }
    let &[index] = pending.candidates.as_slice() else {
        return Now::Later;
    };
    let started = webcrypto::start_cached(
        webcrypto::key_generation(generation, 0),
        index,
        &verifier.keys().keys[index].material,
        pending.alg,
        &pending.jws.signing_input,
        &pending.jws.signature,
    );
    match started {
        None => Now::Later,
        Some(Ok(Some(check))) => Now::Verifying {
            verifier: verifier.clone(),
            pending,
            index,
            check,
        },
        Some(Ok(None)) => Now::Decided(conclude(cfg, verifier, pending, None)),
        Some(Err(e)) => {
            log_key_error(verifier, index, &e);
            Now::Decided(conclude(cfg, verifier, pending, None))
        }
    }
}

fn log_key_error(verifier: &betaroute_core::Verifier, index: usize, problem: &str) {
    let kid = verifier.keys().keys[index].kid.as_deref().unwrap_or("-");
    console_error!(
        "{}",
        json!({"betaroute": "key", "level": "error", "kid": kid, "problem": problem})
    );
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A promise, seen through the one method needed here.
    #[wasm_bindgen(js_name = Promise)]
    type Settling;

    /// `promise.then(f, f)`: one function for both outcomes, so a once-closure is always called
    /// (and freed) whichever way the promise settles.
    #[wasm_bindgen(method, js_name = then)]
    fn then_both(this: &Settling, on_fulfilled: &JsValue, on_rejected: &JsValue)
        -> js_sys::Promise;
}

async fn decide(headers: &web_sys::Headers, cfg: &EdgeConfig, generation: u64) -> Verdict {
    let token = match token_of(headers, cfg) {
        Ok(t) => t,
        Err(verdict) => return verdict,
    };
    let token = token.as_str();
    // Inline keys, or inline plus remote (JWT_JWKS_URL).
    let (verifier, remote) = match &cfg.jwks {
        None => match &cfg.verifier {
            Ok(v) => (v.clone(), 0),
            Err(e) => return Verdict::main(Reason::ConfigError, e.as_str()),
        },
        Some(settings) => match jwks::verifier(cfg, settings, generation, false).await {
            Ok(found) => found,
            Err(e) => return Verdict::main(Reason::ConfigError, e),
        },
    };
    match verifier.begin(token) {
        Err(r) if r.reason == Reason::UnknownKid && cfg.jwks.is_some() => {
            // The keys may have rotated: refresh (rate-limited) and try once more with new keys.
            let settings = cfg.jwks.as_ref().expect("checked above");
            match jwks::verifier(cfg, settings, generation, true).await {
                Ok((fresh, fresh_remote)) if fresh_remote != remote => {
                    let retry = fresh.begin(token);
                    finish_with(
                        cfg,
                        &fresh,
                        webcrypto::key_generation(generation, fresh_remote),
                        retry,
                    )
                    .await
                }
                _ => Verdict::rejected(r),
            }
        }
        pending => {
            finish_with(
                cfg,
                &verifier,
                webcrypto::key_generation(generation, remote),
                pending,
            )
            .await
        }
    }
}

/// Checks the signature of a parsed token against its candidate keys, then its claims.
async fn finish_with(
    cfg: &EdgeConfig,
    verifier: &betaroute_core::Verifier,
    generation: u64,
    pending: Result<betaroute_core::Pending, Rejection>,
) -> Verdict {
    let pending = match pending {
        Ok(p) => p,
        Err(r) => return Verdict::rejected(r),
    };
    let mut verified_by = None;
    for &i in &pending.candidates {
        let ok = if pending.alg.family() == Family::Hmac {
            verify_hmac(verifier, &pending, i)
        } else {
            let key = &verifier.keys().keys[i];
            let jws = &pending.jws;
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
                    log_key_error(verifier, i, &e);
                    false
                }
            }
        };
        if ok {
            verified_by = Some(i);
            break;
        }
    }
    conclude(cfg, verifier, pending, verified_by)
}

/// HMAC in Rust costs a few microseconds in wasm: no need for a round trip to WebCrypto.
fn verify_hmac(
    verifier: &betaroute_core::Verifier,
    pending: &betaroute_core::Pending,
    i: usize,
) -> bool {
    let key = &verifier.keys().keys[i];
    native::verify(
        pending.alg,
        &key.material,
        &pending.jws.signing_input,
        &pending.jws.signature,
    )
    .unwrap_or(false)
}

/// Claims and beta policy, once the signature check is done (`verified_by`: the key that
/// verified it, if any).
fn conclude(
    cfg: &EdgeConfig,
    verifier: &betaroute_core::Verifier,
    pending: betaroute_core::Pending,
    verified_by: Option<usize>,
) -> Verdict {
    let now = js_sys::Date::now() / 1000.0;
    match verifier.finish(pending, verified_by, now) {
        Ok(v) => Verdict::verified(&v, &cfg.beta),
        Err(r) => Verdict::rejected(r),
    }
}

/// The origin's fetch, with failures turned into a 502.
fn caught(pending: js_sys::Promise) -> js_sys::Promise {
    UPSTREAM_FAILED.with(|f| pending.catch_map(f).unchecked_into())
}

/// The fetch handler: a promise of the response. Most decisions need no promise (see
/// `decide_now`): then the request is forwarded at once and the origin's own fetch promise is
/// handed back, with no Rust future, no executor and no extra trips through the microtask queue.
/// A WebCrypto check costs one continuation; only key imports and remote key sets take the
/// async path.
pub fn entry(req: web_sys::Request, env: Env) -> js_sys::Promise {
    let (cfg, generation) = config(&env);
    let url = req.url();
    if !path_of(&url).starts_with(cfg.prefix.as_str()) {
        match decide_now(&req.headers(), &cfg, generation) {
            Now::Decided(verdict) => {
                let reply = respond(&req, &url, &cfg, &verdict);
                return js_sys::Promise::resolve(&reply).unchecked_into();
            }
            Now::Verifying {
                verifier,
                pending,
                index,
                check,
            } => {
                let then = wasm_bindgen::closure::Closure::once_into_js(move |result: JsValue| {
                    // Fulfilled with a boolean; rejected with an error when WebCrypto refused
                    // the key or algorithm, which counts as not verified.
                    let verified = result.as_bool().unwrap_or_else(|| {
                        let problem = format!("verify rejected: {}", js::describe(&result));
                        log_key_error(&verifier, index, &problem);
                        false
                    });
                    let verdict = conclude(&cfg, &verifier, pending, verified.then_some(index));
                    respond(&req, &url, &cfg, &verdict)
                });
                return check.unchecked_ref::<Settling>().then_both(&then, &then);
            }
            Now::Later => {}
        }
    }
    wasm_bindgen_futures::future_to_promise(async move {
        match handle(req, url, env, cfg, generation).await {
            // Resolving with a promise adopts it: the origin's response, without awaiting here.
            Ok(reply) => Ok(reply),
            Err(e) => {
                console_error!(
                    "{}",
                    json!({"betaroute": "error", "level": "error", "problem": e.to_string()})
                );
                Ok(Response::error("Internal Server Error\n", 500)
                    .map(web_sys::Response::from)
                    .map(JsValue::from)
                    .unwrap_or(JsValue::UNDEFINED))
            }
        }
    })
}

/// Forwards the request as decided: the origin's response to come (a promise), or a 502 when the
/// request could not even be sent. With request logging on, the log line is written when the
/// origin's status is known (one continuation); without, the origin's promise is passed on.
fn respond(req: &web_sys::Request, url: &str, cfg: &Rc<EdgeConfig>, verdict: &Verdict) -> JsValue {
    let pending = forward(req, url, cfg, &verdict.decision);
    if !cfg.log_requests {
        return match pending {
            Ok(p) => caught(p).into(),
            Err(e) => bad_gateway(&e).into(),
        };
    }
    // The verdict's fields without `inject`: the log line has never carried it (the cohort says
    // whether the beta header was set).
    let mut line = serde_json::to_value(verdict).unwrap_or_default();
    if let Some(fields) = line.as_object_mut() {
        fields.remove("inject");
    }
    line["betaroute"] = "request".into();
    line["method"] = req.method().into();
    line["path"] = path_of(url).into();
    let started = js_sys::Date::now();
    let log = move |status: u16| {
        let mut line = line;
        line["status"] = status.into();
        line["ms"] = (js_sys::Date::now() - started).into();
        console_log!("{line}");
    };
    match pending {
        Ok(p) => {
            let then = wasm_bindgen::closure::Closure::once_into_js(move |settled: JsValue| {
                match settled.dyn_into::<web_sys::Response>() {
                    Ok(resp) => {
                        log(resp.status());
                        JsValue::from(resp)
                    }
                    Err(e) => {
                        log(502);
                        JsValue::from(fetch_failed(&e))
                    }
                }
            });
            p.unchecked_ref::<Settling>().then_both(&then, &then).into()
        }
        Err(e) => {
            log(502);
            bad_gateway(&e).into()
        }
    }
}

type UpstreamFailed =
    wasm_bindgen::closure::Closure<dyn FnMut(JsValue) -> Result<JsValue, wasm_bindgen::JsError>>;

thread_local! {
    /// Turns a failed origin fetch into a 502 (made once per isolate: a closure per request
    /// would cost an allocation and a finalizer registration).
    static UPSTREAM_FAILED: UpstreamFailed = wasm_bindgen::closure::Closure::new(|e: JsValue| {
        Ok(fetch_failed(&e).into())
    });
}

/// The 502 for a rejected origin fetch (its rejection value says why), logged.
fn fetch_failed(e: &JsValue) -> web_sys::Response {
    bad_gateway(&format!("fetch failed: {}", js::describe(e)))
}

/// The 502 for an origin that could not be reached, logged.
fn bad_gateway(problem: &str) -> web_sys::Response {
    console_error!(
        "{}",
        json!({"betaroute": "upstream", "level": "error", "problem": problem})
    );
    Response::error("Bad Gateway: the origin could not be reached\n", 502)
        .map(web_sys::Response::from)
        .expect("a static response builds")
}

/// The path of an absolute URL, without query or fragment.
fn path_of(url: &str) -> &str {
    let (_, _, path_and_query) = split_url(url);
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p)
}

/// The async path: key imports, several candidate keys, remote key sets, and betaroute's own
/// pages.
async fn handle(
    req: web_sys::Request,
    url: String,
    env: Env,
    cfg: Rc<EdgeConfig>,
    generation: u64,
) -> worker::Result<JsValue> {
    let verdict = decide(&req.headers(), &cfg, generation).await;
    if let Some(rest) = path_of(&url).strip_prefix(cfg.prefix.as_str()) {
        return own_page(&url, &env, &cfg, rest, &verdict)
            .await
            .map(|r| web_sys::Response::from(r).into());
    }
    Ok(respond(&req, &url, &cfg, &verdict))
}

/// Header names as JavaScript strings, made once per configuration: passing a JS string into a
/// `Headers` call costs nothing, where a Rust `&str` is decoded from wasm memory on every call.
struct JsNames {
    /// `cfg.strip_spellings`, when there are few enough to delete by name.
    strip: Option<Vec<JsValue>>,
    forwarded_host: JsValue,
    forwarded_proto: JsValue,
}

fn js_names(cfg: &Rc<EdgeConfig>) -> Rc<JsNames> {
    thread_local! {
        // Keyed by the configuration it was made from (held, so its address is not reused).
        static NAMES: RefCell<Option<(Rc<EdgeConfig>, Rc<JsNames>)>> = const { RefCell::new(None) };
    }
    NAMES.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some((_, names)) = cell.as_ref().filter(|(c, _)| Rc::ptr_eq(c, cfg)) {
            return names.clone();
        }
        let names = Rc::new(JsNames {
            strip: cfg
                .strip_spellings
                .as_ref()
                .map(|s| s.iter().map(|n| JsValue::from_str(n)).collect()),
            forwarded_host: JsValue::from_str("x-forwarded-host"),
            forwarded_proto: JsValue::from_str("x-forwarded-proto"),
        });
        *cell = Some((cfg.clone(), names.clone()));
        names
    })
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `Headers`, with names passed as JavaScript strings.
    #[wasm_bindgen(js_name = Headers)]
    type JsHeaders;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_name(this: &JsHeaders, name: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = set)]
    fn set_name(this: &JsHeaders, name: &JsValue, value: &str) -> Result<(), JsValue>;
}

/// Starts the origin fetch: same method, path, query, headers (minus routing headers, plus the
/// decision's) and body, streamed. Redirects are returned, not followed. The promise resolves to
/// the origin's response, untouched.
fn forward(
    incoming: &web_sys::Request,
    incoming_url: &str,
    cfg: &Rc<EdgeConfig>,
    decision: &Decision,
) -> Result<js_sys::Promise, String> {
    let url = upstream_url(cfg.origin.as_deref(), incoming_url);
    // Fetched with an init of method, a copy of the headers, the body stream (never buffered) and
    // redirect "manual". Not `new Request(url, incoming)`: that also copies `cf` and the rest of
    // the request object: a JS pass-through worker written that way served 18% fewer requests
    // per second in workerd (measured).
    let method = incoming.method();
    let headers = web_sys::Headers::new_with_headers(&incoming.headers())
        .map_err(|e| format!("copying the headers: {e:?}"))?;
    let names = js_names(cfg);
    match &names.strip {
        // Headers ignore case: deleting each spelling is a few calls, where reading every name
        // back into wasm is several per header.
        Some(spellings) => {
            let h: &JsHeaders = headers.unchecked_ref();
            for name in spellings {
                h.delete_name(name)
                    .map_err(|e| format!("removing {name:?}: {e:?}"))?;
            }
        }
        None => {
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
        }
    }
    // Always overwritten, never passed on from the client: the origin router may route on
    // X-Forwarded-Host from the edge (useForwardedHost), so a client must not be able to set it.
    // The value is the authority of the URL the edge was called with (what Cloudflare routed on).
    let (proto, authority, _) = split_url(incoming_url);
    let h: &JsHeaders = headers.unchecked_ref();
    let _ = h.set_name(&names.forwarded_host, authority);
    let _ = h.set_name(&names.forwarded_proto, proto);
    for (name, value) in &decision.inject {
        headers
            .set(name, value)
            .map_err(|e| format!("setting {name}: {e:?}"))?;
    }
    if let Some(key) = &cfg.signer {
        // Sign what the origin router will see: the routing headers as set now (or absent), the
        // method, the host it routes on (X-Forwarded-Host, set above) and the path as forwarded.
        let path = path_of(incoming_url);
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
    let init = web_sys::RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    if let Some(body) = incoming.body() {
        init.set_body(&body);
    }
    init.set_redirect(web_sys::RequestRedirect::Manual);
    js::fetch(&JsValue::from_str(&url), &init)
        .map_err(|e| format!("fetch {url} failed: {}", js::describe(&e)))
}

/// betaroute's own paths: the decision as JSON, else static files from `ASSETS`.
async fn own_page(
    url: &str,
    env: &Env,
    cfg: &EdgeConfig,
    rest: &str,
    verdict: &Verdict,
) -> worker::Result<Response> {
    if rest == "api/decision" {
        // The verdict, with the configuration that produced it.
        let mut body = serde_json::to_value(verdict)?;
        body["beta_header"] = json!(cfg.beta.header);
        body["beta_claim"] = json!(cfg.beta.claim);
        body["config_problems"] = json!(cfg.problems);
        let mut resp = Response::from_json(&body)?;
        resp.headers_mut().set("cache-control", "no-store")?;
        return Ok(resp);
    }
    let Ok(assets) = env.assets("ASSETS") else {
        return Response::error("Not Found\n", 404);
    };
    // Assets live at the root of www/; the prefix is stripped so it stays configurable.
    let (scheme, authority, _) = split_url(url);
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
