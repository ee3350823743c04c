//! `rateLimit`, as Traefik's in-memory limiter (`pkg/middlewares/ratelimiter`): a token bucket
//! per source (`average` per `period`, `burst` deep, starting full), requests smoothed rather
//! than only cut: one that would get its token within `maxDelay` waits for it, a later one gets
//! 429 with `Retry-After` and `X-Retry-In`. Sources (the client address by `ipStrategy`, a
//! request header, or the host) are kept in a map bounded to 65,536; an idle source expires
//! after its bucket would be full again, and a full map evicts those closest to expiring.
//!
//! The bucket logic is pure and takes the time as an argument, so Traefik's load cases run as
//! deterministic simulations (see the tests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use super::{Answer, Flow, Req, Strategy};

/// Sources kept at most (Traefik's `maxSources`).
pub const MAX_SOURCES: usize = 65_536;

/// What a request's source is.
#[derive(Debug, Clone)]
pub enum Source {
    Ip(Strategy),
    Header(http::HeaderName),
    Host,
}

impl Source {
    pub fn of(&self, req: &Req) -> String {
        match self {
            Source::Ip(s) => {
                let xff = req
                    .parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok());
                s.client_ip(&req.remote, xff)
            }
            Source::Header(h) => req
                .parts
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            Source::Host => req.host.clone(),
        }
    }
}

/// The limits, derived as Traefik derives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Tokens per second (`f64::INFINITY`: no limit).
    pub rate: f64,
    pub burst: f64,
    pub max_delay: Duration,
    /// An idle bucket is forgotten after this long.
    pub ttl: Duration,
}

impl Limits {
    pub fn new(average: i64, period: Duration, burst: i64) -> Limits {
        let period = if period.is_zero() {
            Duration::from_secs(1)
        } else {
            period
        };
        let burst = burst.max(1) as f64;
        let rate = if average <= 0 {
            f64::INFINITY
        } else {
            average as f64 * 1e9 / period.as_nanos() as f64
        };
        let max_delay = if average <= 0 {
            Duration::ZERO
        } else if rate < 1.0 {
            Duration::from_millis(500)
        } else {
            // Go: time.Second / (time.Duration(rtl) * 2), the rate truncated to an integer.
            Duration::from_nanos(1_000_000_000 / (rate as u64 * 2))
        };
        let ttl = if rate >= 1.0 {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(1 + (1.0 / rate) as u64)
        };
        Limits {
            rate,
            burst,
            max_delay,
            ttl,
        }
    }
}

/// A token bucket (golang.org/x/time/rate's, reservations included: tokens may go below zero
/// for requests that wait).
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    expires: Instant,
}

/// A request's fate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// Forward after this wait (zero: at once).
    After(Duration),
    /// Too many: retry after this long.
    Reject(Duration),
}

impl Bucket {
    pub fn full(l: &Limits, now: Instant) -> Bucket {
        Bucket {
            tokens: l.burst,
            last: now,
            expires: now + l.ttl,
        }
    }

    pub fn take(&mut self, l: &Limits, now: Instant) -> Admit {
        self.expires = now + l.ttl;
        if l.rate.is_infinite() {
            return Admit::After(Duration::ZERO);
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * l.rate).min(l.burst);
        self.last = self.last.max(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Admit::After(Duration::ZERO);
        }
        let wait = Duration::from_secs_f64(-self.tokens / l.rate);
        if wait > l.max_delay {
            // The reservation is cancelled: the token goes back.
            self.tokens += 1.0;
            return Admit::Reject(wait);
        }
        Admit::After(wait)
    }
}

/// Buckets by source, bounded.
#[derive(Debug, Default)]
pub struct Buckets {
    map: HashMap<String, Bucket>,
}

impl Buckets {
    pub fn take(&mut self, source: &str, l: &Limits, now: Instant) -> Admit {
        if let Some(b) = self.map.get_mut(source) {
            if b.expires > now {
                return b.take(l, now);
            }
        }
        if !self.map.contains_key(source) && self.map.len() >= MAX_SOURCES {
            self.evict(now);
        }
        let b = self
            .map
            .entry(source.to_owned())
            .or_insert_with(|| Bucket::full(l, now));
        *b = Bucket::full(l, now);
        b.take(l, now)
    }

    /// Room for new sources: the expired ones go, then the sixteenth closest to expiring (so a
    /// flood of new sources costs one scan per 4,096 of them, not one each).
    fn evict(&mut self, now: Instant) {
        self.map.retain(|_, b| b.expires > now);
        if self.map.len() < MAX_SOURCES {
            return;
        }
        let mut expiries: Vec<Instant> = self.map.values().map(|b| b.expires).collect();
        let k = MAX_SOURCES / 16;
        expiries.select_nth_unstable(k);
        let cut = expiries[k];
        self.map.retain(|_, b| b.expires > cut);
    }
}

#[derive(Debug)]
pub struct RateLimit {
    pub limits: Limits,
    pub source: Source,
    buckets: Mutex<Buckets>,
}

impl Clone for RateLimit {
    fn clone(&self) -> Self {
        RateLimit::new(self.limits, self.source.clone())
    }
}

