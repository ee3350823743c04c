//! Remote JWKS (`JWT_JWKS_URL`): keys fetched, kept in isolate memory and in the Cache API (so a
//! fresh isolate need not fetch), refreshed on expiry or on an unknown `kid`, at most once per
//! `JWKS_REFRESH_INTERVAL_SECONDS` whatever triggers it. When the endpoint is down, slow or
//! answers garbage, the keys already held keep working (stale-if-error) and the failure is logged.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use betaroute_core::{KeySet, Verifier};
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js::describe;
use worker::{console_error, console_log, AbortController, Delay};

use crate::config::JwksSettings;
use crate::error::{EdgeError, JwksProblem};
use crate::webcrypto;

struct Remote {
    /// Configuration generation these keys belong to.
    config_generation: u64,
    verifier: Option<Rc<Verifier>>,
    /// Bumped on every successful refresh; keys the WebCrypto key cache.
    generation: u64,
    expires_ms: f64,
    /// Last fetch for a missing or expired key set (failures back off by the interval too).
    last_attempt_ms: f64,
    /// Last refresh forced by an unknown `kid`: at most one per interval.
    last_forced_ms: f64,
}

thread_local! {
    static REMOTE: RefCell<Option<Remote>> = const { RefCell::new(None) };
}

/// `base`, the verifier over `JWT_KEYS`, plus the remote keys, and a generation number that
/// changes when the keys do. `force` asks for a refresh (an unknown `kid`), still within the rate
/// limit.
pub async fn verifier(
    base: &Verifier,
    settings: &JwksSettings,
    config_generation: u64,
    force: bool,
) -> Result<(Rc<Verifier>, u64), EdgeError> {
    let now = js_sys::Date::now();
    let (current, fetch_now) = claim(settings, config_generation, force, now);
    if !fetch_now {
        return current.ok_or(EdgeError::Jwks(JwksProblem::NoKeysYet));
    }
    // A fresh isolate first looks in the Cache API, which other isolates of this colo fill.
    let fetched = match current {
        None => match cache_get(&settings.url).await {
            Some(hit) => Ok(hit),
            None => fetch(settings).await,
        },
        Some(_) => fetch(settings).await,
    };
    match fetched {
        Ok(found) => Ok(adopt(base, settings, config_generation, now, found).await),
        Err(e) => {
            let stale = current.is_some();
            console_error!(
                "{}",
                json!({"betaroute": "jwks", "level": "error", "problem": e.to_string(), "url": settings.url, "serving_stale_keys": stale})
            );
            current.ok_or(e)
        }
    }
}

/// The keys held for this configuration (with their generation), and whether to fetch now: when
/// they are missing or expired, or `force`d, at most once per interval. A fetch is claimed before
/// anything is awaited, so concurrent requests in this isolate do not fetch too.
fn claim(
    settings: &JwksSettings,
    config_generation: u64,
    force: bool,
    now: f64,
) -> (Option<(Rc<Verifier>, u64)>, bool) {
    REMOTE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_none_or(|r| r.config_generation != config_generation)
        {
            *slot = Some(Remote {
                config_generation,
                verifier: None,
                generation: 0,
                expires_ms: 0.0,
                last_attempt_ms: f64::MIN,
                last_forced_ms: f64::MIN,
            });
        }
        let r = slot.as_mut().expect("just set");
        let interval = settings.refresh_interval as f64 * 1000.0;
        let due =
            (r.verifier.is_none() || now >= r.expires_ms) && now - r.last_attempt_ms >= interval;
        let forced = force && now - r.last_forced_ms >= interval;
        if due || forced {
            r.last_attempt_ms = now;
        }
        if forced {
            r.last_forced_ms = now;
        }
        (r.verifier.clone().map(|v| (v, r.generation)), due || forced)
    })
}

/// Takes fetched keys into use (a new generation; keys imported for older ones are dropped),
/// logs the refresh and, when they came from the network, stores them in the Cache API.
async fn adopt(
    base: &Verifier,
    settings: &JwksSettings,
    config_generation: u64,
    now: f64,
    (keys, ttl, from_cache): (KeySet, u64, bool),
) -> (Rc<Verifier>, u64) {
    let verifier = Rc::new(base.with_extra_keys(&keys));
    let generation = REMOTE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let r = slot.as_mut().expect("set above");
        r.verifier = Some(verifier.clone());
        r.generation += 1;
        r.expires_ms = now + ttl as f64 * 1000.0;
        r.generation
    });
    webcrypto::forget_keys_before(webcrypto::key_generation(config_generation, generation));
    console_log!(
        "{}",
        json!({"betaroute": "jwks", "result": "refreshed", "source": if from_cache { "cache" } else { "network" }, "keys": keys.keys.len(), "ttl_seconds": ttl})
    );
    for s in &keys.skipped {
        let problem = EdgeError::Jwks(JwksProblem::SkippedKey(s.clone()));
        console_error!(
            "{}",
            json!({"betaroute": "jwks", "level": "error", "problem": problem.to_string()})
        );
    }
    if !from_cache {
        cache_put(&settings.url, &keys_json(&keys), ttl).await;
    }
    (verifier, generation)
}

