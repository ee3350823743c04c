//! The judge: request-level statistics per comparison (`http.comparisons`), a verdict every
//! `interval` over the last `window` (core's `stats::judge`), and the beta kill switch turned
//! off after `failureThreshold` consecutive failed verdicts. It never turns beta back on: a
//! person does (`PUT /api/cohorts/beta` or `DELETE`), and the judge then starts counting again.
//!
//! Statistics are kept per slot of one `interval` and side (beta, baseline, holdback): request
//! and error counts, every latency in an HDR histogram (1 % error; the window's p50/p95/p99 are
//! over every request), and a uniform sample (reservoir) of at most [`RESERVOIR`] latencies. A
//! verdict merges the slots of the window and tests at most [`JUDGED`] latencies per side
//! (Hodges-Lehmann costs the product of the two sizes).
//!
//! Each comparison also counts its sides since start, for Prometheus
//! (`betaroute_judge_latency_seconds`, `betaroute_judge_requests_total`): summed over router
//! replicas, they are what `betaroute compare --prometheus` judges a fleet by.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use betaroute_core::stats::grouped;
use betaroute_core::stats::judge::{holdback_is_baseline, judge, Judgement, Sample, Verdict};
use betaroute_core::Cohort;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::config::dynamic::{Baseline, ComparisonSpec};

/// Latencies kept per side and slot.
pub const RESERVOIR: usize = 2000;
/// Latencies per side a verdict is computed on.
pub const JUDGED: usize = 1000;
/// Verdicts kept for the API and the dashboard.
const HISTORY: usize = 120;

/// Which side of a comparison a request counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Beta,
    /// Main requests of the baseline router or service.
    Baseline,
    /// Holdback requests (main, labelled by the edge as kept off beta).
    Holdback,
}

impl Side {
    /// Whether a request of `cohort` counts for this side.
    pub fn accepts(self, cohort: Cohort) -> bool {
        matches!(
            (self, cohort),
            (Side::Beta, Cohort::Beta)
                | (Side::Baseline, Cohort::Main)
                | (Side::Holdback, Cohort::Holdback)
        )
    }

    fn as_str(self) -> &'static str {
        ["beta", "baseline", "holdback"][self as usize]
    }
}

#[derive(Debug, Default, Clone)]
struct Tally {
    latencies: Vec<f64>,
    /// Latencies offered to the reservoir (its sampling probability).
    seen: u64,
    requests: u64,
    errors_5xx: u64,
    errors_4xx: u64,
    /// Every latency, microseconds (made on the first request: most slots of an idle side
    /// stay empty).
    histogram: Option<Histogram<u32>>,
}

impl Tally {
    fn histogram(&mut self) -> &mut Histogram<u32> {
        // 1 us to an hour at two significant digits: 1 % error in about 13 KB.
        self.histogram.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid histogram bounds")
        })
    }

    /// The window's percentiles over every request, in place of the sample's.
    fn percentiles(&self, s: &mut betaroute_core::stats::judge::Summary) {
        let Some(h) = self.histogram.as_ref().filter(|h| !h.is_empty()) else {
            return;
        };
        let ms = |q: f64| Some(h.value_at_quantile(q) as f64 / 1000.0);
        s.p50_ms = ms(0.50);
        s.p95_ms = ms(0.95);
        s.p99_ms = ms(0.99);
    }
}

#[derive(Debug, Default, Clone)]
struct Slot {
    sides: [Tally; 3],
}

/// A side's counts since start, for Prometheus.
#[derive(Debug, Clone)]
struct Totals {
    buckets: [u64; grouped::BUCKETS],
    /// Responses by status class: index 0 for anything else, then 1xx..5xx.
    codes: [u64; 6],
    sum_seconds: f64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            buckets: [0; grouped::BUCKETS],
            codes: [0; 6],
            sum_seconds: 0.0,
        }
    }
}

/// One verdict as the history keeps it.
#[derive(Debug, Clone)]
struct Entry {
    at: SystemTime,
    judgement: Judgement,
    /// What beta was judged against: `baseline` or `holdback`.
    against: Side,
}

#[derive(Debug)]
struct Inner {
    spec: ComparisonSpec,
    slots: VecDeque<Slot>,
    history: VecDeque<Entry>,
    consecutive_failures: u32,
    /// When and why the judge turned beta off; cleared when a person turns it back on.
    tripped: Option<(SystemTime, String)>,
    next_due: Instant,
    rng: u64,
    totals: [Totals; 3],
}

/// One comparison's state, kept across reloads (by name).
#[derive(Debug)]
pub struct Comparison {
    inner: Mutex<Inner>,
    verdicts: [AtomicU64; 4],
    trips: AtomicU64,
}

