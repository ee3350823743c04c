//! The routing decision as data: which cohort a request belongs to, why, and which headers the
//! edge adds. Logged, explained and tested as a value.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::cohort::Cohort;

/// Why a request landed in its cohort. The codes are stable: logs, the CLI and tests use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Valid token carrying a truthy beta claim.
    BetaClaim,
    /// Valid token without a truthy beta claim.
    NoBetaClaim,
    /// No token in the request.
    NoToken,
    /// The token is larger than the configured limit; not parsed.
    TokenTooLarge,
    /// Not a well-formed compact JWS, or the payload is not a JSON object.
    Malformed,
    /// `alg` is `none` or not an algorithm betaroute implements.
    UnsupportedAlg,
    /// `alg` is valid but not in the configured allow-list.
    AlgNotAllowed,
    /// The token names a `kid` that no key has.
    UnknownKid,
    /// No configured key may verify this token's algorithm.
    NoMatchingKey,
    /// No candidate key verified the signature.
    BadSignature,
    Expired,
    MissingExp,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// A registered claim has the wrong JSON type.
    InvalidClaims,
    /// The verifier itself is misconfigured (e.g. unparsable keys): nobody is beta.
    ConfigError,
    /// The rollout policy's kill switch is off (`beta: "off"`): nobody is beta.
    KillSwitch,
    /// The subject is in the policy's `deny` list.
    Denied,
    /// The subject is in the policy's `allow` list.
    Allowed,
    /// Beta-eligible, but in the holdback bucket: kept on main as a control group.
    Holdback,
    /// The subject's rollout bucket is inside the policy's `percent`.
    RolloutBucket,
    /// A policy rule matched; [`Decision::rule`] names it (written `rule:NAME`).
    Rule,
    /// The flag service (OFREP) answered the beta flag with `true`.
    FlagService,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::BetaClaim => "beta_claim",
            Reason::NoBetaClaim => "no_beta_claim",
            Reason::NoToken => "no_token",
            Reason::TokenTooLarge => "token_too_large",
            Reason::Malformed => "malformed",
            Reason::UnsupportedAlg => "unsupported_alg",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::UnknownKid => "unknown_kid",
            Reason::NoMatchingKey => "no_matching_key",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::MissingExp => "missing_exp",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::InvalidClaims => "invalid_claims",
            Reason::ConfigError => "config_error",
            Reason::KillSwitch => "kill_switch",
            Reason::Denied => "denied",
            Reason::Allowed => "allowed",
            Reason::Holdback => "holdback",
            Reason::RolloutBucket => "rollout_bucket",
            Reason::Rule => "rule",
            Reason::FlagService => "flag_service",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Which claim makes a request beta, and which header says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetaPolicy {
    /// Claim name; a dotted path (`flags.beta`) reaches into nested objects when no top-level
    /// claim has the full name.
    pub claim: String,
    /// Header the edge sets to `true` for beta requests.
    pub header: String,
    /// Header the edge sets to `holdback` for holdback requests.
    pub cohort_header: String,
}

impl Default for BetaPolicy {
    fn default() -> Self {
        BetaPolicy {
            claim: "beta".into(),
            header: crate::cohort::DEFAULT_HEADER.into(),
            cohort_header: crate::cohort::DEFAULT_COHORT_HEADER.into(),
        }
    }
}

impl BetaPolicy {
    /// Whether verified claims make the request beta: the claim is present and not `false`,
    /// `null`, `"false"`, `0` or `""`.
    pub fn is_beta(&self, claims: &Map<String, Value>) -> bool {
        lookup(claims, &self.claim).is_some_and(truthy)
    }

    /// The decision for a verified token when no rollout policy is in force: the beta claim
    /// alone decides.
    pub fn decide(&self, claims: &Map<String, Value>) -> Decision {
        if self.is_beta(claims) {
            Decision::beta(self, Reason::BetaClaim, None)
        } else {
            Decision::main(Reason::NoBetaClaim, None)
        }
    }

    /// The decision for a verified token under `policy` (its rule patterns matched by
    /// `regex`), or the claim alone without one. `flag`, the flag service's answer when it gave
    /// one, stands in for the token's beta claim (it is fresher).
    pub fn decide_with(
        &self,
        policy: Option<&crate::rollout::Policy>,
        claims: &Map<String, Value>,
        regex: crate::rollout::rule::Matcher,
        flag: Option<bool>,
    ) -> Decision {
        match (policy, flag) {
            (Some(p), _) => p.decide_matching(claims, self, regex, flag),
            (None, Some(_)) => {
                crate::rollout::Policy::default().decide_matching(claims, self, regex, flag)
            }
            (None, None) => self.decide(claims),
        }
    }
}

fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !(s.is_empty() || s == "false"),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    }
}

/// Where a subject falls in the rollout and the holdback (0 to 9,999 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Buckets {
    pub rollout: u16,
    pub holdback: u16,
}

/// What the edge decided for one request.
///
/// Serialized as `{"cohort", "reason", "detail"?, "buckets"?, "inject"}`, `reason` as its code
/// (`rule:NAME` for a rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub cohort: Cohort,
    pub reason: Reason,
    /// The rule that decided, for [`Reason::Rule`] (and a holdback made eligible by a rule).
    pub rule: Option<String>,
    /// Human explanation of the reason (never the token or a secret).
    pub detail: Option<String>,
    /// Headers to add to the forwarded request.
    pub inject: Vec<(String, String)>,
    /// The subject's buckets, when a rollout policy read a subject.
    pub buckets: Option<Buckets>,
}

impl Decision {
    /// A main-cohort decision: nothing is injected.
    pub fn main(reason: Reason, detail: Option<String>) -> Decision {
        Decision {
            cohort: Cohort::Main,
            reason,
            rule: None,
            detail,
            inject: Vec::new(),
            buckets: None,
        }
    }

    /// A beta decision: the beta header is set to `true`.
    pub fn beta(policy: &BetaPolicy, reason: Reason, detail: Option<String>) -> Decision {
        Decision {
            cohort: Cohort::Beta,
            reason,
            rule: None,
            detail,
            inject: vec![(policy.header.clone(), crate::cohort::BETA_VALUE.into())],
            buckets: None,
        }
    }

    /// The reason as logs and reports write it: its code, `rule:NAME` for a rule.
    pub fn reason_text(&self) -> std::borrow::Cow<'static, str> {
        match (&self.reason, &self.rule) {
            (Reason::Rule, Some(name)) => format!("rule:{name}").into(),
            (r, _) => r.code().into(),
        }
    }
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("cohort", &self.cohort)?;
        m.serialize_entry("reason", &self.reason_text())?;
        if let Some(d) = &self.detail {
            m.serialize_entry("detail", d)?;
        }
        if let Some(b) = &self.buckets {
            m.serialize_entry("buckets", b)?;
        }
        m.serialize_entry("inject", &Inject(&self.inject))?;
        m.end()
    }
}

/// Headers to inject (name, value), serialized as an object of name to value.
#[derive(Debug, Clone, Copy)]
pub struct Inject<'a>(pub &'a [(String, String)]);

impl Serialize for Inject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            m.serialize_entry(name, value)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_of_the_beta_claim() {
        let p = BetaPolicy::default();
        let beta = |v: Value| p.is_beta(json!({ "beta": v }).as_object().unwrap());
        for yes in [
            json!(true),
            json!("true"),
            json!(1),
            json!("yes"),
            json!("0"),
            json!([]),
            json!({}),
        ] {
            assert!(beta(yes.clone()), "{yes}");
        }
        for no in [
            json!(false),
            json!(null),
            json!("false"),
            json!(0),
            json!(0.0),
            json!(""),
        ] {
            assert!(!beta(no.clone()), "{no}");
        }
        assert!(!p.is_beta(json!({"sub": "x"}).as_object().unwrap()));
    }

    #[test]
    fn nested_claim_path() {
        let p = BetaPolicy {
            claim: "flags.beta".into(),
            ..BetaPolicy::default()
        };
        assert!(p.is_beta(json!({"flags": {"beta": true}}).as_object().unwrap()));
        assert!(p.is_beta(json!({"flags.beta": true}).as_object().unwrap()));
        assert!(!p.is_beta(json!({"flags": {"beta": false}}).as_object().unwrap()));
        assert!(!p.is_beta(json!({"flags": true}).as_object().unwrap()));
    }

    #[test]
    fn decision_serializes_with_inject_map() {
        let d = BetaPolicy::default().decide(json!({"beta": true}).as_object().unwrap());
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"cohort": "beta", "reason": "beta_claim", "inject": {"X-RiksTV-Beta": "true"}})
        );
    }
}