/// Fetches the key set, bounded by the timeout (the abort also cuts the body read).
async fn fetch(settings: &JwksSettings) -> Result<(KeySet, u64, bool), EdgeError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let timeout_ms = settings.timeout_ms;
    wasm_bindgen_futures::spawn_local(async move {
        Delay::from(Duration::from_millis(timeout_ms)).await;
        controller.abort();
    });
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(&signal));
    let headers = web_sys::Headers::new().map_err(|_| JwksProblem::NoHeaders)?;
    let _ = headers.set("accept", "application/json");
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(&settings.url, &init).map_err(|e| {
        JwksProblem::BadRequest {
            message: format!("{e:?}"),
        }
    })?;
    let resp = crate::js::fetch_await(&req).await.map_err(|e| {
        if signal.aborted() {
            JwksProblem::NoAnswer { timeout_ms }
        } else {
            JwksProblem::FetchFailed {
                message: describe(&e),
            }
        }
    })?;
    if resp.status() != 200 {
        let status = resp.status();
        return Err(JwksProblem::Status { status }.into());
    }
    let cache_control = resp.headers().get("cache-control").ok().flatten();
    let text = JsFuture::from(resp.text().map_err(|_| JwksProblem::NoBody)?)
        .await
        .map_err(|e| {
            if signal.aborted() {
                JwksProblem::BodyTimedOut { timeout_ms }
            } else {
                JwksProblem::BodyFailed {
                    message: describe(&e),
                }
            }
        })?
        .as_string()
        .unwrap_or_default();
    let keys = KeySet::from_json(&text).map_err(JwksProblem::Keys)?;
    Ok((keys, settings.ttl(cache_control.as_deref()), false))
}

/// The usable keys back as a JWKS, for the Cache API (public members only).
fn keys_json(keys: &KeySet) -> String {
    let list: Vec<serde_json::Value> = keys
        .keys
        .iter()
        .map(|k| {
            let mut m: serde_json::Map<String, serde_json::Value> = k
                .material
                .to_jwk_members()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), json!(v)))
                .collect();
            if let Some(kid) = &k.kid {
                m.insert("kid".into(), json!(kid));
            }
            if let Some(alg) = k.alg {
                m.insert("alg".into(), json!(alg.name()));
            }
            serde_json::Value::Object(m)
        })
        .collect();
    json!({ "keys": list }).to_string()
}

fn cache_key(url: &str) -> String {
    // A key under our own prefix, so it never collides with a cached copy of the real URL.
    format!(
        "https://betaroute.internal/jwks?url={}",
        js_sys::encode_uri_component(url)
    )
}

async fn default_cache() -> Option<web_sys::Cache> {
    let caches = Reflect::get(&js_sys::global(), &"caches".into()).ok()?;
    let default = Reflect::get(&caches, &"default".into()).ok()?;
    (!default.is_undefined()).then(|| default.unchecked_into())
}

async fn cache_get(url: &str) -> Option<(KeySet, u64, bool)> {
    let cache = default_cache().await?;
    let hit = JsFuture::from(cache.match_with_str(&cache_key(url)))
        .await
        .ok()?;
    if hit.is_undefined() {
        return None;
    }
    let resp: web_sys::Response = hit.unchecked_into();
    let expires: f64 = resp
        .headers()
        .get("x-betaroute-expires")
        .ok()
        .flatten()?
        .parse()
        .ok()?;
    let left = ((expires - js_sys::Date::now()) / 1000.0).floor();
    if left < 1.0 {
        return None;
    }
    let text = JsFuture::from(resp.text().ok()?).await.ok()?.as_string()?;
    let keys = KeySet::from_json(&text).ok()?;
    Some((keys, left as u64, true))
}

async fn cache_put(url: &str, body: &str, ttl: u64) {
    let Some(cache) = default_cache().await else {
        return;
    };
    let init = web_sys::ResponseInit::new();
    let Ok(headers) = web_sys::Headers::new() else {
        return;
    };
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", &format!("max-age={ttl}"));
    let _ = headers.set(
        "x-betaroute-expires",
        // Whole milliseconds, written as an integer: float formatting costs 15 KB of wasm.
        &(js_sys::Date::now() as u64 + ttl * 1000).to_string(),
    );
    init.set_headers(&headers);
    let Ok(resp) = web_sys::Response::new_with_opt_str_and_init(Some(body), &init) else {
        return;
    };
    if let Err(e) = JsFuture::from(cache.put_with_str(&cache_key(url), &resp)).await {
        let problem = EdgeError::Jwks(JwksProblem::CachePut {
            message: describe(&e),
        });
        console_error!(
            "{}",
            json!({"betaroute": "jwks", "level": "warning", "problem": problem.to_string()})
        );
    }
}