impl Comparison {
    fn new(spec: ComparisonSpec) -> Comparison {
        Comparison {
            inner: Mutex::new(Inner {
                next_due: Instant::now() + spec.interval,
                spec,
                slots: VecDeque::from([Slot::default()]),
                history: VecDeque::new(),
                consecutive_failures: 0,
                tripped: None,
                rng: 0x9E37_79B9_7F4A_7C15,
                totals: Default::default(),
            }),
            verdicts: Default::default(),
            trips: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> String {
        self.lock().spec.name.clone()
    }

    /// Counts one request for `side`.
    pub fn record(&self, side: Side, status: u16, elapsed: Duration) {
        let mut inner = self.lock();
        let Inner {
            slots, rng, totals, ..
        } = &mut *inner;
        let secs = elapsed.as_secs_f64();
        let total = &mut totals[side as usize];
        total.buckets[grouped::bucket_of(secs)] += 1;
        total.codes[if (100..600).contains(&status) {
            usize::from(status / 100)
        } else {
            0
        }] += 1;
        total.sum_seconds += secs;
        let slot = slots.back_mut().expect("there is always a current slot");
        let t = &mut slot.sides[side as usize];
        t.requests += 1;
        match status {
            500..=599 => t.errors_5xx += 1,
            400..=499 => t.errors_4xx += 1,
            _ => {}
        }
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        t.histogram().saturating_record(us.max(1));
        let ms = secs * 1000.0;
        t.seen += 1;
        if t.latencies.len() < RESERVOIR {
            t.latencies.push(ms);
        } else {
            // Algorithm R: the n-th latency replaces a kept one with probability RESERVOIR / n.
            let j = next(rng) % t.seen;
            if (j as usize) < RESERVOIR {
                t.latencies[j as usize] = ms;
            }
        }
    }

    /// Judges the window if its interval is due; what to do about it is returned.
    fn tick(&self, now: Instant, beta_enabled: bool) -> Option<Outcome> {
        let mut inner = self.lock();
        if now < inner.next_due {
            return None;
        }
        inner.next_due = now + inner.spec.interval;
        if inner.tripped.is_some() && beta_enabled {
            // A person turned beta back on: judge afresh.
            inner.tripped = None;
            inner.consecutive_failures = 0;
            log(
                &inner.spec.name,
                "info",
                "beta is on again: the judge counts failures from zero",
                None,
            );
        }
        let slots_in_window = (inner.spec.window.as_secs_f64() / inner.spec.interval.as_secs_f64())
            .ceil()
            .max(1.0) as usize;
        let [beta, main, holdback] = merge(inner.slots.iter().rev().take(slots_in_window));
        let t = &inner.spec.thresholds;
        let (against, baseline) =
            if holdback_is_baseline(main.requests, holdback.requests, t.min_samples) {
                (Side::Holdback, holdback)
            } else {
                (Side::Baseline, main)
            };
        let mut j = judge(&sample(&beta), &sample(&baseline), t);
        beta.percentiles(&mut j.beta);
        baseline.percentiles(&mut j.baseline);
        inner.slots.push_back(Slot::default());
        while inner.slots.len() > slots_in_window {
            inner.slots.pop_front();
        }
        self.verdicts[j.verdict as usize].fetch_add(1, Ordering::Relaxed);
        match j.verdict {
            Verdict::Fail => inner.consecutive_failures += 1,
            Verdict::Pass | Verdict::Marginal => inner.consecutive_failures = 0,
            // Too little traffic says nothing either way.
            Verdict::Inconclusive => {}
        }
        let trip = inner.tripped.is_none()
            && beta_enabled
            && inner.consecutive_failures >= inner.spec.failure_threshold;
        inner.history.push_back(Entry {
            at: SystemTime::now(),
            judgement: j.clone(),
            against,
        });
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        if !trip {
            return None;
        }
        let reason = format!(
            "{} consecutive failed verdicts: {}",
            inner.consecutive_failures,
            j.reasons.join("; ")
        );
        inner.tripped = Some((SystemTime::now(), reason.clone()));
        self.trips.fetch_add(1, Ordering::Relaxed);
        Some(Outcome {
            name: inner.spec.name.clone(),
            reason,
            webhook: inner.spec.webhook.clone(),
            judgement: j,
        })
    }

    /// The comparison for the API: its settings, state, latest verdict and history.
    pub fn view(&self) -> Value {
        let inner = self.lock();
        let s = &inner.spec;
        let unix = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let history: Vec<Value> = inner
            .history
            .iter()
            .map(|e| {
                let j = &e.judgement;
                json!({
                    "at": unix(e.at), "verdict": j.verdict, "against": e.against.as_str(),
                    "beta": {"requests": j.beta.requests, "p50_ms": j.beta.p50_ms, "p95_ms": j.beta.p95_ms, "p99_ms": j.beta.p99_ms, "error_rate_5xx": j.beta.error_rate_5xx},
                    "baseline": {"requests": j.baseline.requests, "p50_ms": j.baseline.p50_ms, "p95_ms": j.baseline.p95_ms, "p99_ms": j.baseline.p99_ms, "error_rate_5xx": j.baseline.error_rate_5xx},
                    "shift_ms": j.shift_ms, "latency_p": j.latency_p, "error_p": j.error_p,
                })
            })
            .collect();
        let [beta, main, holdback] = merge(inner.slots.iter());
        let against = inner.history.back().map_or(Side::Baseline, |e| e.against);
        let baseline = if against == Side::Holdback {
            holdback
        } else {
            main
        };
        json!({
            "name": s.name,
            "beta": s.beta,
            "baseline": match &s.baseline {
                Baseline::Named(n) => Some(n.as_str()),
                Baseline::Holdback => Some("holdback"),
                Baseline::Default(twin) => twin.as_deref(),
            },
            // Not configured: the main router of beta's rule, or its holdback requests.
            "baseline_default": matches!(s.baseline, Baseline::Default(_)),
            "against": inner.history.back().map(|e| e.against.as_str()),
            "interval_ms": s.interval.as_millis() as u64,
            "window_ms": s.window.as_millis() as u64,
            "failure_threshold": s.failure_threshold,
            "thresholds": s.thresholds,
            "consecutive_failures": inner.consecutive_failures,
            "tripped": inner.tripped.as_ref().map(|(at, why)| json!({"at": unix(*at), "reason": why})),
            "latest": inner.history.back().map(|e| &e.judgement),
            "history": history,
            // The window's latencies as sampled, for the dashboard's distributions.
            "samples": {"beta": beta.latencies, "baseline": baseline.latencies},
        })
    }
}

/// A trip to act on: turn beta off, say so, call the webhook.
pub struct Outcome {
    pub name: String,
    pub reason: String,
    pub webhook: Option<String>,
    pub judgement: Judgement,
}

/// The slots merged into one tally per side, each side's latencies thinned to [`JUDGED`].
fn merge<'a>(slots: impl Iterator<Item = &'a Slot>) -> [Tally; 3] {
    let mut out: [Tally; 3] = Default::default();
    for s in slots {
        for (into, from) in out.iter_mut().zip(&s.sides) {
            into.latencies.extend_from_slice(&from.latencies);
            into.requests += from.requests;
            into.errors_5xx += from.errors_5xx;
            into.errors_4xx += from.errors_4xx;
            if let Some(h) = &from.histogram {
                // Same bounds on both sides: adding cannot fail.
                let _ = into.histogram().add(h);
            }
        }
    }
    for t in &mut out {
        if t.latencies.len() > JUDGED {
            // Every k-th of the (uniformly sampled) latencies: still a uniform sample.
            let step = t.latencies.len() as f64 / JUDGED as f64;
            t.latencies = (0..JUDGED)
                .map(|i| t.latencies[(i as f64 * step) as usize])
                .collect();
        }
    }
    out
}

fn sample(t: &Tally) -> Sample<'_> {
    Sample {
        latencies_ms: &t.latencies,
        requests: t.requests,
        errors_5xx: t.errors_5xx,
        errors_4xx: t.errors_4xx,
    }
}

