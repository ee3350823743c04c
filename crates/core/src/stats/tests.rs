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

mod judge_tests {
    use super::super::judge::{judge, Sample, Thresholds, Verdict};

    /// A small deterministic generator (xorshift64*), so these runs are the same every time.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (v >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Log-normal latency in ms with the given median, rounded to 0.01 ms.
        fn latency(&mut self, median: f64, sigma: f64) -> f64 {
            let (u1, u2) = (self.next().max(1e-12), self.next());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            ((median.ln() + sigma * z).exp() * 100.0).round() / 100.0
        }

        fn latencies(&mut self, n: usize, median: f64) -> Vec<f64> {
            (0..n).map(|_| self.latency(median, 0.4)).collect()
        }

        fn errors(&mut self, n: u64, rate: f64) -> u64 {
            (0..n).filter(|_| self.next() < rate).count() as u64
        }
    }

    fn window(rng: &mut Rng, n: usize, median: f64, error_rate: f64) -> (Vec<f64>, u64) {
        let l = rng.latencies(n, median);
        let e = rng.errors(n as u64, error_rate);
        (l, e)
    }

    fn sample(w: &(Vec<f64>, u64)) -> Sample<'_> {
        Sample {
            latencies_ms: &w.0,
            requests: w.0.len() as u64,
            errors_5xx: w.1,
            errors_4xx: 0,
        }
    }

    /// Verdicts of 50 windows of 1,000 requests per side.
    fn runs(beta_median: f64, beta_errors: f64, base_errors: f64, seed: u64) -> Vec<Verdict> {
        let mut rng = Rng(seed);
        (0..50)
            .map(|_| {
                let b = window(&mut rng, 1000, beta_median, beta_errors);
                let m = window(&mut rng, 1000, 20.0, base_errors);
                judge(&sample(&b), &sample(&m), &Thresholds::default()).verdict
            })
            .collect()
    }

    fn count(v: &[Verdict], which: Verdict) -> usize {
        v.iter().filter(|&&x| x == which).count()
    }

    #[test]
    fn identical_cohorts_do_not_fail() {
        let v = runs(20.0, 0.005, 0.005, 7);
        let (fail, marginal) = (count(&v, Verdict::Fail), count(&v, Verdict::Marginal));
        eprintln!("identical: {fail} fail, {marginal} marginal of 50");
        assert_eq!(fail, 0, "{v:?}");
        // Each of the two one-sided tests at alpha 0.01: about 1 marginal in 50 windows.
        assert!(marginal <= 4, "{v:?}");
    }

    #[test]
    fn a_beta_30_percent_slower_fails_every_window() {
        let v = runs(26.0, 0.0, 0.0, 11);
        assert_eq!(count(&v, Verdict::Fail), 50, "{v:?}");
    }

    #[test]
    fn a_beta_2_percent_slower_is_at_most_marginal() {
        // Significant at these sizes now and then, but inside the 10 % tolerance.
        let v = runs(20.4, 0.0, 0.0, 13);
        assert_eq!(count(&v, Verdict::Fail), 0, "{v:?}");
    }

    #[test]
    fn two_percent_5xx_fails_and_a_single_error_does_not() {
        let v = runs(20.0, 0.02, 0.0, 17);
        assert_eq!(count(&v, Verdict::Fail), 50, "{v:?}");
        let mut rng = Rng(19);
        let b = (rng.latencies(1000, 20.0), 1);
        let m = (rng.latencies(1000, 20.0), 0);
        let j = judge(&sample(&b), &sample(&m), &Thresholds::default());
        assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
    }

    #[test]
    fn low_traffic_is_inconclusive_never_pass() {
        let mut rng = Rng(23);
        let b = window(&mut rng, 50, 40.0, 0.2);
        let m = window(&mut rng, 5000, 20.0, 0.0);
        let j = judge(&sample(&b), &sample(&m), &Thresholds::default());
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(j.reasons[0].contains("too few requests: beta 50"), "{j:?}");
    }

    #[test]
    fn the_numbers_behind_a_verdict() {
        let mut rng = Rng(29);
        let b = window(&mut rng, 1000, 26.0, 0.0);
        let m = window(&mut rng, 1000, 20.0, 0.0);
        let j = judge(&sample(&b), &sample(&m), &Thresholds::default());
        assert_eq!(j.verdict, Verdict::Fail);
        let shift = j.shift_ms.unwrap();
        assert!((5.0..7.0).contains(&shift), "{shift}");
        assert!(j.latency_p.unwrap() < 1e-10);
        assert!(j.beta.p50_ms.unwrap() > j.baseline.p50_ms.unwrap());
        assert!(j.beta.p99_ms.unwrap() > j.beta.p95_ms.unwrap());
        let json = serde_json::to_value(&j).unwrap();
        assert_eq!(json["verdict"], "fail");
        assert!(json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("past the tolerance"));
    }
}
