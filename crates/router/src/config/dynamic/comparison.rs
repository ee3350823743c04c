//! betaroute's `http.comparisons.NAME`: beta against its baseline, judged every `interval` over
//! the last `window` of requests (the judge is `proxy::judge`).
//!
//! ```yaml
//! http:
//!   comparisons:
//!     api:
//!       beta: api-beta          # a router or a service (qualified by provider if need be)
//!       baseline: api-main      # a router or a service, or `holdback`; left out: the router
//!                               # with beta's rule minus Header(..., `true`), or its holdback
//!       interval: 10s
//!       window: 1m
//!       minSamples: 200
//!       alpha: 0.01
//!       latencyTolerance: 1ms   # a shift fails past the larger of these two
//!       latencyToleranceRatio: 0.1
//!       errorTolerance: 0.005   # 5xx rate difference (0.005: half a point)
//!       failureThreshold: 3     # consecutive failed verdicts that turn beta off
//!       webhook: https://hooks.example.com/betaroute
//! ```

use std::time::Duration;

use betaroute_core::stats::judge::Thresholds;

use super::drafts::ComparisonDraft;
use super::spec::{Baseline, ComparisonSpec};
use crate::config::read::{Cx, Obj};
use crate::config::source::Entry;

const KEYS: &[&str] = &[
    "beta",
    "baseline",
    "interval",
    "window",
    "minSamples",
    "alpha",
    "latencyTolerance",
    "latencyToleranceRatio",
    "errorTolerance",
    "failureThreshold",
    "webhook",
];

pub fn read(cx: &mut Cx, e: &Entry) -> Option<ComparisonDraft> {
    let name = &e.key;
    let mut o = Obj::of(cx, &e.value, format!("comparison {name}"))?;
    let beta = o.string(cx, "beta");
    if beta.is_none() {
        cx.error(
            e.at,
            format!("comparison {name}: beta (a router or service) is required"),
        );
    }
    let baseline = match o.string(cx, "baseline").as_deref() {
        Some("holdback") => Some(Baseline::Holdback),
        Some(b) => Some(Baseline::Named(b.to_owned())),
        None => Some(Baseline::Default(None)),
    };
    let defaults = Thresholds::default();
    let interval = o
        .duration(cx, "interval")
        .unwrap_or(Duration::from_secs(10));
    let window = o.duration(cx, "window").unwrap_or(Duration::from_secs(60));
    if interval < Duration::from_millis(100) {
        cx.error(
            o.at_key("interval"),
            format!("comparison {name}: interval must be at least 100ms"),
        );
    }
    if window < interval {
        cx.error(
            o.at_key("window"),
            format!("comparison {name}: window must be at least the interval"),
        );
    }
    let share = |cx: &mut Cx, o: &mut Obj, key: &str, default: f64, max: f64| {
        let v = o.number::<f64>(cx, key).unwrap_or(default);
        if !(v > 0.0 && v <= max) {
            cx.error(
                o.at_key(key),
                format!("comparison {name}: {key} must be more than 0 and at most {max}"),
            );
        }
        v
    };
    let alpha = share(cx, &mut o, "alpha", defaults.alpha, 0.5);
    let ratio = share(
        cx,
        &mut o,
        "latencyToleranceRatio",
        defaults.latency_tolerance_ratio,
        10.0,
    );
    let errors = share(cx, &mut o, "errorTolerance", defaults.error_tolerance, 1.0);
    let tolerance = o
        .duration(cx, "latencyTolerance")
        .map_or(defaults.latency_tolerance_ms, |d| d.as_secs_f64() * 1000.0);
    let min_samples = o
        .number::<u64>(cx, "minSamples")
        .unwrap_or(defaults.min_samples);
    if min_samples < 20 {
        cx.error(o.at_key("minSamples"), format!("comparison {name}: minSamples must be at least 20 (the tests' normal approximation needs them)"));
    }
    let failure_threshold = o.number::<u32>(cx, "failureThreshold").unwrap_or(3);
    if failure_threshold == 0 {
        cx.error(
            o.at_key("failureThreshold"),
            format!("comparison {name}: failureThreshold must be at least 1"),
        );
    }
    let webhook = o.string(cx, "webhook");
    if let Some(w) = &webhook {
        if !(w.starts_with("http://") || w.starts_with("https://"))
            || w.parse::<http::Uri>().is_err()
        {
            cx.error(
                o.at_key("webhook"),
                // Not the URL itself: webhook URLs carry their secrets.
                format!("comparison {name}: webhook must be an http:// or https:// URL"),
            );
        }
    }
    o.finish(cx, KEYS);
    Some(ComparisonDraft {
        name: name.clone(),
        at: e.at,
        spec: ComparisonSpec {
            name: name.clone(),
            beta: beta?,
            baseline: baseline?,
            interval,
            window,
            thresholds: Thresholds {
                alpha,
                min_samples,
                latency_tolerance_ms: tolerance,
                latency_tolerance_ratio: ratio,
                error_tolerance: errors,
            },
            failure_threshold,
            webhook,
        },
    })
}
