//! The judge's verdict on one window: beta against its baseline, from request-level samples.
//!
//! - Latency: a one-sided Mann-Whitney U test (is beta slower?) and the Hodges-Lehmann shift. A
//!   significant result only fails when the shift is past the tolerance, as Kayenta's
//!   "effect size" does: with thousands of requests a 1 ms difference is significant and
//!   harmless.
//! - Errors (5xx): a one-sided Fisher's exact test (does beta fail more often?) and the
//!   difference of the rates, with its own tolerance.
//! - Too few requests on either side is `inconclusive`, never `pass`: sparse data must not read
//!   as a healthy beta.
//!
//! The verdict is the worst of the two: `fail` (significant and past the tolerance), `marginal`
//! (significant, within the tolerance), `pass`.

use serde::Serialize;

use super::{fisher_exact, hodges_lehmann, mann_whitney, Alternative};

/// What one cohort did in the window.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Response times in milliseconds (a uniform sample of the window's requests).
    pub latencies_ms: &'a [f64],
    /// Every request of the window, and those answered 5xx and 4xx.
    pub requests: u64,
    pub errors_5xx: u64,
    pub errors_4xx: u64,
}

/// When a difference counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Significance level of each test (one-sided).
    pub alpha: f64,
    /// Fewer requests than this on either side: `inconclusive`.
    pub min_samples: u64,
    /// A latency shift fails past the larger of these: milliseconds, and a share of the
    /// baseline's median.
    pub latency_tolerance_ms: f64,
    pub latency_tolerance_ratio: f64,
    /// A 5xx rate fails past the baseline's by more than this (0.005: half a point).
    pub error_tolerance: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            alpha: 0.01,
            min_samples: 200,
            latency_tolerance_ms: 1.0,
            latency_tolerance_ratio: 0.10,
            error_tolerance: 0.005,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
    Inconclusive,
}

/// The verdict and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Why, in words (one entry per finding).
    pub reasons: Vec<String>,
    pub beta: Summary,
    pub baseline: Summary,
    /// Hodges-Lehmann shift of beta over the baseline, ms (positive: beta slower).
    pub shift_ms: Option<f64>,
    /// The shift as a share of the baseline's median.
    pub shift_ratio: Option<f64>,
    /// One-sided p-values: beta slower (Mann-Whitney), beta failing more (Fisher).
    pub latency_p: Option<f64>,
    pub error_p: Option<f64>,
    pub thresholds: Thresholds,
}

/// One side's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub samples: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate_5xx: Option<f64>,
    pub error_rate_4xx: Option<f64>,
}

impl Summary {
    fn of(s: &Sample) -> Summary {
        let mut sorted = s.latencies_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rate = |n: u64| (s.requests > 0).then(|| n as f64 / s.requests as f64);
        Summary {
            requests: s.requests,
            samples: sorted.len(),
            p50_ms: quantile(&sorted, 0.50),
            p95_ms: quantile(&sorted, 0.95),
            p99_ms: quantile(&sorted, 0.99),
            error_rate_5xx: rate(s.errors_5xx),
            error_rate_4xx: rate(s.errors_4xx),
        }
    }
}

/// The `q` quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Whether a window is judged against the holdback cohort rather than main requests, where
/// both are counted (a comparison without a configured baseline counts the main requests of
/// beta's twin router and its holdback requests): holdback once it has `min_samples` requests,
/// because users kept off beta on purpose are the cleaner control; main otherwise. With no main
/// requests at all (a holdback baseline) it is holdback.
pub fn holdback_is_baseline(main_requests: u64, holdback_requests: u64, min_samples: u64) -> bool {
    holdback_requests >= min_samples || main_requests == 0
}

/// Judges beta against the baseline.
pub fn judge(beta: &Sample, baseline: &Sample, t: &Thresholds) -> Judgement {
    let mut j = Judgement {
        verdict: Verdict::Pass,
        reasons: Vec::new(),
        beta: Summary::of(beta),
        baseline: Summary::of(baseline),
        shift_ms: None,
        shift_ratio: None,
        latency_p: None,
        error_p: None,
        thresholds: *t,
    };
    let too_few = |s: &Sample| {
        s.requests < t.min_samples || (s.latencies_ms.len() as u64) < t.min_samples.min(s.requests)
    };
    if too_few(beta) || too_few(baseline) {
        j.verdict = Verdict::Inconclusive;
        j.reasons.push(format!(
            "too few requests: beta {}, baseline {} (at least {} each)",
            beta.requests, baseline.requests, t.min_samples
        ));
        return j;
    }
    let mut worst = Verdict::Pass;
    if let (Some(mw), Some(shift)) = (
        mann_whitney(
            beta.latencies_ms,
            baseline.latencies_ms,
            Alternative::Greater,
        ),
        hodges_lehmann(beta.latencies_ms, baseline.latencies_ms),
    ) {
        j.latency_p = Some(mw.p);
        j.shift_ms = Some(shift);
        let median = j.baseline.p50_ms.unwrap_or(0.0);
        j.shift_ratio = (median > 0.0).then(|| shift / median);
        let tolerance = t
            .latency_tolerance_ms
            .max(t.latency_tolerance_ratio * median);
        if mw.p < t.alpha {
            let v = if shift > tolerance {
                Verdict::Fail
            } else {
                Verdict::Marginal
            };
            worst = worst.max(v);
            j.reasons.push(format!(
                "beta is slower (Mann-Whitney p = {:.2e}): shift {shift:.2} ms {} the tolerance of {tolerance:.2} ms",
                mw.p,
                if v == Verdict::Fail { "past" } else { "within" }
            ));
        }
    }
    let ok = |s: &Sample| s.requests - s.errors_5xx.min(s.requests);
    let f = fisher_exact(
        [
            [beta.errors_5xx, ok(beta)],
            [baseline.errors_5xx, ok(baseline)],
        ],
        Alternative::Greater,
    );
    j.error_p = Some(f.p);
    if f.p < t.alpha {
        let diff = j.beta.error_rate_5xx.unwrap_or(0.0) - j.baseline.error_rate_5xx.unwrap_or(0.0);
        let v = if diff > t.error_tolerance {
            Verdict::Fail
        } else {
            Verdict::Marginal
        };
        worst = worst.max(v);
        j.reasons.push(format!(
            "beta answers 5xx more often (Fisher p = {:.2e}): {:.2}% against {:.2}%, {} the tolerance of {:.2} points",
            f.p,
            100.0 * j.beta.error_rate_5xx.unwrap_or(0.0),
            100.0 * j.baseline.error_rate_5xx.unwrap_or(0.0),
            if v == Verdict::Fail { "past" } else { "within" },
            100.0 * t.error_tolerance
        ));
    }
    j.verdict = worst;
    if j.reasons.is_empty() {
        j.reasons
            .push("no significant difference in latency or 5xx rate".into());
    }
    j
}
