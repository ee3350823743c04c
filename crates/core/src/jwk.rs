//! Verification keys from a JWKS (`{"keys":[...]}`) or a single JWK (RFC 7517, RFC 7518 section 6,
//! RFC 8037).
//!
//! Parsing decides once, at load time, which algorithms each key may verify. A key that can never
//! be used safely (wrong `use`, `key_ops` without `verify`, too weak, unsupported curve) is kept
//! out of the usable set and reported, so an operator sees why a key is ignored.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use crate::alg::{Alg, Family};

/// RFC 7518 3.3: RSA keys of 2048 bits or larger MUST be used.
pub const MIN_RSA_BITS: usize = 2048;
/// Upper bound on RSA moduli, to bound the cost of a verification a key set can cause.
pub const MAX_RSA_BITS: usize = 8192;

/// Public key material, decoded from base64url.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// `kty: oct`: an HMAC secret.
    Oct { k: Vec<u8> },
    /// `kty: RSA`: modulus and public exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `kty: EC`, `crv: P-256`: affine coordinates, 32 bytes each.
    P256 { x: Vec<u8>, y: Vec<u8> },
    /// `kty: OKP`, `crv: Ed25519`: the 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

impl fmt::Debug for KeyMaterial {
    // Never print secrets: HMAC keys show their length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Oct { k } => write!(f, "Oct({} bytes)", k.len()),
            KeyMaterial::Rsa { n, .. } => write!(f, "Rsa({} bits)", bit_len(n)),
            KeyMaterial::P256 { .. } => f.write_str("P256"),
            KeyMaterial::Ed25519 { .. } => f.write_str("Ed25519"),
        }
    }
}

impl KeyMaterial {
    pub fn kty(&self) -> &'static str {
        match self {
            KeyMaterial::Oct { .. } => "oct",
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::P256 { .. } => "EC",
            KeyMaterial::Ed25519 { .. } => "OKP",
        }
    }

    /// Whether `signature` has the shape `alg` requires of a signature by this key, checked before
    /// any cryptography on every path (native and WebCrypto), so that both refuse the same inputs:
    /// ES256 (raw r||s, RFC 7518 3.4) and Ed25519 signatures are 64 bytes; an RSA signature is
    /// exactly as long as the modulus and, as an integer, below it (RFC 8017 8.2.2 step 1 and
    /// RSAVP1 step 1: a valid signature plus n is the same value modulo n, and must not verify).
    pub fn signature_fits(&self, alg: Alg, signature: &[u8]) -> bool {
        match (self, alg.family()) {
            (KeyMaterial::Rsa { n, .. }, Family::RsaPkcs1 | Family::RsaPss) => {
                let n = &n[n.iter().position(|&b| b != 0).unwrap_or(n.len())..];
                // Same length, so big-endian byte order is numeric order.
                signature.len() == n.len() && signature < n
            }
            (_, Family::Ecdsa | Family::EdDsa) => signature.len() == 64,
            _ => true,
        }
    }

    /// Whether this material may verify `alg` at all (type and strength), before any `alg` pin.
    pub fn supports(&self, alg: Alg) -> bool {
        match (self, alg.family()) {
            // RFC 7518 3.2: a key of the same size as the hash output or larger MUST be used.
            (KeyMaterial::Oct { k }, Family::Hmac) => {
                k.len() >= alg.hash_len().unwrap_or(usize::MAX)
            }
            (KeyMaterial::Rsa { .. }, Family::RsaPkcs1 | Family::RsaPss) => true,
            (KeyMaterial::P256 { .. }, Family::Ecdsa) => true,
            (KeyMaterial::Ed25519 { .. }, Family::EdDsa) => true,
            _ => false,
        }
    }

    /// The public members of this key as a JWK object (no `d`, no secrets for asymmetric keys;
    /// `k` for HMAC keys, which are secret by nature). Used to import keys into WebCrypto.
    pub fn to_jwk_members(&self) -> Vec<(&'static str, String)> {
        let b64 = Base64UrlUnpadded::encode_string;
        match self {
            KeyMaterial::Oct { k } => vec![("kty", "oct".into()), ("k", b64(k))],
            KeyMaterial::Rsa { n, e } => vec![("kty", "RSA".into()), ("n", b64(n)), ("e", b64(e))],
            KeyMaterial::P256 { x, y } => vec![
                ("kty", "EC".into()),
                ("crv", "P-256".into()),
                ("x", b64(x)),
                ("y", b64(y)),
            ],
            KeyMaterial::Ed25519 { x } => {
                vec![
                    ("kty", "OKP".into()),
                    ("crv", "Ed25519".into()),
                    ("x", b64(x)),
                ]
            }
        }
    }
}

/// One usable verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The algorithm pinned by the key's `alg` member, if any.
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: the key's own `alg` pins it,
    /// otherwise its type and strength decide.
    pub fn allows(&self, alg: Alg) -> bool {
        self.alg.is_none_or(|pinned| pinned == alg) && self.material.supports(alg)
    }
}

