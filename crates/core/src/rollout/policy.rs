//! The rollout policy document: parsed strictly (unknown fields are errors, located by line and
//! column), validated once, then read by every decision.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::bucket;
use super::claim::ClaimPath;
use super::rule::{RawRule, Rule};

/// A validated rollout policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `beta: "on"` (the default) or `"off"`, the kill switch.
    pub beta_on: bool,
    /// Share of authenticated users in the rollout, in percent (two decimals).
    pub percent: f64,
    /// Share of beta-eligible users kept on main as a control group, in percent.
    pub holdback: f64,
    pub allow: BTreeSet<String>,
    pub deny: BTreeSet<String>,
    pub rules: Vec<Rule>,
    /// Claim path to header name, in the document's key order (sorted).
    pub headers: Vec<(ClaimPath, String)>,
    pub salt: String,
    /// The claim whose value buckets the user (`sub` by default).
    pub subject: ClaimPath,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            beta_on: true,
            percent: 0.0,
            holdback: 0.0,
            allow: BTreeSet::new(),
            deny: BTreeSet::new(),
            rules: Vec::new(),
            headers: Vec::new(),
            salt: String::new(),
            subject: ClaimPath::parse("sub").expect("a valid path"),
        }
    }
}

/// A policy that could not be read: what is wrong and where (1-based line and column of the
/// JSON text; 0 when the problem has no position, such as a duplicate header name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {} column {}: {}", self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        // serde reads a struct from an array too: a policy is only ever an object.
        let start = json.trim_start();
        if !start.starts_with('{') && !start.is_empty() {
            let before = &json[..json.len() - start.len()];
            return Err(PolicyError {
                message: "a rollout policy is a JSON object".into(),
                line: before.matches('\n').count() + 1,
                column: before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
            });
        }
        let raw: RawPolicy = serde_json::from_str(json).map_err(|e| {
            let text = e.to_string();
            // serde_json appends " at line L column C"; the position is kept as numbers.
            let message = match text.rsplit_once(" at line ") {
                Some((m, _)) if e.line() > 0 => m.to_owned(),
                _ => text,
            };
            PolicyError {
                message,
                line: e.line(),
                column: e.column(),
            }
        })?;
        raw.validate().map_err(|message| PolicyError {
            message,
            line: 0,
            column: 0,
        })
    }

    /// The header names the policy sets, as configured.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(_, h)| h.as_str())
    }

    /// The policy as a JSON document in canonical form (every field, sorted lists), for
    /// `betaroute rollout show` and for writing back an edited policy.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let rules: Vec<serde_json::Value> = self.rules.iter().map(rule_json).collect();
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(c, h)| (c.as_str().to_owned(), json!(h)))
            .collect();
        json!({
            "beta": if self.beta_on { "on" } else { "off" },
            "percent": share_json(self.percent),
            "holdback": share_json(self.holdback),
            "allow": self.allow,
            "deny": self.deny,
            "rules": rules,
            "headers": headers,
            "salt": self.salt,
            "subject": self.subject.as_str(),
        })
    }
}

/// A share as written by a person: `5`, not `5.0`.
fn share_json(p: f64) -> serde_json::Value {
    if p.fract() == 0.0 {
        serde_json::json!(p as u64)
    } else {
        serde_json::json!(p)
    }
}

fn rule_json(r: &Rule) -> serde_json::Value {
    use super::rule::Op;
    let mut m = serde_json::Map::new();
    m.insert("name".into(), r.name.clone().into());
    m.insert("claim".into(), r.claim.as_str().into());
    let (k, v) = match &r.op {
        Op::Present => ("present", true.into()),
        Op::Equals(v) => ("equals", v.clone()),
        Op::OneOf(l) => ("one_of", l.clone().into()),
        Op::Contains(v) => ("contains", v.clone()),
        Op::Regex(re) => ("regex", re.as_str().into()),
    };
    m.insert(k.into(), v);
    m.into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default, deserialize_with = "switch")]
    beta: Option<bool>,
    #[serde(default, deserialize_with = "share")]
    percent: Option<f64>,
    #[serde(default, deserialize_with = "share")]
    holdback: Option<f64>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    rules: Vec<RuleField>,
    #[serde(default, deserialize_with = "header_map")]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    salt: String,
    #[serde(default, deserialize_with = "claim_path")]
    subject: Option<ClaimPath>,
}

/// A rule, validated where it is read so that its error carries its position.
struct RuleField(Rule);

impl<'de> Deserialize<'de> for RuleField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RuleField, D::Error> {
        let raw = RawRule::deserialize(d)?;
        Rule::try_from(raw)
            .map(RuleField)
            .map_err(serde::de::Error::custom)
    }
}

fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match String::deserialize(d)?.as_str() {
        "on" => Ok(Some(true)),
        "off" => Ok(Some(false)),
        other => Err(serde::de::Error::custom(format!(
            "\"beta\" must be \"on\" or \"off\", not {other:?}"
        ))),
    }
}

/// A share in percent: 0 to 100 in steps of 0.01.
fn share<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let p = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&p) {
        return Err(serde::de::Error::custom(format!(
            "a share is 0 to 100 (percent), not {p}"
        )));
    }
    if ((p * 100.0) - (p * 100.0).round()).abs() > 1e-6 {
        return Err(serde::de::Error::custom(format!(
            "a share is given in steps of 0.01 (percent), not {p}"
        )));
    }
    Ok(Some(p))
}