/// xorshift64*: the reservoir's dice (not a secret).
fn next(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn log(name: &str, level: &str, message: &str, judgement: Option<&Judgement>) {
    println!(
        "{}",
        json!({"betaroute": "judge", "level": level, "comparison": name, "message": message, "judgement": judgement})
    );
}

/// Every comparison by name, kept across reloads.
#[derive(Debug, Default)]
pub struct Comparisons {
    by_name: Mutex<HashMap<String, Arc<Comparison>>>,
}

impl Comparisons {
    /// The comparison named in `spec`, made or updated to `spec`.
    pub fn get(&self, spec: &ComparisonSpec) -> Arc<Comparison> {
        let mut m = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        let c = m
            .entry(spec.name.clone())
            .or_insert_with(|| Arc::new(Comparison::new(spec.clone())))
            .clone();
        let mut inner = c.lock();
        if inner.spec != *spec {
            inner.spec = spec.clone();
        }
        drop(inner);
        c
    }
}

/// Prometheus lines for the comparisons in use.
pub fn render(out: &mut String, comparisons: &[Arc<Comparison>]) {
    use std::fmt::Write;
    out.push_str("# HELP betaroute_judge_verdicts_total Verdicts of each comparison of beta with its baseline.\n# TYPE betaroute_judge_verdicts_total counter\n");
    for c in comparisons {
        let name = c.name();
        for (i, v) in ["pass", "marginal", "fail", "inconclusive"]
            .iter()
            .enumerate()
        {
            let n = c.verdicts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "betaroute_judge_verdicts_total{{comparison=\"{name}\",verdict=\"{v}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP betaroute_judge_requests_total Requests each comparison counted, by side and status class.\n# TYPE betaroute_judge_requests_total counter\n");
    let totals: Vec<(String, [Totals; 3])> = comparisons
        .iter()
        .map(|c| (c.name(), c.lock().totals.clone()))
        .collect();
    for (name, sides) in &totals {
        for side in [Side::Beta, Side::Baseline, Side::Holdback] {
            for (i, n) in sides[side as usize].codes.iter().enumerate() {
                if *n > 0 {
                    let code = if i == 0 {
                        "other".into()
                    } else {
                        format!("{i}xx")
                    };
                    let _ = writeln!(out, "betaroute_judge_requests_total{{comparison=\"{name}\",side=\"{}\",code=\"{code}\"}} {n}", side.as_str());
                }
            }
        }
    }
    out.push_str("# HELP betaroute_judge_latency_seconds Time to the response headers of each comparison's requests, by side (four buckets per octave).\n# TYPE betaroute_judge_latency_seconds histogram\n");
    for (name, sides) in &totals {
        for side in [Side::Beta, Side::Baseline, Side::Holdback] {
            let t = &sides[side as usize];
            let count: u64 = t.buckets.iter().sum();
            if count == 0 {
                continue;
            }
            let l = format!("comparison=\"{name}\",side=\"{}\"", side.as_str());
            let mut cumulative = 0;
            for (le, n) in grouped::bounds().zip(&t.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "betaroute_judge_latency_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "betaroute_judge_latency_seconds_bucket{{{l},le=\"+Inf\"}} {count}\nbetaroute_judge_latency_seconds_sum{{{l}}} {}\nbetaroute_judge_latency_seconds_count{{{l}}} {count}", t.sum_seconds);
        }
    }
    out.push_str("# HELP betaroute_judge_trips_total Times the judge turned beta off.\n# TYPE betaroute_judge_trips_total counter\n");
    for c in comparisons {
        let _ = writeln!(
            out,
            "betaroute_judge_trips_total{{comparison=\"{}\"}} {}",
            c.name(),
            c.trips.load(Ordering::Relaxed)
        );
    }
}

/// Judges every due comparison, every 50 ms, for as long as the router runs.
pub async fn run(shared: Arc<super::shared::Shared>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    loop {
        ticker.tick().await;
        let state = shared.state.load_full();
        let enabled = shared.beta.enabled(state.config.beta_switch.as_ref());
        for c in &state.comparisons {
            let Some(o) = c.tick(Instant::now(), enabled) else {
                continue;
            };
            shared.beta.set(Some(false));
            log(
                &o.name,
                "error",
                &format!("beta turned off: {}", o.reason),
                Some(&o.judgement),
            );
            if let Some(url) = o.webhook.clone() {
                let body = json!({"betaroute": "judge", "comparison": o.name, "action": "beta turned off", "reason": o.reason, "judgement": o.judgement});
                tokio::spawn(webhook(url, body));
            }
        }
    }
}

/// POSTs the trip to the comparison's webhook (2 s at most; a failure is logged). `https://`
/// webhooks are verified against the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
async fn webhook(url: String, body: Value) {
    use http_body_util::Full;
    let connector = match super::outbound::https_connector(Duration::from_secs(2)) {
        Ok(c) => c,
        Err(e) => return webhook_failed(&url, &e),
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let req = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "betaroute-judge")
        .body(Full::new(bytes::Bytes::from(body.to_string())));
    let Ok(req) = req else {
        return webhook_failed(&url, "not a request URL");
    };
    let result = tokio::time::timeout(Duration::from_secs(2), client.request(req)).await;
    let problem = match result {
        Ok(Ok(resp)) if resp.status().is_success() => return,
        Ok(Ok(resp)) => format!("answered {}", resp.status()),
        Ok(Err(e)) => {
            // hyper's client error hides the cause (a refused connection, a bad certificate).
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            text
        }
        Err(_) => "no answer within 2 s".into(),
    };
    webhook_failed(&url, &problem);
}

fn webhook_failed(url: &str, problem: &str) {
    // A webhook URL often carries its secret (Slack's path, a `?token=`): the log names the
    // host only.
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.host()?)))
        .unwrap_or_else(|| "(unparsable URL)".into());
    println!(
        "{}",
        json!({"betaroute": "judge", "level": "error", "message": format!("webhook to {host}: {problem}")})
    );
}