/// Why a key set, or one key in it, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The document is not JSON.
    Json { message: String },
    /// The document is JSON but neither a JWKS nor a JWK.
    NotAKeySet,
    /// No key in the set is usable; every key's reason is listed.
    NoUsableKey { skipped: Vec<SkippedKey> },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Json { message } => write!(f, "keys are not valid JSON: {message}"),
            KeyError::NotAKeySet => f.write_str(
                "keys must be a JWKS object {\"keys\":[...]} or a single JWK object with \"kty\"",
            ),
            KeyError::NoUsableKey { skipped } if skipped.is_empty() => {
                f.write_str("the key set holds no keys")
            }
            KeyError::NoUsableKey { skipped } => {
                f.write_str("no usable key: ")?;
                for (i, s) in skipped.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// A key that was left out of the set, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array (0 for a single JWK).
    pub index: usize,
    pub kid: Option<String>,
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key #{}", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid {kid:?})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The usable keys of a JWKS, plus the keys left out and why.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parses a JWKS or a single JWK. Fails when the document is malformed or when no key in it
    /// is usable; individual unusable keys are listed in `skipped`.
    pub fn from_json(text: &str) -> Result<KeySet, KeyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| KeyError::Json {
            message: e.to_string(),
        })?;
        let Value::Object(obj) = doc else {
            return Err(KeyError::NotAKeySet);
        };
        let mut set = KeySet::default();
        match obj.get("keys") {
            Some(Value::Array(keys)) => {
                for (index, key) in keys.iter().enumerate() {
                    set.add(index, key);
                }
            }
            Some(_) => return Err(KeyError::NotAKeySet),
            None if obj.contains_key("kty") => set.add(0, &Value::Object(obj)),
            None => return Err(KeyError::NotAKeySet),
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoUsableKey {
                skipped: set.skipped,
            });
        }
        Ok(set)
    }

    fn add(&mut self, index: usize, key: &Value) {
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
        match parse_key(key) {
            Ok(jwk) => self.keys.push(jwk),
            Err(reason) => self.skipped.push(SkippedKey { index, kid, reason }),
        }
    }
}

/// Parses one JWK object into a usable key, or says why it is not usable.
fn parse_key(key: &Value) -> Result<Jwk, String> {
    let Value::Object(m) = key else {
        return Err("not a JSON object".into());
    };
    let kid = match m.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("\"kid\" is not a string".into()),
    };
    match m.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => return Err(format!("\"use\" is {other}, not \"sig\"")),
    }
    match m.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op == "verify") => {}
        Some(_) => return Err("\"key_ops\" does not include \"verify\"".into()),
    }
    let alg = match m.get("alg") {
        None => None,
        Some(Value::String(name)) => {
            Some(Alg::from_name(name).ok_or_else(|| format!("unsupported \"alg\" {name:?}"))?)
        }
        Some(_) => return Err("\"alg\" is not a string".into()),
    };
    let kty = str_member(m, "kty")?;
    let material = match kty {
        "oct" => KeyMaterial::Oct {
            k: b64_member(m, "k")?,
        },
        "RSA" => {
            let n = strip_leading_zeros(b64_member(m, "n")?);
            let e = strip_leading_zeros(b64_member(m, "e")?);
            let bits = bit_len(&n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA modulus of {bits} bits is under the {MIN_RSA_BITS} bits RFC 7518 requires"
                ));
            }
            if bits > MAX_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is over {MAX_RSA_BITS}"));
            }
            // An even or tiny exponent is never a valid RSA public key.
            if e.last().is_none_or(|b| b & 1 == 0) || (e.len() == 1 && e[0] < 3) {
                return Err("RSA public exponent is invalid".into());
            }
            KeyMaterial::Rsa { n, e }
        }
        "EC" => match str_member(m, "crv")? {
            "P-256" => {
                let x = b64_member(m, "x")?;
                let y = b64_member(m, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err("P-256 coordinates must be 32 bytes each".into());
                }
                KeyMaterial::P256 { x, y }
            }
            crv => return Err(format!("unsupported EC curve {crv:?} (only P-256)")),
        },
        "OKP" => match str_member(m, "crv")? {
            "Ed25519" => {
                let x = b64_member(m, "x")?;
                if x.len() != 32 {
                    return Err("Ed25519 public key must be 32 bytes".into());
                }
                KeyMaterial::Ed25519 { x }
            }
            crv => return Err(format!("unsupported OKP curve {crv:?} (only Ed25519)")),
        },
        other => return Err(format!("unsupported \"kty\" {other:?}")),
    };
    if let Some(alg) = alg {
        if !material.supports(alg) {
            return Err(match material {
                KeyMaterial::Oct { ref k } if alg.family() == Family::Hmac => format!(
                    "{alg} needs an HMAC key of at least {} bytes, this one has {}",
                    alg.hash_len().unwrap_or(0),
                    k.len()
                ),
                _ => format!(
                    "\"alg\" {alg} does not fit a key of type {}",
                    material.kty()
                ),
            });
        }
    } else if !Alg::ALL.iter().any(|&a| material.supports(a)) {
        // Only HMAC keys can be too weak for every algorithm of their family.
        return Err("HMAC key is shorter than 32 bytes (RFC 7518 3.2)".into());
    }
    Ok(Jwk { kid, alg, material })
}

