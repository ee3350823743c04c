use serde_json::{json, Map, Value};

use super::*;
use crate::Alg;

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn verified(header: Value, claims: Value) -> Verified {
    Verified {
        header: object(header),
        claims: object(claims),
        alg: Alg::Rs256,
        key_index: 0,
    }
}

fn rejection(reason: Reason, detail: &str, header: Option<Value>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
        header: header.map(|h| Box::new(object(h))),
        claims: None,
    }
}

#[test]
fn fields_in_order_with_nulls_and_an_inject_object() {
    let v = Verdict::main(Reason::NoToken, "no token in the request");
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"cohort":"main","reason":"no_token","detail":"no token in the request","alg":null,"kid":null,"inject":{}}"#
    );
}

#[test]
fn verified_beta_injects_the_beta_header() {
    let v = verified(json!({"alg": "RS256", "kid": "k1"}), json!({"beta": true}));
    assert_eq!(
        serde_json::to_value(Verdict::verified(&v, &BetaPolicy::default())).unwrap(),
        json!({"cohort": "beta", "reason": "beta_claim", "detail": null, "alg": "RS256", "kid": "k1",
               "inject": {"X-RiksTV-Beta": "true"}})
    );
    let custom = BetaPolicy {
        header: "X-Cohort-Beta".into(),
        ..BetaPolicy::default()
    };
    assert_eq!(
        serde_json::to_value(Verdict::verified(&v, &custom)).unwrap()["inject"],
        json!({"X-Cohort-Beta": "true"})
    );
}

#[test]
fn verified_main_without_kid() {
    let v = verified(json!({"alg": "RS256"}), json!({"sub": "x"}));
    assert_eq!(
        serde_json::to_value(Verdict::verified(&v, &BetaPolicy::default())).unwrap(),
        json!({"cohort": "main", "reason": "no_beta_claim", "detail": null, "alg": "RS256", "kid": null,
               "inject": {}})
    );
}

#[test]
fn rejected_reports_alg_and_kid_as_written() {
    let r = rejection(
        Reason::UnsupportedAlg,
        "algorithm \"none\" is not supported",
        Some(json!({"alg": "none", "kid": "k9"})),
    );
    assert_eq!(
        serde_json::to_value(Verdict::rejected(r)).unwrap(),
        json!({"cohort": "main", "reason": "unsupported_alg",
               "detail": "algorithm \"none\" is not supported", "alg": "none", "kid": "k9",
               "inject": {}})
    );
    let unparsed = rejection(Reason::Malformed, "not a compact JWS", None);
    let v = serde_json::to_value(Verdict::rejected(unparsed)).unwrap();
    assert_eq!((&v["alg"], &v["kid"]), (&Value::Null, &Value::Null));
}

#[test]
fn of_is_verified_or_rejected() {
    let beta = BetaPolicy::default();
    let v = verified(json!({"alg": "RS256", "kid": "k1"}), json!({"beta": "yes"}));
    assert_eq!(Verdict::of(Ok(&v), &beta), Verdict::verified(&v, &beta));
    let r = rejection(Reason::BadSignature, "no", Some(json!({"alg": "RS256"})));
    assert_eq!(Verdict::of(Err(&r), &beta), Verdict::rejected(r.clone()));
}

#[test]
fn inject_is_an_object_of_header_to_value() {
    let v = verified(json!({"alg": "RS256"}), json!({"beta": true}));
    let verdict = Verdict::verified(&v, &BetaPolicy::default());
    assert_eq!(
        serde_json::to_value(verdict.inject()).unwrap(),
        json!({"X-RiksTV-Beta": "true"})
    );
}
