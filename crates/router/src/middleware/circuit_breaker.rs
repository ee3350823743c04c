//! `circuitBreaker` (Traefik's `pkg/middlewares/circuitbreaker` on `vulcand/oxy/v2/cbreaker`
//! v2.2.0): while the expression over the recent responses holds, requests get
//! `responseCode` instead of reaching the backend.
//!
//! - **Expression** ([`Expr::parse`]): oxy's predicate language, a subset of Go expressions:
//!   comparisons of one function (left) with a literal of its type (right), joined by `&&` and
//!   `||`, in parentheses or not. `NetworkErrorRatio()` and `ResponseCodeRatio(from, to,
//!   dividedByFrom, dividedByTo)` are floats (compare with `0.5`, not `1`);
//!   `LatencyAtQuantileMS(50.0)` and `RequestThreshold()` are integers.
//! - **Metrics** ([`Metrics`]): counters over the last 10 whole seconds (10 buckets of 1 s);
//!   latencies in microseconds in six HDR histograms (two significant digits) that rotate every
//!   10 s when a response is recorded. Only 502 and 504 count as network errors.
//! - **States**: standby; tripped (every request gets the fallback) for `fallbackDuration`;
//!   recovering for `recoveryDuration`, where a share of requests rising linearly from 0 to a
//!   half reaches the backend; then standby. The expression is evaluated after a response,
//!   at most once per `checkPeriod`; it trips from standby and from recovering, and tripping
//!   resets the metrics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::predicate::{self, Function, Lit, Returns};

/// A function of the metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Func {
    NetworkErrorRatio,
    ResponseCodeRatio(u16, u16, u16, u16),
    LatencyAtQuantileMs(f64),
    RequestThreshold,
}

/// The expression: oxy's predicate language over [`Func`].
pub type Expr = predicate::Expr<Func>;

impl Function for Func {
    fn call(name: &str, args: &[Lit]) -> Result<(Func, Returns), String> {
        let ints = |n: usize| -> Result<Vec<u16>, String> {
            if args.len() != n {
                return Err(format!("{name}: takes {n} arguments, got {}", args.len()));
            }
            args.iter()
                .map(|a| match a {
                    Lit::Int(i) => {
                        u16::try_from(*i).map_err(|_| format!("{name}: {i} is not a status code"))
                    }
                    Lit::Float(_) => {
                        Err(format!("{name}: reflect: Call using float64 as type int"))
                    }
                    Lit::Str(_) => Err(format!("{name}: reflect: Call using string as type int")),
                })
                .collect()
        };
        Ok(match name {
            "NetworkErrorRatio" => {
                ints(0)?;
                (Func::NetworkErrorRatio, Returns::Float)
            }
            "RequestThreshold" => {
                ints(0)?;
                (Func::RequestThreshold, Returns::Int)
            }
            "ResponseCodeRatio" => {
                let a = ints(4)?;
                (Func::ResponseCodeRatio(a[0], a[1], a[2], a[3]), Returns::Float)
            }
            "LatencyAtQuantileMS" => match args {
                [Lit::Float(q)] => (Func::LatencyAtQuantileMs(*q), Returns::Int),
                [Lit::Int(_)] => {
                    return Err(format!(
                        "{name}: reflect: Call using int as type float64 (write the quantile with a decimal point, e.g. 50.0)"
                    ))
                }
                _ => return Err(format!("{name}: takes 1 argument, a float")),
            },
            _ => return Err(format!("{name} is not defined")),
        })
    }
}

impl predicate::Expr<Func> {
    fn eval(&self, m: &mut Metrics, now: Duration) -> bool {
        match self {
            Expr::And(a, b) => a.eval(m, now) && b.eval(m, now),
            Expr::Or(a, b) => a.eval(m, now) || b.eval(m, now),
            // No function of this language is a predicate.
            Expr::Is(_) => false,
            Expr::Cmp(f, op, lit) => {
                let (l, r) = match (f, lit) {
                    (Func::NetworkErrorRatio, Lit::Float(r)) => (m.network_error_ratio(now), *r),
                    (Func::ResponseCodeRatio(a, b, c, d), Lit::Float(r)) => {
                        (m.response_code_ratio(now, *a, *b, *c, *d), *r)
                    }
                    (Func::LatencyAtQuantileMs(q), Lit::Int(r)) => {
                        (m.latency_ms_at_quantile(*q) as f64, *r as f64)
                    }
                    (Func::RequestThreshold, Lit::Int(r)) => (m.total(now) as f64, *r as f64),
                    _ => return false,
                };
                op.holds(l, r)
            }
        }
    }
}

