//! The decision for a request: its token found, the signature checked over the candidate keys
//! (HMAC in Rust, other algorithms with WebCrypto), then the claims and the beta policy.
//!
//! What needs no await is decided at once by [`now`], which the common cases never leave: no
//! Rust future, no executor. Key imports, several candidate keys and remote key sets take
//! [`later`].

use std::rc::Rc;

use betaroute_core::alg::Family;
use betaroute_core::source::{self, Found};
use betaroute_core::{Pending, Reason, Rejection, Verdict, Verified, Verifier};
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::console_error;

use crate::config::EdgeConfig;
use crate::error::{CryptoOp, EdgeError};
use crate::rollout::Active;
use crate::{jwks, webcrypto};

/// The rollout policy a decision is made under, if any.
pub type InForce<'a> = Option<&'a Rc<Active>>;

fn policy_of(p: InForce<'_>) -> Option<&betaroute_core::Policy> {
    p.map(|a| &*a.policy)
}

/// Rule patterns matched with the runtime's `RegExp` objects of the policy in force.
fn matcher(p: InForce<'_>) -> impl Fn(usize, &str) -> bool + '_ {
    move |i, text| p.is_some_and(|a| a.regex_matches(i, text))
}

/// How far a decision gets without awaiting anything.
pub enum Now {
    /// No token, a configuration error, a token refused before any signature check, or an HMAC
    /// token (checked in Rust).
    Decided(Verdict),
    /// One candidate key, already imported: its WebCrypto check is running (the promise).
    Verifying(js_sys::Promise, Verifying),
    /// Keys to import, several candidate keys or a remote key set: [`later`].
    Later,
}

/// A token whose one candidate key's WebCrypto check is running.
pub struct Verifying {
    verifier: Rc<Verifier>,
    pending: Pending,
    index: usize,
    policy: Option<Rc<Active>>,
}

impl Verifying {
    /// The verdict once the check settled with `result`: fulfilled with a boolean; rejected with
    /// an error when WebCrypto refused the key or algorithm, which counts as not verified.
    pub fn settled(self, cfg: &EdgeConfig, result: &JsValue) -> Verdict {
        let verified = result.as_bool().unwrap_or_else(|| {
            let problem = webcrypto::rejected(CryptoOp::Verify, self.index, result);
            log_key_error(&self.verifier, self.index, &problem);
            false
        });
        conclude(
            cfg,
            &self.verifier,
            self.pending,
            verified.then_some(self.index),
            self.policy.as_ref(),
        )
    }
}

/// Decides what can be decided at once.
pub fn now(
    headers: &web_sys::Headers,
    url: &str,
    cfg: &EdgeConfig,
    policy: InForce<'_>,
    generation: u64,
) -> Now {
    let token = match token_of(headers, url, cfg) {
        Ok(t) => t,
        Err(verdict) => return Now::Decided(verdict),
    };
    // Remote keys, or a flag service to ask once the token verified: the async path.
    if cfg.jwks.is_some() || cfg.ofrep.is_some() {
        return Now::Later;
    }
    let verifier = match &cfg.verifier {
        Ok(v) => v,
        Err(e) => return Now::Decided(Verdict::main(Reason::ConfigError, e.to_string())),
    };
    let pending = match verifier.begin(&token) {
        Err(r) => return Now::Decided(Verdict::rejected(r)),
        Ok(p) => p,
    };
    if pending.alg.family() == Family::Hmac {
        return Now::Decided(natively(cfg, verifier, pending, policy));
    }
    match pending.candidates.as_slice() {
        &[index] => start_cached(cfg, verifier, pending, index, policy, generation),
        _ => Now::Later,
    }
}

/// Starts the WebCrypto check of the one candidate key, when it is already imported.
fn start_cached(
    cfg: &EdgeConfig,
    verifier: &Rc<Verifier>,
    pending: Pending,
    index: usize,
    policy: InForce<'_>,
    generation: u64,
) -> Now {
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
        Some(Ok(Some(check))) => Now::Verifying(
            check,
            Verifying {
                verifier: verifier.clone(),
                pending,
                index,
                policy: policy.cloned(),
            },
        ),
        Some(Ok(None)) => Now::Decided(conclude(cfg, verifier, pending, None, policy)),
        Some(Err(e)) => {
            log_key_error(verifier, index, &e);
            Now::Decided(conclude(cfg, verifier, pending, None, policy))
        }
    }
}

/// The decision, awaiting what must be: remote keys, key imports, several WebCrypto checks.
pub async fn later(
    headers: &web_sys::Headers,
    url: &str,
    cfg: &EdgeConfig,
    policy: InForce<'_>,
    generation: u64,
) -> Verdict {
    let token = match token_of(headers, url, cfg) {
        Ok(t) => t,
        Err(verdict) => return verdict,
    };
    let token = token.as_str();
    let base = match &cfg.verifier {
        Ok(v) => v,
        Err(e) => return Verdict::main(Reason::ConfigError, e.to_string()),
    };
    // Inline keys, or inline plus remote (JWT_JWKS_URL).
    let (verifier, remote) = match &cfg.jwks {
        None => (base.clone(), 0),
        Some(settings) => match jwks::verifier(base, settings, generation, false).await {
            Ok(found) => found,
            Err(e) => return Verdict::main(Reason::ConfigError, e.to_string()),
        },
    };
    let outcome = match verifier.begin(token) {
        Err(r) if r.reason == Reason::UnknownKid => match &cfg.jwks {
            Some(settings) => rotated(settings, base, token, generation, remote, r).await,
            None => Err(r),
        },
        pending => {
            let keys = webcrypto::key_generation(generation, remote);
            finish_with(&verifier, keys, pending).await
        }
    };
    let v = match outcome {
        Ok(v) => v,
        Err(r) => return Verdict::rejected(r),
    };
    let flag = match &cfg.ofrep {
        Some(settings) => {
            let path = policy.map(|a| &a.policy.subject);
            let subject = match path {
                Some(p) => p.lookup(&v.claims),
                None => v.claims.get("sub"),
            }
            .and_then(betaroute_core::rollout::claim::scalar_text);
            match subject {
                Some(s) => crate::ofrep::flag(settings, &s, &v.claims).await,
                None => None,
            }
        }
        None => None,
    };
    Verdict::flagged(&v, &cfg.beta, policy_of(policy), &matcher(policy), flag)
}

