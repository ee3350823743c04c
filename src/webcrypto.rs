//! RSA, ECDSA and EdDSA signature checks with WebCrypto (`crypto.subtle`), which runs natively in
//! workerd: pure-Rust RSA in wasm costs about 1.3 ms warm and 12 ms cold per verify, WebCrypto
//! about 0.1 ms (TOOLCHAIN.md). Imported keys are cached per isolate.

use std::cell::RefCell;
use std::collections::HashMap;

use betaroute_core::alg::Family;
use betaroute_core::{Alg, KeyMaterial};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::{CryptoFailure, CryptoOp, EdgeError};
use crate::js::describe;
use web_sys::{CryptoKey, SubtleCrypto};

thread_local! {
    /// Imported keys by (configuration generation, key index, algorithm): a CryptoKey is bound to
    /// one algorithm and hash, so an RSA key without `alg` may be imported up to six times.
    static KEYS: RefCell<HashMap<(u64, usize, Alg), CryptoKey>> = RefCell::new(HashMap::new());
}

/// Keys the key cache: changes with the configuration (`config`, its generation) and with every
/// JWKS refresh (`remote`, the key set's generation), so a key imported for one key set is never
/// used for another.
pub fn key_generation(config: u64, remote: u64) -> u64 {
    (config << 32) | (remote & 0xffff_ffff)
}

/// Drops keys imported under older configurations.
pub fn forget_keys_before(generation: u64) {
    KEYS.with(|k| k.borrow_mut().retain(|(g, _, _), _| *g >= generation));
}

/// `crypto.subtle`, for a check with the key at `index` (named by the error when there is none).
fn subtle(index: usize) -> Result<SubtleCrypto, EdgeError> {
    thread_local! {
        // Looked up once per isolate: two calls into JS saved on every verification.
        static SUBTLE: Option<SubtleCrypto> = {
            // The global is a ServiceWorkerGlobalScope in workerd: a checked cast to
            // WorkerGlobalScope fails, so read `crypto` off the global object directly.
            Reflect::get(&js_sys::global(), &"crypto".into())
                .ok()
                .map(|c| c.unchecked_into::<web_sys::Crypto>().subtle())
        };
    }
    SUBTLE.with(Clone::clone).ok_or(EdgeError::WebCrypto {
        index,
        failure: CryptoFailure::Unavailable,
    })
}

/// The error for a WebCrypto call on the key at `index` that threw `e`.
fn threw(op: CryptoOp, index: usize, e: &JsValue) -> EdgeError {
    let message = describe(e);
    let failure = CryptoFailure::Threw { op, message };
    EdgeError::WebCrypto { index, failure }
}

/// The error for a WebCrypto call on the key at `index` whose promise was rejected with `e`.
pub fn rejected(op: CryptoOp, index: usize, e: &JsValue) -> EdgeError {
    let message = describe(e);
    let failure = CryptoFailure::Rejected { op, message };
    EdgeError::WebCrypto { index, failure }
}

/// The `verify` parameters for an algorithm, built once per isolate (WebCrypto only reads them).
fn verify_params(alg: Alg) -> Object {
    thread_local! {
        static PARAMS: RefCell<HashMap<Alg, Object>> = RefCell::new(HashMap::new());
    }
    PARAMS.with(|p| {
        p.borrow_mut()
            .entry(alg)
            .or_insert_with(|| params(alg).1)
            .clone()
    })
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Reflect::set on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

fn hash_name(alg: Alg) -> &'static str {
    match alg.hash_len() {
        Some(48) => "SHA-384",
        Some(64) => "SHA-512",
        _ => "SHA-256",
    }
}

