//! `betaroute compare --prometheus URL`: the judge's verdict for a fleet of router replicas,
//! from the figures a Prometheus server scraped from all of them
//! (`betaroute_judge_latency_seconds` and `betaroute_judge_requests_total`, summed over the
//! replicas' `instance`s) instead of one process's memory.
//!
//! The same statistics as the router's own judge (core's `stats::judge`), on the window's
//! increase of each bucket: a sample at the buckets' middles (`stats::grouped`), so the latency
//! shift is known to about one bucket (19 %), and counts as Prometheus extrapolates them
//! (rounded). It reads; it never turns beta off (each replica's judge does that for its own
//! traffic).

use std::time::Duration;

use betaroute_core::stats::grouped;
use betaroute_core::stats::judge::{holdback_is_baseline, judge, Sample, Thresholds};
use serde_json::{json, Value};

use super::error::CliError;

/// Latencies per side the verdict is computed on, as the router's judge.
const JUDGED: usize = 1000;

/// One side's figures over the window, summed over the replicas.
#[derive(Debug, Default)]
struct SideFigures {
    /// `(le, cumulative count)` per bucket.
    buckets: Vec<(f64, f64)>,
    requests: u64,
    errors_5xx: u64,
    errors_4xx: u64,
}

/// Every comparison the server knows (or the one named), judged over `window`.
pub async fn compare(
    base: &str,
    only: Option<&str>,
    window: Duration,
    t: &Thresholds,
) -> Result<Vec<Value>, CliError> {
    let names = match only {
        Some(n) => vec![n.to_owned()],
        None => {
            let found = query(
                base,
                "count by (comparison) (betaroute_judge_requests_total)",
            )
            .await?;
            let mut names: Vec<String> = found
                .iter()
                .filter_map(|r| r["metric"]["comparison"].as_str().map(str::to_owned))
                .collect();
            names.sort();
            names
        }
    };
    let mut out = Vec::new();
    for name in names {
        out.push(one(base, &name, window, t).await?);
    }
    Ok(out)
}

async fn one(base: &str, name: &str, window: Duration, t: &Thresholds) -> Result<Value, CliError> {
    let sel = format!(
        "comparison=\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let w = format!("{}ms", window.as_millis().max(1));
    let mut sides: [SideFigures; 3] = Default::default();
    let index = |r: &Value| match r["metric"]["side"].as_str() {
        Some("beta") => Some(0),
        Some("baseline") => Some(1),
        Some("holdback") => Some(2),
        _ => None,
    };
    let latency = query(
        base,
        &format!(
            "sum by (side, le) (increase(betaroute_judge_latency_seconds_bucket{{{sel}}}[{w}]))"
        ),
    )
    .await?;
    for r in &latency {
        let (Some(i), Some(le), Some(v)) = (index(r), r["metric"]["le"].as_str(), value(r)) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        if !le.is_nan() {
            sides[i].buckets.push((le, v));
        }
    }
    let requests = query(
        base,
        &format!("sum by (side, code) (increase(betaroute_judge_requests_total{{{sel}}}[{w}]))"),
    )
    .await?;
    for r in &requests {
        let (Some(i), Some(v)) = (index(r), value(r)) else {
            continue;
        };
        let n = v.round().max(0.0) as u64;
        let s = &mut sides[i];
        s.requests += n;
        match r["metric"]["code"].as_str() {
            Some("5xx") => s.errors_5xx += n,
            Some("4xx") => s.errors_4xx += n,
            _ => {}
        }
    }
    let replicas = query(
        base,
        &format!("count(count by (instance) (betaroute_judge_requests_total{{{sel}}}))"),
    )
    .await?;
    let replicas = replicas.first().and_then(value).unwrap_or(0.0) as u64;
    let off = query(base, "count(betaroute_beta_enabled == 0)").await?;
    let off = off.first().and_then(value).unwrap_or(0.0) as u64;
    let [beta, main, holdback] = &sides;
    let (against, baseline) =
        if holdback_is_baseline(main.requests, holdback.requests, t.min_samples) {
            ("holdback", holdback)
        } else {
            ("baseline", main)
        };
    let (b, m) = (
        grouped::expand(&beta.buckets, JUDGED),
        grouped::expand(&baseline.buckets, JUDGED),
    );
    let j = judge(&sample(beta, &b), &sample(baseline, &m), t);
    Ok(json!({
        "name": name,
        "source": "prometheus",
        "window_ms": window.as_millis() as u64,
        "replicas": replicas,
        "against": against,
        "beta_off_replicas": off,
        "tripped": (off > 0).then(|| json!({"reason": format!("beta is off on {off} replica(s)")})),
        "latest": j,
    }))
}

fn sample<'a>(s: &SideFigures, latencies_ms: &'a [f64]) -> Sample<'a> {
    Sample {
        latencies_ms,
        requests: s.requests,
        errors_5xx: s.errors_5xx,
        errors_4xx: s.errors_4xx,
    }
}

/// The number in one instant-vector result (`"value": [time, "number"]`).
fn value(r: &Value) -> Option<f64> {
    r["value"][1]
        .as_str()?
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

/// An instant query through Prometheus's HTTP API (`GET /api/v1/query`): the result vector.
async fn query(base: &str, promql: &str) -> Result<Vec<Value>, CliError> {
    let url = format!("{base}/api/v1/query?query={}", encode(promql));
    // Prometheus answers a bad query with 4xx and a JSON error: read it either way.
    let (status, bytes) = super::compare::get(&url, Duration::from_secs(10))
        .await
        .map_err(|e| match e {
            CliError::Runtime(m) => CliError::Runtime(m.replacen(&url, base, 1)),
            other => other,
        })?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| {
        CliError::Runtime(format!(
            "{base} answered {status} with no Prometheus API JSON"
        ))
    })?;
    if body["status"] != "success" {
        return Err(CliError::Runtime(format!(
            "{base}: query {promql:?} failed: {} {}",
            body["errorType"].as_str().unwrap_or("?"),
            body["error"].as_str().unwrap_or("")
        )));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Percent-encoding for a query parameter (RFC 3986: all but the unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            super::encode("sum by (le) (x{a=\"b\"}[5s])"),
            "sum%20by%20%28le%29%20%28x%7Ba%3D%22b%22%7D%5B5s%5D%29"
        );
    }
}