/// A `kid` no key has, with remote keys: they may have rotated. Refreshes them (rate-limited)
/// and tries once more with new keys, else the token stays rejected.
async fn rotated(
    settings: &crate::config::JwksSettings,
    base: &Verifier,
    token: &str,
    generation: u64,
    remote: u64,
    rejection: Rejection,
) -> Result<Verified, Rejection> {
    match jwks::verifier(base, settings, generation, true).await {
        Ok((fresh, fresh_remote)) if fresh_remote != remote => {
            let retry = fresh.begin(token);
            let keys = webcrypto::key_generation(generation, fresh_remote);
            finish_with(&fresh, keys, retry).await
        }
        _ => Err(rejection),
    }
}

/// Checks the signature of a parsed token against its candidate keys, then its claims.
async fn finish_with(
    verifier: &Verifier,
    generation: u64,
    pending: Result<Pending, Rejection>,
) -> Result<Verified, Rejection> {
    let pending = pending?;
    if pending.alg.family() == Family::Hmac {
        let verified_by = verifier.check_candidates_native(&pending)?;
        return checked(verifier, pending, verified_by);
    }
    let verified_by = with_webcrypto(verifier, &pending, generation).await;
    checked(verifier, pending, verified_by)
}

/// HMAC in Rust costs a few microseconds in wasm: no need for a round trip to WebCrypto. Core's
/// candidate check, the same as the native CLI's; HMAC is always available to it, also in this
/// build without core's `native-crypto` (`native::available`), so its `Err` is not reached here.
fn natively(
    cfg: &EdgeConfig,
    verifier: &Verifier,
    pending: Pending,
    policy: InForce<'_>,
) -> Verdict {
    match verifier.check_candidates_native(&pending) {
        Ok(verified_by) => conclude(cfg, verifier, pending, verified_by, policy),
        Err(r) => Verdict::rejected(r),
    }
}

/// The first candidate key whose WebCrypto check verifies the signature, in key-set order. A key
/// WebCrypto refuses is logged and counts as not verifying.
async fn with_webcrypto(verifier: &Verifier, pending: &Pending, generation: u64) -> Option<usize> {
    for &i in &pending.candidates {
        let key = &verifier.keys().keys[i];
        let jws = &pending.jws;
        let checked = webcrypto::verify(
            generation,
            i,
            &key.material,
            pending.alg,
            &jws.signing_input,
            &jws.signature,
        )
        .await;
        match checked {
            Ok(true) => return Some(i),
            Ok(false) => {}
            Err(e) => log_key_error(verifier, i, &e),
        }
    }
    None
}

/// Claims and beta policy, once the signature check is done (`verified_by`: the key that
/// verified it, if any).
fn conclude(
    cfg: &EdgeConfig,
    verifier: &Verifier,
    pending: Pending,
    verified_by: Option<usize>,
    policy: InForce<'_>,
) -> Verdict {
    match checked(verifier, pending, verified_by) {
        Ok(v) => Verdict::verified_with(&v, &cfg.beta, policy_of(policy), &matcher(policy)),
        Err(r) => Verdict::rejected(r),
    }
}

/// The claims checked once the signature check is done, as of now.
fn checked(
    verifier: &Verifier,
    pending: Pending,
    verified_by: Option<usize>,
) -> Result<Verified, Rejection> {
    verifier.finish(pending, verified_by, js_sys::Date::now() / 1000.0)
}

/// The token the request carries, or the verdict when there is none to check.
fn token_of(headers: &web_sys::Headers, url: &str, cfg: &EdgeConfig) -> Result<String, Verdict> {
    let authorization = headers.get("authorization").ok().flatten();
    let cookie = cfg
        .token_cookie
        .as_ref()
        .and_then(|_| headers.get("cookie").ok().flatten());
    let query = cfg
        .token_param
        .as_ref()
        .and_then(|_| crate::url::split_url(url).2.split_once('?'))
        .map(|(_, q)| q);
    match source::find_any(
        authorization.as_deref(),
        cookie.as_deref(),
        cfg.token_cookie.as_deref(),
        query,
        cfg.token_param.as_deref(),
    ) {
        Found::None => Err(Verdict::main(Reason::NoToken, "no token in the request")),
        Found::Ambiguous(why) => Err(Verdict::main(Reason::Malformed, why)),
        Found::Token(t) => Ok(t.to_owned()),
        Found::Owned(t) => Ok(t),
    }
}

/// Logs a key WebCrypto refused, by its `kid`.
fn log_key_error(verifier: &Verifier, index: usize, problem: &EdgeError) {
    let kid = verifier.keys().keys[index].kid.as_deref().unwrap_or("-");
    console_error!(
        "{}",
        json!({"betaroute": "key", "level": "error", "kid": kid, "problem": problem.to_string()})
    );
}
