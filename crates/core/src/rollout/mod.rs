//! Rollout controls: the policy that decides, for a verified token, between beta, main and the
//! holdback control group. One implementation for the edge and the router, so the same document
//! means the same thing everywhere.
//!
//! Precedence, for a verified token (no token, or one that fails verification, is main before
//! any of this is read):
//! 1. `beta: "off"`: main (`kill_switch`);
//! 2. subject in `deny`: main (`denied`); subject in `allow`: beta (`allowed`);
//! 3. eligible when the token's beta claim (`beta_claim`; the flag service's answer instead,
//!    `flag_service`, when it gave one), a rule in order (`rule:NAME`) or the rollout bucket
//!    (`rollout_bucket`) says so; else main (`no_beta_claim`);
//! 4. an eligible subject in the holdback bucket is `holdback` (routed as main, labelled apart);
//!    every other eligible one is beta.
//!
//! Mapped headers (`headers`) are set for every verified token, whatever its cohort: they serve
//! other routing, which the beta kill switch does not govern.

pub mod bucket;
pub mod claim;
pub mod pattern;
pub mod policy;
pub mod rule;

use serde_json::{Map, Value};

use crate::decision::{BetaPolicy, Buckets, Decision, Reason};
use crate::Cohort;
pub use bucket::bucket;
pub use policy::{Policy, PolicyError};

/// The value of the cohort header on holdback requests.
pub const HOLDBACK_VALUE: &str = "holdback";

/// The published test vectors (README, "Rollout policy"): buckets, and decisions of policies
/// for claims. Checked natively here and in wasm through the worker (`tests/rollout.test.mjs`).
pub const VECTORS_JSON: &str = include_str!("vectors.json");

impl Policy {
    /// The decision for a verified token's claims, rule patterns matched in Rust.
    #[cfg(feature = "regex-lite")]
    pub fn decide(&self, claims: &Map<String, Value>, beta: &BetaPolicy) -> Decision {
        self.decide_matching(claims, beta, &rule::compiled(&self.rules), None)
    }

    /// The decision for a verified token's claims, rule patterns matched by `regex` (the edge's
    /// runtime `RegExp`). `flag` is the flag service's answer, when it gave one: it replaces the
    /// token's beta claim (`flag_service` when true; when false, the claim does not count).
    pub fn decide_matching(
        &self,
        claims: &Map<String, Value>,
        beta: &BetaPolicy,
        regex: rule::Matcher,
        flag: Option<bool>,
    ) -> Decision {
        let subject = self.subject.lookup(claims).and_then(claim::scalar_text);
        let buckets = subject.as_deref().map(|s| Buckets {
            rollout: bucket(bucket::ROLLOUT, &self.salt, s),
            holdback: bucket(bucket::HOLDBACK, &self.salt, s),
        });
        let mut d = self.cohort(claims, beta, subject.as_deref(), buckets, regex, flag);
        d.buckets = buckets;
        for (path, header) in &self.headers {
            let value = path.lookup(claims).and_then(claim::scalar_text);
            if let Some(v) = value.filter(|v| header_value_ok(v)) {
                d.inject.push((header.clone(), v));
            }
        }
        d
    }

    fn cohort(
        &self,
        claims: &Map<String, Value>,
        beta: &BetaPolicy,
        subject: Option<&str>,
        buckets: Option<Buckets>,
        regex: rule::Matcher,
        flag: Option<bool>,
    ) -> Decision {
        if !self.beta_on {
            return Decision::main(
                Reason::KillSwitch,
                Some("beta is off in the rollout policy".into()),
            );
        }
        if let Some(s) = subject {
            if self.denies(s) {
                return Decision::main(Reason::Denied, Some("the subject is in deny".into()));
            }
            if self.allows(s) {
                return Decision::beta(
                    beta,
                    Reason::Allowed,
                    Some("the subject is in allow".into()),
                );
            }
        }
        let rollout = self.rollout_slots();
        let (reason, rule, why) = if flag == Some(true) {
            let why = "the flag service's beta flag".to_owned();
            (Reason::FlagService, None, why)
        } else if flag.is_none() && beta.is_beta(claims) {
            (
                Reason::BetaClaim,
                None,
                format!("the token's {} claim", beta.claim),
            )
        } else if let Some(r) = self
            .rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.matches(i, claims, regex).then_some(r))
        {
            let why = format!("rule {} on claim {}", r.name, r.claim);
            (Reason::Rule, Some(r.name.clone()), why)
        } else {
            match buckets {
                Some(b) if b.rollout < rollout => (
                    Reason::RolloutBucket,
                    None,
                    format!(
                        "rollout bucket {} is below {rollout} ({}%)",
                        b.rollout,
                        percent(rollout)
                    ),
                ),
                Some(b) => {
                    let why = format!(
                        "no beta claim, no rule matched, rollout bucket {} is not below {rollout} ({}%)",
                        b.rollout,
                        percent(rollout)
                    );
                    return Decision::main(Reason::NoBetaClaim, Some(why));
                }
                None => {
                    let why = format!(
                        "no beta claim, no rule matched, no {} claim to bucket",
                        self.subject
                    );
                    return Decision::main(Reason::NoBetaClaim, Some(why));
                }
            }
        };
        let held = self.holdback_slots();
        match buckets {
            Some(b) if b.holdback < held => {
                let eligible = match &rule {
                    Some(name) => format!("rule:{name}"),
                    None => reason.code().to_owned(),
                };
                let why = format!(
                    "eligible by {eligible} ({why}); holdback bucket {} is below {held} ({}%)",
                    b.holdback,
                    percent(held)
                );
                Decision {
                    cohort: Cohort::Holdback,
                    reason: Reason::Holdback,
                    rule,
                    detail: Some(why),
                    inject: vec![(beta.cohort_header.clone(), HOLDBACK_VALUE.into())],
                    buckets: None,
                }
            }
            _ => {
                let mut d = Decision::beta(beta, reason, Some(why));
                d.rule = rule;
                d
            }
        }
    }
}

/// A number of slots as a share in percent (`500` is `5`, `525` is `5.25`), without float
/// formatting (which would cost the edge 11 KB of wasm).
fn percent(slots: u16) -> String {
    match slots % 100 {
        0 => format!("{}", slots / 100),
        r if r % 10 == 0 => format!("{}.{}", slots / 100, r / 10),
        r => format!("{}.{r:02}", slots / 100),
    }
}

/// Whether a claim's text can be a header value: visible ASCII, spaces and tabs, not at either
/// end (RFC 9110 5.5 without obs-text, which the Fetch API's `Headers` cannot always carry). A
/// claim that cannot is not sent.
fn header_value_ok(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with([' ', '\t'])
        && !v.ends_with([' ', '\t'])
        && v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

#[cfg(all(test, feature = "regex-lite"))]
mod tests;
