use serde_json::{json, Value};

use super::*;

fn vectors() -> Value {
    serde_json::from_str(VECTORS_JSON).expect("vectors.json is JSON")
}

#[test]
fn bucket_vectors() {
    for v in vectors()["buckets"].as_array().unwrap() {
        let got = bucket(
            v["prefix"].as_str().unwrap(),
            v["salt"].as_str().unwrap(),
            v["subject"].as_str().unwrap(),
        );
        assert_eq!(u64::from(got), v["bucket"].as_u64().unwrap(), "{v}");
    }
}

#[test]
fn decision_vectors() {
    let beta = BetaPolicy::default();
    for v in vectors()["decisions"].as_array().unwrap() {
        let policy = Policy::parse(&v["policy"].to_string()).unwrap();
        let d = policy.decide(v["claims"].as_object().unwrap(), &beta);
        let got = serde_json::to_value(&d).unwrap();
        let name = v["name"].as_str().unwrap();
        assert_eq!(got["cohort"], v["cohort"], "{name}: {got}");
        assert_eq!(got["reason"], v["reason"], "{name}: {got}");
        assert_eq!(got["inject"], v["inject"], "{name}: {got}");
    }
}

#[test]
fn holdback_share_of_eligible_users() {
    let beta = BetaPolicy::default();
    let policy = Policy::parse(r#"{"percent": 40, "holdback": 25}"#).unwrap();
    let (mut beta_n, mut held) = (0usize, 0usize);
    for i in 0..100_000 {
        let claims = json!({ "sub": format!("{i}@example.com") });
        match policy.decide(claims.as_object().unwrap(), &beta).cohort {
            Cohort::Beta => beta_n += 1,
            Cohort::Holdback => held += 1,
            Cohort::Main => {}
        }
    }
    let eligible = (beta_n + held) as f64;
    assert!(
        (eligible / 1000.0 - 40.0).abs() <= 0.2,
        "eligible {eligible}"
    );
    assert!(
        (held as f64 / eligible * 100.0 - 25.0).abs() <= 0.5,
        "held {held} of {eligible}"
    );
}

#[test]
fn details_explain_without_the_subject() {
    let beta = BetaPolicy::default();
    let p = Policy::parse(r#"{"percent": 10, "holdback": 50}"#).unwrap();
    let d = p.decide(json!({"sub": "bob"}).as_object().unwrap(), &beta);
    let detail = d.detail.unwrap();
    assert!(
        detail.contains("eligible by rollout_bucket")
            && detail.contains("holdback bucket 3804 is below 5000"),
        "{detail}"
    );
    assert!(!detail.contains("bob"));
    assert_eq!(
        d.buckets,
        Some(Buckets {
            rollout: 458,
            holdback: 3804
        })
    );
}

#[test]
fn header_values_that_cannot_be_sent_are_not() {
    let beta = BetaPolicy::default();
    let p = Policy::parse(
        r#"{"headers": {"a": "X-A", "b": "X-B", "c": "X-C", "d": "X-D", "e": "X-E", "f": "X-F"}}"#,
    )
    .unwrap();
    let claims = json!({"a": "ok", "b": 7, "c": "two\nlines", "d": ["x"], "e": null, "f": "Ø"});
    let d = p.decide(claims.as_object().unwrap(), &beta);
    assert_eq!(
        d.inject,
        [
            ("X-A".to_owned(), "ok".to_owned()),
            ("X-B".to_owned(), "7".to_owned())
        ]
    );
}

#[test]
fn the_flag_service_stands_in_for_the_beta_claim() {
    let beta = BetaPolicy::default();
    let p = Policy::parse(r#"{"deny": ["mallory"]}"#).unwrap();
    let regex = rule::compiled(&p.rules);
    let with = |claims: Value, flag| {
        p.decide_matching(claims.as_object().unwrap(), &beta, &regex, flag)
            .reason_text()
            .into_owned()
    };
    assert_eq!(with(json!({"sub": "a"}), Some(true)), "flag_service");
    assert_eq!(
        with(json!({"sub": "a", "beta": true}), Some(false)),
        "no_beta_claim",
        "a stale claim"
    );
    assert_eq!(
        with(json!({"sub": "a", "beta": true}), None),
        "beta_claim",
        "no answer: the claim"
    );
    assert_eq!(with(json!({"sub": "mallory"}), Some(true)), "denied");
    let none = beta.decide_with(
        None,
        json!({"sub": "a"}).as_object().unwrap(),
        &|_, _| false,
        Some(true),
    );
    assert_eq!(none.reason_text(), "flag_service");
}
