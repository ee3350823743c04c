//! Claim rules: other claims that make a request beta, each `{"name", "claim", OP: VALUE}` with
//! exactly one operator.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::claim::ClaimPath;

/// One rule, validated.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub claim: ClaimPath,
    pub op: Op,
}

/// What a rule asks of its claim.
#[derive(Debug, Clone)]
pub enum Op {
    /// The claim exists (any value, `null` included).
    Present,
    /// The claim equals the value (numbers compare by value: `1` equals `1.0`).
    Equals(Value),
    /// The claim equals one of the values.
    OneOf(Vec<Value>),
    /// The claim is an array holding the value, or a string containing it.
    Contains(Value),
    /// The claim is a string the expression matches (Go/RE2 syntax, unanchored).
    Regex(regex_lite::Regex),
}

impl Rule {
    pub fn matches(&self, claims: &Map<String, Value>) -> bool {
        let Some(v) = self.claim.lookup(claims) else {
            return false;
        };
        match &self.op {
            Op::Present => true,
            Op::Equals(want) => same(v, want),
            Op::OneOf(list) => list.iter().any(|w| same(v, w)),
            Op::Contains(want) => match (v, want) {
                (Value::Array(items), _) => items.iter().any(|i| same(i, want)),
                (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
                _ => false,
            },
            Op::Regex(re) => v.as_str().is_some_and(|s| re.is_match(s)),
        }
    }
}

/// JSON equality, with numbers compared by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

/// A rule as written; [`Rule`] is made from it, or the error says what is wrong with it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Option<String>,
    claim: Option<String>,
    #[serde(default, deserialize_with = "given")]
    present: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    equals: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    one_of: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    contains: Option<Value>,
    #[serde(default, deserialize_with = "given")]
    regex: Option<Value>,
}

/// A field that is written, even as `null`.
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Rule, String> {
        let name = raw
            .name
            .filter(|n| !n.is_empty())
            .ok_or("a rule needs a \"name\" (a non-empty string)")?;
        let claim = raw
            .claim
            .ok_or_else(|| format!("rule {name:?} needs a \"claim\" (a claim path)"))?;
        let claim = ClaimPath::parse(&claim).map_err(|e| format!("rule {name:?}: {e}"))?;
        let ops = [
            ("present", raw.present),
            ("equals", raw.equals),
            ("one_of", raw.one_of),
            ("contains", raw.contains),
            ("regex", raw.regex),
        ];
        let given: Vec<(&str, Value)> = ops
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        let [(op, value)] = <[_; 1]>::try_from(given).map_err(|given| {
            let names: Vec<&str> = given.iter().map(|(k, _)| *k).collect();
            format!(
                "rule {name:?} needs exactly one of present, equals, one_of, contains, regex; it has {}",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            )
        })?;
        let op = match (op, value) {
            ("present", Value::Bool(true)) => Op::Present,
            ("present", _) => return Err(format!("rule {name:?}: \"present\" must be true")),
            ("equals", v) => Op::Equals(v),
            ("one_of", Value::Array(list)) => Op::OneOf(list),
            ("one_of", _) => return Err(format!("rule {name:?}: \"one_of\" must be a list")),
            ("contains", v) => Op::Contains(v),
            ("regex", Value::String(re)) => {
                Op::Regex(regex_lite::Regex::new(&re).map_err(|e| {
                    format!("rule {name:?}: regex {re:?} is not valid: {}", one_line(&e.to_string()))
                })?)
            }
            ("regex", _) => return Err(format!("rule {name:?}: \"regex\" must be a string")),
            _ => unreachable!("every operator is listed"),
        };
        Ok(Rule { name, claim, op })
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Result<Rule, String> {
        let raw: RawRule = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Rule::try_from(raw)
    }

    fn hits(r: Value, claims: Value) -> bool {
        rule(r).unwrap().matches(claims.as_object().unwrap())
    }

    #[test]
    fn every_operator() {
        let c = json!({"org": {"tier": "gold", "n": 3}, "groups": ["staff", "tv"], "email": "a@rikstv.no", "teams": [{"name": "web"}]});
        assert!(hits(json!({"name": "p", "claim": "org.tier", "present": true}), c.clone()));
        assert!(!hits(json!({"name": "p", "claim": "org.plan", "present": true}), c.clone()));
        assert!(hits(json!({"name": "e", "claim": "org.tier", "equals": "gold"}), c.clone()));
        assert!(hits(json!({"name": "e", "claim": "org.n", "equals": 3.0}), c.clone()));
        assert!(!hits(json!({"name": "e", "claim": "org.n", "equals": "3"}), c.clone()));
        assert!(hits(json!({"name": "o", "claim": "org.tier", "one_of": ["silver", "gold"]}), c.clone()));
        assert!(!hits(json!({"name": "o", "claim": "org.tier", "one_of": []}), c.clone()));
        assert!(hits(json!({"name": "c", "claim": "groups", "contains": "staff"}), c.clone()));
        assert!(!hits(json!({"name": "c", "claim": "groups", "contains": "sta"}), c.clone()));
        assert!(hits(json!({"name": "c", "claim": "email", "contains": "@rikstv"}), c.clone()));
        assert!(hits(json!({"name": "r", "claim": "email", "regex": "@rikstv\\.no$"}), c.clone()));
        assert!(hits(json!({"name": "r", "claim": "teams.0.name", "regex": "e"}), c.clone()), "unanchored");
        assert!(!hits(json!({"name": "r", "claim": "org.n", "regex": "3"}), c), "not a string");
    }

    #[test]
    fn malformed_rules_say_why() {
        let err = |v: Value| rule(v).unwrap_err();
        assert!(err(json!({"claim": "a", "present": true})).contains("needs a \"name\""));
        assert!(err(json!({"name": "x", "present": true})).contains("needs a \"claim\""));
        assert!(err(json!({"name": "x", "claim": "a"})).contains("it has none"));
        assert!(err(json!({"name": "x", "claim": "a", "equals": 1, "regex": "a"}))
            .contains("it has equals, regex"));
        assert!(err(json!({"name": "x", "claim": "a", "present": false})).contains("must be true"));
        assert!(err(json!({"name": "x", "claim": "a", "one_of": "a"})).contains("must be a list"));
        assert!(err(json!({"name": "x", "claim": "a", "regex": "("})).contains("is not valid"));
        assert!(err(json!({"name": "x", "claim": "a", "equal": 1})).contains("unknown field `equal`"));
        // `equals: null` is an operator, not a missing one.
        assert!(rule(json!({"name": "x", "claim": "a", "equals": null})).is_ok());
    }
}
