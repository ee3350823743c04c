use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::Algorithm;
use serde_json::json;

use super::*;
use crate::{BetaPolicy, Verdict};

const K1: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Signs `header.payload` with HS256 under the given raw key.
fn hs256(header: serde_json::Value, payload: serde_json::Value, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = Hs256.sign(&Hs256Key::new(key), input.as_bytes());
    format!(
        "{input}.{}",
        b64(&jwt_compact::AlgorithmSignature::as_bytes(&sig))
    )
}

fn key1() -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(K1).unwrap()
}

fn verifier(jwks: &str) -> Verifier {
    Verifier::new(KeySet::from_json(jwks).unwrap(), VerifyPolicy::default())
}

fn reason(v: &Verifier, token: &str, now: f64) -> Result<(), Reason> {
    v.verify_native(token, now)
        .map(|_| ())
        .map_err(|r| r.reason)
}

#[test]
fn rfc7515_appendix_a1_hs256() {
    // RFC 7515 A.1: the example token, key and payload (exp 1300819380).
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let v = verifier(&format!(r#"{{"kty":"oct","k":"{K1}"}}"#));
    let ok = v.verify_native(token, 1_300_819_000.0).unwrap();
    assert_eq!(ok.claims["iss"], "joe");
    assert_eq!(reason(&v, token, 1_300_819_440.0), Err(Reason::Expired));
    // One flipped bit in the signature.
    let bad = token.replace("dBjftJ", "dBjftK");
    assert_eq!(reason(&v, &bad, 1_300_819_000.0), Err(Reason::BadSignature));
}

#[test]
fn alg_none_and_unknown_algorithms_are_refused() {
    let v = verifier(&format!(r#"{{"kty":"oct","k":"{K1}"}}"#));
    let payload = b64(br#"{"exp":9999999999,"beta":true}"#);
    for alg in ["none", "None", "NONE", "HS257", ""] {
        let token = format!(
            "{}.{payload}.",
            b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes())
        );
        assert_eq!(
            reason(&v, &token, 0.0),
            Err(Reason::UnsupportedAlg),
            "{alg}"
        );
    }
}

#[test]
fn hmac_keyed_with_an_rsa_public_key_is_refused() {
    // The classic key-confusion attack: sign HS256 with the RSA modulus bytes as the secret.
    let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
    let v = verifier(&jwk);
    for secret in [jwk.as_bytes(), n.as_bytes()] {
        let token = hs256(
            json!({"alg":"HS256"}),
            json!({"exp": 9e9, "beta": true}),
            secret,
        );
        assert_eq!(reason(&v, &token, 0.0), Err(Reason::NoMatchingKey));
    }
}

#[test]
fn kid_selection() {
    let other = [9u8; 32];
    let jwks = format!(
        r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{}"}},{{"kty":"oct","kid":"b","k":"{K1}"}}]}}"#,
        b64(&other)
    );
    let v = verifier(&jwks);
    let claims = json!({"exp": 9e9});
    let by_b = hs256(json!({"alg":"HS256","kid":"b"}), claims.clone(), &key1());
    assert_eq!(v.verify_native(&by_b, 0.0).unwrap().key_index, 1);
    // Right key, wrong kid: only key "a" is tried.
    let wrong_kid = hs256(json!({"alg":"HS256","kid":"a"}), claims.clone(), &key1());
    assert_eq!(reason(&v, &wrong_kid, 0.0), Err(Reason::BadSignature));
    let unknown = hs256(json!({"alg":"HS256","kid":"zz"}), claims.clone(), &key1());
    assert_eq!(reason(&v, &unknown, 0.0), Err(Reason::UnknownKid));
    // No kid: every compatible key is tried.
    let no_kid = hs256(json!({"alg":"HS256"}), claims, &other);
    assert_eq!(v.verify_native(&no_kid, 0.0).unwrap().key_index, 0);
}

#[test]
fn key_alg_pins_the_algorithm() {
    let v = verifier(&format!(r#"{{"kty":"oct","alg":"HS512","k":"{K1}"}}"#));
    let token = hs256(json!({"alg":"HS256"}), json!({"exp": 9e9}), &key1());
    assert_eq!(reason(&v, &token, 0.0), Err(Reason::NoMatchingKey));
}

#[test]
fn allow_list_size_limit_and_payload_shape() {
    let jwk = format!(r#"{{"kty":"oct","k":"{K1}"}}"#);
    let strict = Verifier::new(
        KeySet::from_json(&jwk).unwrap(),
        VerifyPolicy {
            allowed_algs: Some(vec![Alg::Rs256]),
            ..VerifyPolicy::default()
        },
    );
    let token = hs256(json!({"alg":"HS256"}), json!({"exp": 9e9}), &key1());
    assert_eq!(reason(&strict, &token, 0.0), Err(Reason::AlgNotAllowed));

    let v = verifier(&jwk);
    let huge = hs256(
        json!({"alg":"HS256"}),
        json!({"exp": 9e9, "pad": "x".repeat(9000)}),
        &key1(),
    );
    assert_eq!(reason(&v, &huge, 0.0), Err(Reason::TokenTooLarge));
    let array = hs256(json!({"alg":"HS256"}), json!([1, 2]), &key1());
    assert_eq!(reason(&v, &array, 0.0), Err(Reason::Malformed));
}

#[test]
fn verdict_from_outcome() {
    let v = verifier(&format!(r#"{{"kty":"oct","k":"{K1}"}}"#));
    let beta = BetaPolicy::default();
    let t = hs256(
        json!({"alg":"HS256"}),
        json!({"exp": 9e9, "beta": true}),
        &key1(),
    );
    let d = Verdict::of(v.verify_native(&t, 0.0).as_ref(), &beta).decision;
    assert_eq!(d.reason, Reason::BetaClaim);
    assert_eq!(
        d.inject,
        vec![("X-RiksTV-Beta".to_string(), "true".to_string())]
    );
    let t = hs256(
        json!({"alg":"HS256"}),
        json!({"exp": 1, "beta": true}),
        &key1(),
    );
    let r = v.verify_native(&t, 1000.0);
    assert!(
        r.as_ref().unwrap_err().claims.is_some(),
        "claims shown once the signature held"
    );
    let d = Verdict::of(r.as_ref(), &beta).decision;
    assert_eq!((d.reason, d.inject.len()), (Reason::Expired, 0));
}