const BUCKETS: u64 = 10;
const HISTOGRAMS: usize = 6;
const HISTOGRAM_PERIOD: Duration = Duration::from_secs(10);

/// oxy's rolling counter: 10 buckets of one whole second.
#[derive(Debug, Clone, Default)]
struct Counter {
    buckets: [u64; BUCKETS as usize],
    last: u64,
}

impl Counter {
    fn cleanup(&mut self, sec: u64) {
        if sec <= self.last {
            return;
        }
        for s in (self.last + 1..=sec).take(BUCKETS as usize) {
            self.buckets[(s % BUCKETS) as usize] = 0;
        }
        self.last = sec;
    }

    fn inc(&mut self, sec: u64) {
        self.cleanup(sec);
        self.buckets[(sec % BUCKETS) as usize] += 1;
    }

    fn count(&self, sec: u64) -> u64 {
        let mut c = self.clone();
        c.cleanup(sec);
        c.buckets.iter().sum()
    }
}

/// The responses of the last seconds, as oxy's `RTMetrics` keeps them.
pub struct Metrics {
    total: Counter,
    net_errors: Counter,
    codes: HashMap<u16, Counter>,
    histograms: Vec<Histogram<u64>>,
    index: usize,
    last_roll: Option<Duration>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            total: Counter::default(),
            net_errors: Counter::default(),
            codes: HashMap::new(),
            histograms: (0..HISTOGRAMS)
                .map(|_| Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid HDR bounds"))
                .collect(),
            index: 0,
            last_roll: None,
        }
    }
}

impl Metrics {
    /// One response at `now` (time since the Unix epoch: buckets are whole UTC seconds).
    pub fn record(&mut self, now: Duration, code: u16, latency: Duration) {
        let sec = now.as_secs();
        self.total.inc(sec);
        if code == 502 || code == 504 {
            self.net_errors.inc(sec);
        }
        self.codes.entry(code).or_default().inc(sec);
        if self
            .last_roll
            .is_none_or(|l| now.saturating_sub(l) >= HISTOGRAM_PERIOD)
        {
            self.index = (self.index + 1) % HISTOGRAMS;
            self.histograms[self.index].reset();
            self.last_roll = Some(now);
        }
        let us = latency.as_micros() as u64;
        let _ = self.histograms[self.index].record(us);
    }

    pub(crate) fn reset(&mut self, now: Duration) {
        *self = Metrics::default();
        self.last_roll = Some(now);
    }

    pub(crate) fn total(&self, now: Duration) -> u64 {
        self.total.count(now.as_secs())
    }

    pub(crate) fn network_error_ratio(&self, now: Duration) -> f64 {
        let total = self.total(now);
        if total == 0 {
            return 0.0;
        }
        self.net_errors.count(now.as_secs()) as f64 / total as f64
    }

    /// Responses with codes in [from, to) over those in [div_from, div_to); 0 without those.
    pub(crate) fn response_code_ratio(
        &self,
        now: Duration,
        from: u16,
        to: u16,
        df: u16,
        dt: u16,
    ) -> f64 {
        let sec = now.as_secs();
        let (mut a, mut b) = (0u64, 0u64);
        for (code, c) in &self.codes {
            let n = c.count(sec);
            if (from..to).contains(code) {
                a += n;
            }
            if (df..dt).contains(code) {
                b += n;
            }
        }
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }

    /// HDR's value at the percentile `q` (0 to 100), in whole milliseconds.
    pub(crate) fn latency_ms_at_quantile(&self, q: f64) -> u64 {
        let mut merged = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).expect("bounds");
        for h in &self.histograms {
            let _ = merged.add(h);
        }
        let total = merged.len();
        let rank = ((q.min(100.0) / 100.0) * total as f64 + 0.5) as u64;
        if rank == 0 {
            return 0;
        }
        let mut seen = 0;
        for v in merged.iter_recorded() {
            seen += v.count_at_value();
            if seen >= rank {
                return merged.highest_equivalent(v.value_iterated_to()) / 1000;
            }
        }
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Standby,
    Tripped { until: Duration },
    Recovering { start: Duration, until: Duration },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    pub expression: Expr,
    /// The expression as configured, for messages.
    pub text: String,
    pub check_period: Duration,
    pub fallback_duration: Duration,
    pub recovery_duration: Duration,
    pub response_code: http::StatusCode,
    inner: Mutex<Breaker>,
}