fn str_member<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("\"{name}\" is not a string")),
        None => Err(format!("\"{name}\" is missing")),
    }
}

fn b64_member(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let s = str_member(m, name)?;
    Base64UrlUnpadded::decode_vec(s).map_err(|_| format!("\"{name}\" is not base64url"))
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rsa_signatures_must_be_modulus_sized_and_below_the_modulus() {
        use crate::alg::Alg;
        // n = 0x00 c0 01 00 (a leading zero byte is not part of the length).
        let key = super::KeyMaterial::Rsa {
            n: vec![0, 0xc0, 0x01, 0x00],
            e: vec![1, 0, 1],
        };
        for alg in [Alg::Rs256, Alg::Ps512] {
            assert!(key.signature_fits(alg, &[0xc0, 0x00, 0xff]));
            assert!(key.signature_fits(alg, &[0x00, 0x00, 0x01]));
            assert!(!key.signature_fits(alg, &[0xc0, 0x01, 0x00]), "s = n");
            assert!(!key.signature_fits(alg, &[0xc0, 0x01, 0x01]), "s > n");
            assert!(!key.signature_fits(alg, &[0xff, 0xff, 0xff]), "s > n");
            assert!(!key.signature_fits(alg, &[0x00, 0x00]), "short");
            assert!(!key.signature_fits(alg, &[0x00, 0x00, 0x00, 0x01]), "long");
        }
        let ec = super::KeyMaterial::P256 {
            x: vec![0; 32],
            y: vec![0; 32],
        };
        assert!(ec.signature_fits(Alg::Es256, &[1; 64]));
        assert!(!ec.signature_fits(Alg::Es256, &[1; 63]));
    }

    use super::*;

    const RSA_N_2048: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn jwks_and_single_jwk() {
        let set = KeySet::from_json(
            r#"{"keys":[{"kty":"oct","kid":"a","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        )
        .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("a"));
        let one = KeySet::from_json(&format!(r#"{{"kty":"RSA","n":"{RSA_N_2048}","e":"AQAB"}}"#))
            .unwrap();
        assert!(one.keys[0].allows(Alg::Rs256) && one.keys[0].allows(Alg::Ps512));
        assert!(
            !one.keys[0].allows(Alg::Hs256),
            "an RSA key never verifies HMAC"
        );
    }

    #[test]
    fn unusable_keys_are_skipped_with_a_reason() {
        let cases = [
            (r#"{"kty":"oct","k":"AAAA"}"#, "shorter than 32 bytes"),
            (
                r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                "not \"sig\"",
            ),
            (
                r#"{"kty":"oct","key_ops":["sign"],"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                "key_ops",
            ),
            (
                r#"{"kty":"oct","alg":"HS512","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                "at least 64 bytes",
            ),
            (
                r#"{"kty":"oct","alg":"none","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                "unsupported \"alg\"",
            ),
            (
                r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
                "under the 2048 bits",
            ),
            (
                r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#,
                "unsupported EC curve",
            ),
            (
                r#"{"kty":"OKP","crv":"X25519","x":"AA"}"#,
                "unsupported OKP curve",
            ),
        ];
        let pinned_hmac = format!(r#"{{"kty":"RSA","alg":"HS256","n":"{RSA_N_2048}","e":"AQAB"}}"#);
        let cases = cases.into_iter().map(|(j, w)| (j.to_string(), w));
        for (jwk, want) in cases.chain([(pinned_hmac, "does not fit")]) {
            let jwk = jwk.as_str();
            match KeySet::from_json(jwk) {
                Err(KeyError::NoUsableKey { skipped }) => {
                    assert!(
                        skipped[0].reason.contains(want),
                        "{jwk}: {}",
                        skipped[0].reason
                    )
                }
                other => panic!("{jwk}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_documents() {
        assert!(matches!(KeySet::from_json("{"), Err(KeyError::Json { .. })));
        assert!(matches!(KeySet::from_json("[]"), Err(KeyError::NotAKeySet)));
        assert!(matches!(
            KeySet::from_json(r#"{"keys":{}}"#),
            Err(KeyError::NotAKeySet)
        ));
        assert!(matches!(
            KeySet::from_json(r#"{"keys":[]}"#),
            Err(KeyError::NoUsableKey { .. })
        ));
    }

    #[test]
    fn hmac_key_length_limits_algorithms() {
        let k48 = Base64UrlUnpadded::encode_string(&[7u8; 48]);
        let set = KeySet::from_json(&format!(r#"{{"kty":"oct","k":"{k48}"}}"#)).unwrap();
        let key = &set.keys[0];
        assert!(key.allows(Alg::Hs256) && key.allows(Alg::Hs384));
        assert!(!key.allows(Alg::Hs512));
    }
}