impl RateLimit {
    pub fn new(limits: Limits, source: Source) -> RateLimit {
        RateLimit {
            limits,
            source,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        if self.limits.rate.is_infinite() {
            return Flow::Next;
        }
        let source = self.source.of(req);
        let admit = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(&source, &self.limits, Instant::now());
        match admit {
            Admit::After(d) if d.is_zero() => Flow::Next,
            Admit::After(d) => Flow::Wait(d),
            Admit::Reject(wait) => {
                let mut a = Answer::text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                let secs = wait.as_secs_f64().ceil();
                if let Ok(v) = http::HeaderValue::from_str(&format!("{secs:.0}")) {
                    a.headers.insert(http::header::RETRY_AFTER, v);
                }
                if let Ok(v) = http::HeaderValue::from_str(&go_duration(wait)) {
                    a.headers.insert("x-retry-in", v);
                }
                Flow::Answer(Box::new(a))
            }
        }
    }
}

/// Go's `time.Duration.String()` for the waits a limiter reports (`9.5ms`, `1.5s`, `1m0s`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.9}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{unit}")
    };
    if ns == 0 {
        "0s".into()
    } else if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        trim(ns as f64 / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        trim(ns as f64 / 1e6, "ms")
    } else {
        let total = d.as_secs_f64();
        let h = (total / 3600.0).floor();
        let m = ((total - h * 3600.0) / 60.0).floor();
        let s = total - h * 3600.0 - m * 60.0;
        let sec = trim(s, "s");
        let sec = if sec == "s" { "0s".to_owned() } else { sec };
        match (h as u64, m as u64) {
            (0, 0) => sec,
            (0, m) => format!("{m}m{sec}"),
            (h, m) => format!("{h}h{m}m{sec}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn data() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/middleware/cases/rateLimit.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn limits(c: &Value) -> Limits {
        let period = c["period"].as_str().map_or(Duration::from_secs(1), |p| {
            crate::config::read::parse_go_duration(p).unwrap()
        });
        Limits::new(
            c["average"].as_i64().unwrap_or(0),
            period,
            c["burst"].as_i64().unwrap_or(1),
        )
    }

    #[test]
    fn traefik_derived_values() {
        for c in data()["cases"].as_array().unwrap() {
            let Some(d) = c.get("derived") else { continue };
            let l = limits(&c["config"]);
            let name = c["name"].as_str().unwrap();
            assert_eq!(l.burst, d["burst"].as_f64().unwrap(), "{name}");
            match d["rate_per_second"].as_f64() {
                Some(r) => assert!((l.rate - r).abs() < 1e-9, "{name}: {}", l.rate),
                None => assert!(l.rate.is_infinite(), "{name}"),
            }
            assert!(
                (l.max_delay.as_secs_f64() - d["maxDelay_seconds"].as_f64().unwrap()).abs() < 1e-12,
                "{name}"
            );
            assert_eq!(
                l.ttl.as_secs(),
                d["bucket_ttl_seconds"].as_u64().unwrap(),
                "{name}"
            );
        }
    }

    /// Traefik's load tests, simulated: requests from one source at `incomingLoad` per second
    /// (after an initial burst sent at once) for `loadDuration`; the forwarded count must be in
    /// Traefik's bounds.
    #[test]
    fn traefik_load_cases_simulated() {
        for c in data()["load_cases"].as_array().unwrap() {
            if c["backend"] != "in-memory" {
                continue; // Redis is not implemented (refused by name)
            }
            let l = limits(&c["config"]);
            let load = &c["load"];
            let duration =
                crate::config::read::parse_go_duration(load["loadDuration"].as_str().unwrap())
                    .unwrap();
            let per_second = load["incomingLoad_per_second"].as_f64().unwrap();
            let start = Instant::now();
            let mut b = Buckets::default();
            let mut forwarded = 0u64;
            for _ in 0..load["initial_burst"].as_u64().unwrap_or(0) {
                if matches!(b.take("s", &l, start), Admit::After(_)) {
                    forwarded += 1;
                }
            }
            let n = (duration.as_secs_f64() * per_second) as u64;
            for i in 0..n {
                let t = start + Duration::from_secs_f64(i as f64 / per_second);
                if matches!(b.take("s", &l, t), Admit::After(_)) {
                    forwarded += 1;
                }
            }
            let e = &c["expect"];
            let (min, max) = (
                e["minCount"].as_u64().unwrap(),
                e["maxCount"].as_u64().unwrap(),
            );
            assert!(
                (min..=max).contains(&forwarded),
                "{}: {forwarded} forwarded, Traefik {min}..={max}",
                c["name"]
            );
        }
    }

    #[test]
    fn sources_are_bounded_and_expire() {
        let l = Limits::new(1, Duration::from_secs(1), 1);
        let now = Instant::now();
        let mut b = Buckets::default();
        for i in 0..MAX_SOURCES + 10 {
            b.take(&i.to_string(), &l, now + Duration::from_micros(i as u64));
        }
        assert!(b.map.len() <= MAX_SOURCES, "{}", b.map.len());
        // The newest are kept.
        assert!(b.map.contains_key(&(MAX_SOURCES + 9).to_string()));
        // An expired source starts with a full bucket again.
        assert_eq!(b.take("x", &l, now), Admit::After(Duration::ZERO));
        assert!(matches!(b.take("x", &l, now), Admit::Reject(_)));
        assert_eq!(
            b.take("x", &l, now + Duration::from_secs(3)),
            Admit::After(Duration::ZERO)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_micros(9500)), "9.5ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
    }
}
