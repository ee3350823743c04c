//! `retry` (Traefik v3.7 `pkg/middlewares/retry`): the request sent again, up to `attempts`
//! tries in all, when the backend could not be reached (nothing was written to it) or, with
//! `status`, when its answer's code is in the ranges, while nothing has gone to the client. The
//! waits grow exponentially from `initialInterval` to twice it by the last try (cenkalti's
//! backoff: multiplier `2^(1/(attempts-1))`, each wait randomized by ±50 %).
//!
//! The proxy runs the attempts (`proxy::request::upstream`); what is decided here is pure.

use std::time::Duration;

use http::Method;

use super::codes::CodeRanges;

/// Traefik's default `maxRequestBodyBytes` (2 MiB): a body up to this is kept to be sent again.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: i64 = 2 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    pub initial_interval: Duration,
    /// After this long since the first try, the answer goes to the client as it is (0: none).
    pub timeout: Duration,
    pub status: CodeRanges,
    /// Negative: no limit.
    pub max_request_body_bytes: i64,
    pub disable_retry_on_network_error: bool,
    pub retry_non_idempotent_method: bool,
}

/// What one try came to, as the retry decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend was not reached: no byte of the request was written to it.
    NotReached,
    /// A response, or the proxy's own error status after the request was written.
    Status(u16),
}

impl Retry {
    /// Whether the status ranges apply to this request (Traefik: not for POST, PATCH and LOCK
    /// unless `retryNonIdempotentMethod`).
    pub fn retries_status(&self, method: &Method) -> bool {
        !self.status.is_empty()
            && (self.retry_non_idempotent_method
                || !(method == Method::POST || method == Method::PATCH || method == "LOCK"))
    }

    /// Whether try number `attempt` (from 1), with this outcome, `elapsed` after the first try
    /// began, is tried again. `status_retries`: the status ranges apply (the request's method
    /// allows it and its body was kept).
    pub fn again(
        &self,
        attempt: u32,
        outcome: Outcome,
        elapsed: Duration,
        status_retries: bool,
    ) -> bool {
        if attempt >= self.attempts {
            return false;
        }
        let timed_out = !self.timeout.is_zero() && elapsed >= self.timeout;
        if timed_out {
            return false;
        }
        match outcome {
            Outcome::NotReached => !self.disable_retry_on_network_error,
            Outcome::Status(code) => status_retries && self.status.contains(code),
        }
    }

    pub fn backoff(&self) -> Backoff {
        Backoff {
            current: self.initial_interval,
            multiplier: if self.attempts < 2 {
                1.0
            } else {
                2f64.powf(1.0 / f64::from(self.attempts - 1))
            },
            zero: self.attempts < 2 || self.initial_interval.is_zero(),
        }
    }
}

/// cenkalti/backoff's `ExponentialBackOff` with Traefik's settings (randomization 0.5, the
/// library's 60 s cap); zero waits with no `initialInterval`.
#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    multiplier: f64,
    zero: bool,
}

const MAX_INTERVAL: Duration = Duration::from_secs(60);
const RANDOMIZATION: f64 = 0.5;

impl Backoff {
    /// The next wait; `random` in [0, 1).
    pub fn next(&mut self, random: f64) -> Duration {
        if self.zero {
            return Duration::ZERO;
        }
        let base = self.current.as_secs_f64();
        let delta = RANDOMIZATION * base;
        let wait = (base - delta) + random * (2.0 * delta + 1e-9);
        self.current = if base >= MAX_INTERVAL.as_secs_f64() / self.multiplier {
            MAX_INTERVAL
        } else {
            Duration::from_secs_f64(base * self.multiplier)
        };
        Duration::from_secs_f64(wait.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(attempts: u32) -> Retry {
        Retry {
            attempts,
            initial_interval: Duration::from_millis(100),
            timeout: Duration::ZERO,
            status: CodeRanges::default(),
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            disable_retry_on_network_error: false,
            retry_non_idempotent_method: false,
        }
    }

    #[test]
    fn waits_grow_to_twice_the_initial_interval_by_the_last_try() {
        let r = retry(5);
        let mut b = r.backoff();
        // The middle of each randomized wait: 100 ms times 2^(k/4).
        let mids: Vec<f64> = (0..4).map(|_| b.next(0.5).as_secs_f64() * 1000.0).collect();
        for (k, m) in mids.iter().enumerate() {
            let want = 100.0 * 2f64.powf(k as f64 / 4.0);
            assert!((m - want).abs() < 0.01, "wait {k}: {m} ms, want {want}");
        }
        let mut b = r.backoff();
        assert!((b.next(0.0).as_secs_f64() - 0.05).abs() < 1e-6, "-50 %");
        assert!(
            (b.next(0.999_999).as_secs_f64() - 0.1784).abs() < 1e-3,
            "+50 % of the second"
        );
        let mut none = Retry {
            initial_interval: Duration::ZERO,
            ..retry(3)
        }
        .backoff();
        assert_eq!(none.next(0.7), Duration::ZERO);
    }

    #[test]
    fn what_is_tried_again() {
        let mut r = retry(3);
        let s = Duration::ZERO;
        assert!(r.again(1, Outcome::NotReached, s, false));
        assert!(r.again(2, Outcome::NotReached, s, false));
        assert!(
            !r.again(3, Outcome::NotReached, s, false),
            "attempts in all"
        );
        assert!(
            !r.again(1, Outcome::Status(502), s, true),
            "no status ranges"
        );
        r.status = CodeRanges::parse(&["500-503"]).unwrap();
        assert!(r.again(1, Outcome::Status(502), s, true));
        assert!(!r.again(1, Outcome::Status(504), s, true));
        assert!(
            !r.again(1, Outcome::Status(502), s, false),
            "a POST, or a body kept not"
        );
        r.timeout = Duration::from_secs(1);
        assert!(!r.again(1, Outcome::NotReached, Duration::from_secs(1), true));
        r.disable_retry_on_network_error = true;
        assert!(!r.again(1, Outcome::NotReached, s, true));
        assert!(r.retries_status(&Method::GET) && !r.retries_status(&Method::POST));
        r.retry_non_idempotent_method = true;
        assert!(r.retries_status(&Method::PATCH));
    }
}
