//! Signature checks in pure Rust through jwt-compact: the native path, and the reference the
//! edge's WebCrypto path is tested against. HMAC is always here (the edge uses it too: it is fast
//! in wasm); RSA, ECDSA and EdDSA only with their crate features.

use jwt_compact::Algorithm;
use jwt_compact::{
    alg::{Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key},
    AlgorithmSignature,
};

use crate::alg::Alg;
use crate::jwk::KeyMaterial;

/// Why a signature could not be checked at all (as opposed to checked and found wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// This build has no pure-Rust implementation of the algorithm.
    Unavailable(Alg),
    /// The key material is not valid for the algorithm (e.g. not a point on the curve).
    BadKey(String),
}

/// Whether this build can check `alg` natively.
pub fn available(alg: Alg) -> bool {
    match alg {
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => true,
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
            cfg!(feature = "rsa")
        }
        Alg::Es256 => cfg!(feature = "p256"),
        Alg::EdDsa => cfg!(feature = "ed25519"),
    }
}

/// Checks `signature` over `message` with `key` under `alg`. The caller has already established
/// that the key allows the algorithm ([`crate::Jwk::allows`]).
pub fn verify(
    alg: Alg,
    key: &KeyMaterial,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CheckError> {
    if !key.signature_fits(alg, signature) {
        return Ok(false);
    }
    match (alg, key) {
        (Alg::Hs256, KeyMaterial::Oct { k }) => {
            Ok(check(&Hs256, &Hs256Key::new(k), message, signature))
        }
        (Alg::Hs384, KeyMaterial::Oct { k }) => {
            Ok(check(&Hs384, &Hs384Key::new(k), message, signature))
        }
        (Alg::Hs512, KeyMaterial::Oct { k }) => {
            Ok(check(&Hs512, &Hs512Key::new(k), message, signature))
        }
        #[cfg(feature = "rsa")]
        (
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
            KeyMaterial::Rsa { n, e },
        ) => {
            use jwt_compact::alg::Rsa;
            let key = rsa::RsaPublicKey::new_with_max_size(
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
                crate::jwk::MAX_RSA_BITS,
            )
            .map_err(|e| CheckError::BadKey(e.to_string()))?;
            Ok(check(&Rsa::with_name(alg.name()), &key, message, signature))
        }
        #[cfg(feature = "p256")]
        (Alg::Es256, KeyMaterial::P256 { x, y }) => {
            let mut sec1 = [0u8; 65];
            sec1[0] = 4;
            sec1[1..33].copy_from_slice(x);
            sec1[33..].copy_from_slice(y);
            let key = p256_key(&sec1)?;
            Ok(check(&jwt_compact::alg::Es256, &key, message, signature))
        }
        #[cfg(feature = "ed25519")]
        (Alg::EdDsa, KeyMaterial::Ed25519 { x }) => {
            use jwt_compact::alg::{Ed25519, VerifyingKey};
            let key = <ed25519_compact::PublicKey as VerifyingKey<Ed25519>>::from_slice(x)
                .map_err(|e| CheckError::BadKey(e.to_string()))?;
            Ok(check(&Ed25519, &key, message, signature))
        }
        (alg, _) if !available(alg) => Err(CheckError::Unavailable(alg)),
        (alg, key) => Err(CheckError::BadKey(format!(
            "{alg} cannot use a {} key",
            key.kty()
        ))),
    }
}

#[cfg(feature = "p256")]
fn p256_key(
    sec1: &[u8],
) -> Result<<jwt_compact::alg::Es256 as Algorithm>::VerifyingKey, CheckError> {
    use jwt_compact::alg::{Es256, VerifyingKey};
    <<Es256 as Algorithm>::VerifyingKey as VerifyingKey<Es256>>::from_slice(sec1)
        .map_err(|e| CheckError::BadKey(e.to_string()))
}

/// Runs one algorithm's verification; a signature of the wrong length or shape is simply invalid.
fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if let Some(len) = A::Signature::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(sig) => alg.verify_signature(&sig, key, message),
        Err(_) => false,
    }
}
