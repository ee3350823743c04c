//! Token verification: size limit, parsing, algorithm policy, key selection, signature, claims.
//!
//! Split in two halves around the signature check so that every caller shares the same policy:
//! [`Verifier::begin`] decides which keys may verify the token, the caller checks the signature
//! (natively with [`Verifier::verify_native`], or with WebCrypto at the edge), and
//! [`Verifier::finish`] validates the claims of a token whose signature held.

use std::fmt;

use serde_json::{Map, Value};

use crate::alg::Alg;
use crate::claims::{self, ClaimsPolicy};
use crate::decision::{Decision, Reason};
use crate::jwk::{Jwk, KeySet};
use crate::jws::{self, ParsedJws};
use crate::native::{self, CheckError};

/// Tokens larger than this are rejected before any parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Everything the verifier enforces besides the keys themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyPolicy {
    pub claims: ClaimsPolicy,
    /// When set, only these algorithms are accepted, whatever the keys would allow.
    pub allowed_algs: Option<Vec<Alg>>,
    pub max_token_bytes: usize,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            claims: ClaimsPolicy::default(),
            allowed_algs: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// A token that failed verification: the reason, a detail for humans, and what could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    /// The JOSE header, when the token parsed (boxed: rejections are moved around a lot).
    pub header: Option<Box<Map<String, Value>>>,
    /// The claims, only when the signature verified (a claim check failed).
    pub claims: Option<Box<Map<String, Value>>>,
}

impl Rejection {
    fn new(reason: Reason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
            header: None,
            claims: None,
        }
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.as_ref()?.get("alg")?.as_str()
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.as_ref()?.get("kid")?.as_str()
    }

    pub fn into_decision(self) -> Decision {
        Decision::main(self.reason, Some(self.detail))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejection {}

/// A parsed token and the keys that may verify it, awaiting the signature check.
#[derive(Debug, Clone)]
pub struct Pending {
    pub jws: ParsedJws,
    pub alg: Alg,
    /// Indexes into [`KeySet::keys`] of the keys allowed to verify this token, in key-set order.
    pub candidates: Vec<usize>,
}

/// A token whose signature and claims verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub alg: Alg,
    /// Index of the key that verified the signature.
    pub key_index: usize,
}

impl Verified {
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid")?.as_str()
    }
}

/// Verifies tokens against one key set and policy. Built once per configuration.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    policy: VerifyPolicy,
}

impl Verifier {
    pub fn new(keys: KeySet, policy: VerifyPolicy) -> Verifier {
        Verifier { keys, policy }
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The same policy over this verifier's keys plus `extra` (e.g. keys fetched from a JWKS URL).
    pub fn with_extra_keys(&self, extra: &KeySet) -> Verifier {
        let mut keys = self.keys.clone();
        keys.keys.extend(extra.keys.iter().cloned());
        keys.skipped.extend(extra.skipped.iter().cloned());
        Verifier {
            keys,
            policy: self.policy.clone(),
        }
    }

    pub fn policy(&self) -> &VerifyPolicy {
        &self.policy
    }

    /// Parses the token and selects the keys that may verify it.
    ///
    /// Key choice: when the token names a `kid`, the keys with that `kid` (and keys without any
    /// `kid`, which are not bound to a name); otherwise every key. Of those, only keys whose
    /// configuration allows the token's algorithm. The token's `alg` never makes a key usable
    /// for an algorithm the key does not allow: no `none`, no HMAC keyed with an RSA key.
    pub fn begin(&self, token: &str) -> Result<Pending, Rejection> {
        if token.len() > self.policy.max_token_bytes {
            return Err(Rejection::new(
                Reason::TokenTooLarge,
                format!(
                    "token of {} bytes exceeds the {} byte limit",
                    token.len(),
                    self.policy.max_token_bytes
                ),
            ));
        }
        let jws = jws::parse(token).map_err(|e| Rejection::new(Reason::Malformed, e.0))?;
        let with_header = |mut r: Rejection| {
            r.header = Some(Box::new(jws.header.clone()));
            r
        };
        let Some(alg) = Alg::from_name(&jws.alg) else {
            return Err(with_header(Rejection::new(
                Reason::UnsupportedAlg,
                format!("algorithm {:?} is not supported", jws.alg),
            )));
        };
        if let Some(allowed) = &self.policy.allowed_algs {
            if !allowed.contains(&alg) {
                return Err(with_header(Rejection::new(
                    Reason::AlgNotAllowed,
                    format!("algorithm {alg} is not in the allowed list"),
                )));
            }
        }
        let named: Vec<(usize, &Jwk)> = match &jws.kid {
            Some(kid) => self
                .keys
                .keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.kid.as_deref().is_none_or(|k| k == kid))
                .collect(),
            None => self.keys.keys.iter().enumerate().collect(),
        };
        if named.is_empty() {
            return Err(with_header(Rejection::new(
                Reason::UnknownKid,
                format!(
                    "no key has kid {:?}",
                    jws.kid.as_deref().unwrap_or_default()
                ),
            )));
        }
        let candidates: Vec<usize> = named
            .iter()
            .filter(|(_, k)| k.allows(alg))
            .map(|(i, _)| *i)
            .collect();
        if candidates.is_empty() {
            return Err(with_header(Rejection::new(
                Reason::NoMatchingKey,
                match &jws.kid {
                    Some(kid) => format!("key {kid:?} does not allow {alg}"),
                    None => format!("no configured key allows {alg}"),
                },
            )));
        }
        Ok(Pending {
            jws,
            alg,
            candidates,
        })
    }

