//! The verdict on one request's token: the routing decision and what identified the token (its
//! algorithm and key id). One value for everyone who reports it: the edge's request log line, its
//! decision endpoint and `betaroute token verify`.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::decision::{BetaPolicy, Decision, Inject, Reason};
use crate::rollout::Policy;
use crate::verify::{Rejection, Verified};

/// A decision with the token's `alg` and `kid`, when they could be read.
///
/// Serialized as `{"cohort", "reason", "detail", "alg", "kid", "inject"}`: `detail`, `alg` and
/// `kid` are `null` when absent (never left out, unlike [`Decision`]'s own form), `inject` is an
/// object of header name to value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The header's `alg`, as written (also a name betaroute does not support).
    pub alg: Option<String>,
    pub kid: Option<String>,
}

impl Verdict {
    /// Main, for a reason found before any token was parsed (no token, a configuration error).
    pub fn main(reason: Reason, detail: impl Into<String>) -> Verdict {
        Verdict {
            decision: Decision::main(reason, Some(detail.into())),
            alg: None,
            kid: None,
        }
    }

    /// Main, for a token that failed verification: `alg` and `kid` from its header, if it parsed.
    pub fn rejected(r: Rejection) -> Verdict {
        Verdict {
            alg: r.alg().map(str::to_owned),
            kid: r.kid().map(str::to_owned),
            decision: r.into_decision(),
        }
    }

    /// The beta policy's decision for a verified token.
    pub fn verified(v: &Verified, beta: &BetaPolicy) -> Verdict {
        Verdict::verified_with(v, beta, None, &|_, _| false)
    }

    /// The decision for a verified token under a rollout policy, if one is in force, its rule
    /// patterns matched by `regex` (`rollout::rule::compiled` in Rust).
    pub fn verified_with(
        v: &Verified,
        beta: &BetaPolicy,
        policy: Option<&Policy>,
        regex: crate::rollout::rule::Matcher,
    ) -> Verdict {
        Verdict::flagged(v, beta, policy, regex, None)
    }

    /// The same, with the flag service's answer for the beta flag, when it gave one.
    pub fn flagged(
        v: &Verified,
        beta: &BetaPolicy,
        policy: Option<&Policy>,
        regex: crate::rollout::rule::Matcher,
        flag: Option<bool>,
    ) -> Verdict {
        Verdict {
            decision: beta.decide_with(policy, &v.claims, regex, flag),
            alg: Some(v.alg.name().to_owned()),
            kid: v.kid().map(str::to_owned),
        }
    }

    /// The verdict for either outcome of a verification.
    pub fn of(outcome: Result<&Verified, &Rejection>, beta: &BetaPolicy) -> Verdict {
        match outcome {
            Ok(v) => Verdict::verified(v, beta),
            Err(r) => Verdict::rejected(r.clone()),
        }
    }

    /// The headers to inject, serialized as an object of header name to value.
    pub fn inject(&self) -> Inject<'_> {
        Inject(&self.decision.inject)
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = &self.decision;
        let mut st = s.serialize_struct("Verdict", 6)?;
        st.serialize_field("cohort", &d.cohort)?;
        st.serialize_field("reason", &d.reason_text())?;
        st.serialize_field("detail", &d.detail)?;
        st.serialize_field("alg", &self.alg)?;
        st.serialize_field("kid", &self.kid)?;
        if let Some(b) = &d.buckets {
            st.serialize_field("buckets", b)?;
        }
        st.serialize_field("inject", &self.inject())?;
        st.end()
    }
}

#[cfg(test)]
mod tests;
