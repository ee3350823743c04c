//! `inFlightReq`, as Traefik's (oxy's `connlimit`): at most `amount` requests in flight per
//! source (the request's host unless `sourceCriterion` says otherwise); one more is answered
//! 429 at once. A request's slot is held until its response has been streamed to the client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::StatusCode;

use super::{Answer, Flow, Req, Source};

type Counts = Arc<Mutex<HashMap<String, u64>>>;

#[derive(Debug)]
pub struct InFlight {
    pub amount: u64,
    pub source: Source,
    counts: Counts,
}

impl Clone for InFlight {
    fn clone(&self) -> Self {
        InFlight::new(self.amount, self.source.clone())
    }
}

/// A request's slot; given back when dropped.
pub struct Slot {
    counts: Counts,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = c.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.key);
            }
        }
    }
}

impl InFlight {
    pub fn new(amount: u64, source: Source) -> InFlight {
        InFlight {
            amount,
            source,
            counts: Arc::default(),
        }
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        let key = self.source.of(req);
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = c.entry(key.clone()).or_insert(0);
        if *n >= self.amount {
            let mut a = Answer::text(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("max connections reached: {}\n", self.amount),
            );
            a.headers.insert(
                "x-content-type-options",
                http::HeaderValue::from_static("nosniff"),
            );
            return Flow::Answer(Box::new(a));
        }
        *n += 1;
        drop(c);
        req.held.push(Slot {
            counts: self.counts.clone(),
            key,
        });
        Flow::Next
    }

    /// Requests in flight for `source` (for tests).
    pub fn in_flight(&self, source: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(source)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_source_and_given_back() {
        let m = InFlight::new(2, Source::Host);
        let mut held = Vec::new();
        for (host, want) in [("a", true), ("a", true), ("a", false), ("b", true)] {
            let (mut parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
            let mut req = Req::new(&mut parts, host, false, "127.0.0.1".parse().unwrap());
            let flow = m.apply(&mut req);
            assert_eq!(matches!(flow, Flow::Next), want, "{host}");
            if let Flow::Answer(a) = flow {
                assert_eq!(a.status, 429);
                assert_eq!(a.body, "max connections reached: 2\n");
            }
            held.append(&mut req.held);
        }
        assert_eq!((m.in_flight("a"), m.in_flight("b")), (2, 1));
        held.remove(0);
        assert_eq!(m.in_flight("a"), 1);
        held.clear();
        assert_eq!((m.in_flight("a"), m.in_flight("b")), (0, 0));
    }
}