/// The `importKey` and `verify` algorithm parameters for a JWS algorithm.
fn params(alg: Alg) -> (Object, Object) {
    let import = Object::new();
    let verify = Object::new();
    match alg.family() {
        Family::RsaPkcs1 => {
            set(&import, "name", "RSASSA-PKCS1-v1_5");
            set(&import, "hash", hash_name(alg));
            set(&verify, "name", "RSASSA-PKCS1-v1_5");
        }
        Family::RsaPss => {
            set(&import, "name", "RSA-PSS");
            set(&import, "hash", hash_name(alg));
            set(&verify, "name", "RSA-PSS");
            // RFC 7518 3.5: the salt is as long as the hash output.
            set(&verify, "saltLength", alg.hash_len().unwrap_or(32) as u32);
        }
        Family::Ecdsa => {
            set(&import, "name", "ECDSA");
            set(&import, "namedCurve", "P-256");
            set(&verify, "name", "ECDSA");
            set(&verify, "hash", hash_name(alg));
        }
        Family::EdDsa => {
            set(&import, "name", "Ed25519");
            set(&verify, "name", "Ed25519");
        }
        Family::Hmac => {
            set(&import, "name", "HMAC");
            set(&import, "hash", hash_name(alg));
            set(&verify, "name", "HMAC");
        }
    }
    (import, verify)
}

async fn import(
    subtle: &SubtleCrypto,
    index: usize,
    material: &KeyMaterial,
    alg: Alg,
) -> Result<CryptoKey, EdgeError> {
    let jwk = Object::new();
    for (name, value) in material.to_jwk_members() {
        set(&jwk, name, value);
    }
    let (import_alg, _) = params(alg);
    let usages = Array::of1(&"verify".into());
    let promise = subtle
        .import_key_with_object("jwk", &jwk, &import_alg, false, &usages)
        .map_err(|e| threw(CryptoOp::Import, index, &e))?;
    let key = JsFuture::from(promise)
        .await
        .map_err(|e| rejected(CryptoOp::Import, index, &e))?;
    Ok(key.unchecked_into())
}

/// Checks a signature. `Ok(false)` is a signature that does not verify; `Err` is a key or
/// algorithm WebCrypto refused, reported differently so operators can tell a bad key apart.
pub async fn verify(
    generation: u64,
    index: usize,
    material: &KeyMaterial,
    alg: Alg,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, EdgeError> {
    if !material.signature_fits(alg, signature) {
        return Ok(false);
    }
    let subtle = subtle(index)?;
    // Clone the key out of the cache: a RefCell borrow must never be held across an await.
    let cached = KEYS.with(|k| k.borrow().get(&(generation, index, alg)).cloned());
    let key = match cached {
        Some(key) => key,
        None => {
            let key = import(&subtle, index, material, alg).await?;
            KEYS.with(|k| k.borrow_mut().insert((generation, index, alg), key.clone()));
            key
        }
    };
    let promise = start(&subtle, index, &key, alg, message, signature)?;
    let result = JsFuture::from(promise)
        .await
        .map_err(|e| rejected(CryptoOp::Verify, index, &e))?;
    Ok(result.as_bool() == Some(true))
}

fn start(
    subtle: &SubtleCrypto,
    index: usize,
    key: &CryptoKey,
    alg: Alg,
    message: &[u8],
    signature: &[u8],
) -> Result<js_sys::Promise, EdgeError> {
    subtle
        .verify_with_object_and_u8_array_and_u8_array(&verify_params(alg), key, signature, message)
        .map_err(|e| threw(CryptoOp::Verify, index, &e))
}

/// Starts a verification when the key is already imported: the promise resolves to whether the
/// signature verifies, and rejects when WebCrypto refuses the key or algorithm. `None` when the
/// key must be imported first (use `verify`); `Some(Ok(None))` when the signature cannot verify
/// at all ([`KeyMaterial::signature_fits`], checked first, since WebCrypto rejects some of those
/// calls instead of answering false, and that would read as a key problem).
pub fn start_cached(
    generation: u64,
    index: usize,
    material: &KeyMaterial,
    alg: Alg,
    message: &[u8],
    signature: &[u8],
) -> Option<Result<Option<js_sys::Promise>, EdgeError>> {
    if !material.signature_fits(alg, signature) {
        return Some(Ok(None));
    }
    let key = KEYS.with(|k| k.borrow().get(&(generation, index, alg)).cloned())?;
    Some(
        subtle(index)
            .and_then(|s| start(&s, index, &key, alg, message, signature))
            .map(Some),
    )
}
