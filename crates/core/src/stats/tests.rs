use serde_json::Value;

use super::*;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference.json")).expect("reference.json is JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Equal within a relative tolerance (or an absolute one near 0).
fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-12) || (got - want).abs() < 1e-15
}

const ALTERNATIVES: [(&str, Alternative); 3] = [
    ("two-sided", Alternative::TwoSided),
    ("greater", Alternative::Greater),
    ("less", Alternative::Less),
];

#[test]
fn mann_whitney_matches_scipy() {
    for case in reference()["mann_whitney"].as_array().unwrap() {
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        let name = case["name"].as_str().unwrap();
        for (key, alt) in ALTERNATIVES {
            let got = mann_whitney(&x, &y, alt).unwrap();
            let want = &case[key];
            assert_eq!(got.u, want["u"].as_f64().unwrap(), "{name} {key}: U");
            let p = want["p"].as_f64().unwrap();
            assert!(
                close(got.p, p, 1e-9),
                "{name} {key}: p {} vs scipy {p}",
                got.p
            );
        }
        let hl = hodges_lehmann(&x, &y).unwrap();
        let want = case["hodges_lehmann"].as_f64().unwrap();
        assert!((hl - want).abs() < 1e-9, "{name}: HL {hl} vs {want}");
    }
}

#[test]
fn fisher_matches_scipy() {
    for case in reference()["fisher_exact"].as_array().unwrap() {
        let t = case["table"].as_array().unwrap();
        let cell = |r: usize, c: usize| t[r][c].as_u64().unwrap();
        let table = [[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]];
        for (key, alt) in ALTERNATIVES {
            let got = fisher_exact(table, alt);
            let want = &case[key];
            let p = want["p"].as_f64().unwrap();
            assert!(
                close(got.p, p, 1e-9),
                "{table:?} {key}: p {} vs scipy {p}",
                got.p
            );
            match &want["odds_ratio"] {
                Value::String(s) if s == "nan" => assert!(got.odds_ratio.is_nan(), "{table:?}"),
                Value::String(s) if s == "inf" => {
                    assert!(got.odds_ratio.is_infinite(), "{table:?}")
                }
                v => assert!(
                    close(got.odds_ratio, v.as_f64().unwrap(), 1e-12),
                    "{table:?}"
                ),
            }
        }
    }
}

#[test]
fn empty_samples_have_no_test() {
    assert!(mann_whitney(&[], &[1.0], Alternative::TwoSided).is_none());
    assert!(hodges_lehmann(&[1.0], &[]).is_none());
}