fn claim_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClaimPath>, D::Error> {
    ClaimPath::parse(&String::deserialize(d)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `headers`: claim path to header name; each name a valid header name, each claim path valid.
fn header_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, String>::deserialize(d)?;
    for (claim, header) in &m {
        ClaimPath::parse(claim).map_err(serde::de::Error::custom)?;
        if !is_token(header) {
            return Err(serde::de::Error::custom(format!(
                "headers: {header:?} (for claim {claim:?}) is not a valid header name"
            )));
        }
    }
    Ok(m)
}

/// RFC 9110 token characters: what a header name may consist of.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl RawPolicy {
    /// Checks what needs the whole document: names that must be unique.
    fn validate(self) -> Result<Policy, String> {
        let mut names = BTreeSet::new();
        for RuleField(r) in &self.rules {
            if !names.insert(r.name.as_str()) {
                return Err(format!("rules: two rules are named {:?}", r.name));
            }
        }
        let headers: Vec<(ClaimPath, String)> = self
            .headers
            .into_iter()
            .map(|(c, h)| (ClaimPath::parse(&c).expect("checked when read"), h))
            .collect();
        let mut canonical = BTreeSet::new();
        for (_, h) in &headers {
            if !canonical.insert(h.to_ascii_lowercase().replace('_', "-")) {
                return Err(format!("headers: {h:?} is set by two claims"));
            }
        }
        if let Some(both) = self.allow.iter().find(|s| self.deny.contains(*s)) {
            return Err(format!(
                "subject {both:?} is in both allow and deny (deny would win: remove one)"
            ));
        }
        Ok(Policy {
            beta_on: self.beta.unwrap_or(true),
            percent: self.percent.unwrap_or(0.0),
            holdback: self.holdback.unwrap_or(0.0),
            allow: self.allow.into_iter().collect(),
            deny: self.deny.into_iter().collect(),
            rules: self.rules.into_iter().map(|RuleField(r)| r).collect(),
            headers,
            salt: self.salt,
            subject: self
                .subject
                .unwrap_or_else(|| ClaimPath::parse("sub").expect("a valid path")),
        })
    }
}

impl Policy {
    /// Slots of the rollout and the holdback (see [`bucket::slots`]).
    pub fn rollout_slots(&self) -> u16 {
        bucket::slots(self.percent)
    }

    pub fn holdback_slots(&self) -> u16 {
        bucket::slots(self.holdback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> PolicyError {
        Policy::parse(json).unwrap_err()
    }

    #[test]
    fn defaults() {
        let p = Policy::parse("{}").unwrap();
        assert!(p.beta_on && p.percent == 0.0 && p.holdback == 0.0);
        assert_eq!(p.subject.as_str(), "sub");
        assert_eq!(p.salt, "");
    }

    #[test]
    fn every_field() {
        let p = Policy::parse(
            r#"{"beta": "off", "percent": 12.34, "holdback": 10, "allow": ["a"], "deny": ["b"],
                "rules": [{"name": "staff", "claim": "groups", "contains": "staff"}],
                "headers": {"org.tier": "X-Tier"}, "salt": "s1", "subject": "user.id"}"#,
        )
        .unwrap();
        assert!(!p.beta_on);
        assert_eq!((p.rollout_slots(), p.holdback_slots()), (1234, 1000));
        assert_eq!(p.header_names().collect::<Vec<_>>(), ["X-Tier"]);
        assert_eq!(p.rules[0].name, "staff");
        assert_eq!(p.subject.as_str(), "user.id");
        let again = Policy::parse(&p.to_json().to_string()).unwrap();
        assert_eq!(again.to_json(), p.to_json());
    }

    #[test]
    fn errors_are_located() {
        let e = err("{\n  \"beta\": \"on\",\n  \"percnt\": 5\n}");
        assert_eq!((e.line, e.column), (3, 10), "{e}");
        assert!(e.message.starts_with("unknown field `percnt`"), "{e}");
        assert!(e.to_string().starts_with("line 3 column 10: unknown field"), "{e}");
        let e = err("{\"percent\": 101}");
        assert!(e.message.contains("0 to 100") && e.line == 1, "{e}");
        assert!(err("{\"percent\": 5.005}").message.contains("steps of 0.01"));
        assert!(err("{\"holdback\": -1}").message.contains("0 to 100"));
        assert!(err("{\"beta\": \"true\"}").message.contains("\"on\" or \"off\""));
        assert!(err("{\"beta\": true}").message.contains("invalid type"));
        let e = err("{\"rules\": [\n {\"name\": \"x\", \"claim\": \"a\"}]\n}");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("exactly one of"), "{e}");
        assert!(err("{\"headers\": {\"a\": \"X Tier\"}}").message.contains("not a valid header name"));
        assert!(err("{\"headers\": {\"a..b\": \"X-Tier\"}}").message.contains("empty segment"));
        assert!(err("{\"headers\": {\"a\": \"X-Tier\", \"b\": \"x_tier\"}}").message.contains("set by two claims"));
        assert!(err("{\"allow\": [\"u\"], \"deny\": [\"u\"]}").message.contains("both allow and deny"));
        assert!(err("{\"subject\": \"\"}").message.contains("empty segment"));
        assert_eq!(err("\n  []").to_string(), "line 2 column 3: a rollout policy is a JSON object");
        assert!(err("{").line == 1);
        let dup = err(r#"{"rules": [{"name": "a", "claim": "x", "present": true}, {"name": "a", "claim": "y", "present": true}]}"#);
        assert!(dup.message.contains("two rules are named \"a\""), "{dup}");
    }
}