    /// Completes verification once the caller knows which candidate key, if any, verified the
    /// signature: then the payload is decoded and the claims are validated at `now`.
    pub fn finish(
        &self,
        pending: Pending,
        verified_by: Option<usize>,
        now: f64,
    ) -> Result<Verified, Rejection> {
        let Pending {
            jws,
            alg,
            candidates,
        } = pending;
        let header = jws.header;
        let reject = |reason, detail: String, claims: Option<Map<String, Value>>| Rejection {
            reason,
            detail,
            header: Some(Box::new(header.clone())),
            claims: claims.map(Box::new),
        };
        let Some(key_index) = verified_by.filter(|i| candidates.contains(i)) else {
            let n = candidates.len();
            return Err(reject(
                Reason::BadSignature,
                format!(
                    "{alg} signature does not verify with {n} candidate key{}",
                    if n == 1 { "" } else { "s" }
                ),
                None,
            ));
        };
        let claims: Map<String, Value> = match serde_json::from_slice(&jws.payload) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(reject(
                    Reason::Malformed,
                    "payload is not a JSON object".into(),
                    None,
                ))
            }
        };
        if let Err((reason, detail)) = claims::validate(&claims, &self.policy.claims, now) {
            return Err(reject(reason, detail, Some(claims)));
        }
        Ok(Verified {
            header,
            claims,
            alg,
            key_index,
        })
    }

    /// The whole verification with pure-Rust signature checks.
    pub fn verify_native(&self, token: &str, now: f64) -> Result<Verified, Rejection> {
        let pending = self.begin(token)?;
        let verified_by = self.check_candidates_native(&pending)?;
        self.finish(pending, verified_by, now)
    }

    /// Tries each candidate key natively; returns the first that verifies. Fails only when the
    /// algorithm is not available in this build.
    pub fn check_candidates_native(&self, pending: &Pending) -> Result<Option<usize>, Rejection> {
        for &i in &pending.candidates {
            let key = &self.keys.keys[i];
            match native::verify(
                pending.alg,
                &key.material,
                &pending.jws.signing_input,
                &pending.jws.signature,
            ) {
                Ok(true) => return Ok(Some(i)),
                Ok(false) | Err(CheckError::BadKey(_)) => {}
                Err(CheckError::Unavailable(alg)) => {
                    return Err(Rejection::new(
                        Reason::ConfigError,
                        format!("{alg} is not available in this build"),
                    ))
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