struct Breaker {
    state: State,
    metrics: Metrics,
    /// No evaluation until after this.
    last_check: Option<Duration>,
    allowed: u64,
    denied: u64,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Breaker({:?})", self.state)
    }
}

impl CircuitBreaker {
    pub fn new(
        expression: Expr,
        text: String,
        check_period: Duration,
        fallback_duration: Duration,
        recovery_duration: Duration,
        response_code: http::StatusCode,
    ) -> CircuitBreaker {
        CircuitBreaker {
            expression,
            text,
            check_period,
            fallback_duration,
            recovery_duration,
            response_code,
            inner: Mutex::new(Breaker {
                state: State::Standby,
                metrics: Metrics::default(),
                last_check: None,
                allowed: 0,
                denied: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Traefik's fallback answer: `responseCode` and its text, no header.
    pub fn fallback(&self) -> super::Answer {
        let code = self.response_code;
        let mut a = super::Answer::text(code, code.canonical_reason().unwrap_or(""));
        a.headers.clear();
        a
    }

    /// Replaces the recorded responses, as oxy's tests assign the breaker's metrics.
    #[cfg(test)]
    pub(crate) fn set_metrics(&self, m: Metrics) {
        self.lock().metrics = m;
    }

    /// Whether a request at `now` goes to the backend (`false`: the fallback answers it).
    pub fn admit(&self, now: Duration) -> bool {
        let mut b = self.lock();
        if let State::Tripped { until } = b.state {
            if now < until {
                return false;
            }
            b.state = State::Recovering {
                start: now,
                until: now + self.recovery_duration,
            };
            b.allowed = 0;
            b.denied = 0;
        }
        match b.state {
            State::Standby => true,
            State::Tripped { .. } => false,
            State::Recovering { start, until } => {
                if now > until {
                    b.state = State::Standby;
                    return true;
                }
                // oxy's ratio controller: the share let through follows a target rising
                // linearly from 0 to a half over the recovery.
                let target = 0.5 / self.recovery_duration.as_secs_f64().max(1e-9)
                    * now.saturating_sub(start).as_secs_f64();
                let ratio = (b.allowed + 1) as f64 / (b.allowed + 1 + b.denied) as f64;
                if ratio < target {
                    b.allowed += 1;
                    true
                } else {
                    b.denied += 1;
                    false
                }
            }
        }
    }

    /// A response of a request that was let through; may trip the breaker.
    pub fn record(&self, now: Duration, code: u16, latency: Duration) {
        let mut b = self.lock();
        b.metrics.record(now, code, latency);
        if b.last_check.is_some_and(|l| now <= l) {
            return;
        }
        b.last_check = Some(now + self.check_period);
        if matches!(b.state, State::Tripped { .. }) {
            return;
        }
        let b = &mut *b;
        if self.expression.eval(&mut b.metrics, now) {
            b.state = State::Tripped {
                until: now + self.fallback_duration,
            };
            b.metrics.reset(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(expr: &str) -> CircuitBreaker {
        CircuitBreaker::new(
            Expr::parse(expr).unwrap(),
            expr.to_owned(),
            Duration::from_millis(100),
            Duration::from_secs(10),
            Duration::from_secs(10),
            http::StatusCode::SERVICE_UNAVAILABLE,
        )
    }

    #[test]
    fn the_expression_language_as_oxy_accepts_it() {
        for ok in [
            "NetworkErrorRatio() > 0.5",
            "ResponseCodeRatio(500, 600, 0, 600) > 0.25",
            "LatencyAtQuantileMS(50.0) > 100",
            "RequestThreshold() >= 20 && NetworkErrorRatio() > .5",
            "(NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(99.0) > 2000) && RequestThreshold() > 10",
        ] {
            assert!(Expr::parse(ok).is_ok(), "{ok}: {:?}", Expr::parse(ok));
        }
        for (bad, why) in [
            ("", "expected operand"),
            ("NetworkErrorRatio() > 1", "expected float64, got int"),
            ("LatencyAtQuantileMS(50) > 10", "int as type float64"),
            (
                "LatencyAtQuantileMS(50.0) > 10.5",
                "expected int, got float64",
            ),
            ("0.5 < NetworkErrorRatio()", "lt: unsupported argument"),
            ("!(NetworkErrorRatio() > 0.5)", "! is not supported"),
            ("NetworkErrorRatio()", "expected predicate"),
            ("Foo() > 1", "Foo is not defined"),
            ("true", "true is not defined"),
        ] {
            let e = Expr::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn trips_falls_back_recovers_linearly_then_stands_by() {
        let cb = breaker("NetworkErrorRatio() > 0.5");
        let t0 = Duration::from_secs(1_330_837_567);
        assert!(cb.admit(t0));
        cb.record(t0, 200, Duration::ZERO);
        assert_eq!(cb.state(), State::Standby);
        // Within the check period nothing is evaluated; after it, the 502s trip it.
        let t1 = t0 + Duration::from_millis(50);
        cb.record(t1, 502, Duration::ZERO);
        cb.record(t1, 502, Duration::ZERO);
        assert_eq!(cb.state(), State::Standby, "inside checkPeriod");
        let t2 = t0 + Duration::from_millis(200);
        cb.record(t2, 502, Duration::ZERO);
        assert_eq!(
            cb.state(),
            State::Tripped {
                until: t2 + Duration::from_secs(10)
            }
        );
        assert!(!cb.admit(t2 + Duration::from_secs(5)), "fallback");
        // Recovery: about a quarter of the requests pass halfway through.
        let start = t2 + Duration::from_secs(10);
        assert!(
            !cb.admit(start),
            "the first at recovery start is denied (target 0)"
        );
        let mid = start + Duration::from_secs(5);
        let passed = (0..100).filter(|_| cb.admit(mid)).count();
        assert!(
            (20..=30).contains(&passed),
            "{passed} of 100 at target 0.25"
        );
        assert!(
            cb.admit(start + Duration::from_secs(11)),
            "standby after recovery"
        );
        assert_eq!(cb.state(), State::Standby);
    }

    /// oxy's predicate and metric cases (`cases/circuitBreaker.json`): every invalid expression
    /// is refused (betaroute's messages say what to write instead of Go's reflect texts), every
    /// valid one trips or not on the recorded responses as oxy's does.
    #[test]
    fn oxy_expression_cases() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/middleware/cases/circuitBreaker.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut failures = Vec::new();
        let mut ran = 0;
        for c in v["expression_cases"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let text = c["expression"].as_str().unwrap();
            let parsed = Expr::parse(text);
            ran += 1;
            if !c["valid"].as_bool().unwrap() {
                if parsed.is_ok() {
                    failures.push(format!("{name}: {text:?} is accepted, oxy refuses it"));
                }
                continue;
            }
            let e = match parsed {
                Ok(e) => e,
                Err(why) => {
                    failures.push(format!("{name}: {text:?} refused: {why}"));
                    continue;
                }
            };
            let Some(trips) = c["trips"].as_bool() else {
                continue;
            };
            let now = Duration::from_secs(1_330_837_567);
            let mut m = Metrics::default();
            for r in c["recorded"].as_array().into_iter().flatten() {
                for _ in 0..r["count"].as_u64().unwrap_or(1) {
                    m.record(
                        now,
                        r["code"].as_u64().unwrap() as u16,
                        Duration::from_micros(r["latency_us"].as_u64().unwrap_or(0)),
                    );
                }
            }
            if e.eval(&mut m, now) != trips {
                failures.push(format!("{name}: {text:?} gives {}, oxy {trips}", !trips));
            }
        }
        assert!(ran > 50, "{ran} cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn metrics_over_ten_whole_seconds() {
        let mut m = Metrics::default();
        let t = Duration::from_secs(100);
        for _ in 0..3 {
            m.record(t, 500, Duration::from_millis(51));
        }
        m.record(t, 200, Duration::from_millis(51));
        assert_eq!(m.response_code_ratio(t, 500, 600, 0, 600), 0.75);
        assert_eq!(m.latency_ms_at_quantile(50.0), 51);
        assert_eq!(m.total(t + Duration::from_secs(9)), 4);
        assert_eq!(m.total(t + Duration::from_secs(10)), 0, "out of the window");
    }
}
