//! Claim rules: other claims that make a request beta, each `{"name", "claim", OP: VALUE}` with
//! exactly one operator.

use serde_json::{Map, Value};

use super::claim::ClaimPath;
use super::pattern::Pattern;

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
    Regex(Regex),
}

/// A rule's pattern, checked and normalized ([`Pattern`]); compiled for Rust when core matches
/// it itself (the edge matches `pattern.js` with the runtime's `RegExp` instead).
#[derive(Debug, Clone)]
pub struct Regex {
    pub pattern: Pattern,
    #[cfg(feature = "regex-lite")]
    compiled: regex_lite::Regex,
}

impl Regex {
    fn new(source: &str) -> Result<Regex, String> {
        let pattern = Pattern::parse(source)?;
        #[cfg(feature = "regex-lite")]
        let compiled =
            regex_lite::Regex::new(&pattern.rust).map_err(|e| one_line(&e.to_string()))?;
        Ok(Regex {
            pattern,
            #[cfg(feature = "regex-lite")]
            compiled,
        })
    }
}

/// Matches a rule's pattern (by the rule's index in its policy) against a claim's text.
pub type Matcher<'a> = &'a dyn Fn(usize, &str) -> bool;

/// The matcher of patterns compiled in Rust.
#[cfg(feature = "regex-lite")]
pub fn compiled(rules: &[Rule]) -> impl Fn(usize, &str) -> bool + '_ {
    move |i, text| match rules.get(i).map(|r| &r.op) {
        Some(Op::Regex(re)) => re.compiled.is_match(text),
        _ => false,
    }
}

impl Rule {
    /// Whether the claims match; `index` is the rule's place in its policy, for `regex`.
    pub fn matches(&self, index: usize, claims: &Map<String, Value>, regex: Matcher) -> bool {
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
            Op::Regex(_) => v.as_str().is_some_and(|s| regex(index, s)),
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

impl Rule {
    /// A rule as written: `{"name", "claim", OP: VALUE}` with exactly one operator. The error
    /// names the field at fault (its key, for the caller to locate) and what is wrong.
    pub fn read(v: &Value) -> Result<Rule, (Option<String>, String)> {
        let obj = v.as_object().ok_or((
            None,
            "a rule is an object: {\"name\", \"claim\", OP: VALUE}".to_owned(),
        ))?;
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let msg = format!("unknown field `{k}`, expected one of {}", FIELDS.join(", "));
            return Err((Some(k.clone()), msg));
        }
        let name = match obj.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => {
                let msg = "a rule needs a \"name\" (a non-empty string)".to_owned();
                return Err((obj.contains_key("name").then(|| "name".into()), msg));
            }
        };
        let at = |k: &str, msg: String| (Some(k.to_owned()), format!("rule {name:?}: {msg}"));
        let claim = match obj.get("claim") {
            Some(Value::String(c)) => ClaimPath::parse(c).map_err(|e| at("claim", e))?,
            Some(_) => {
                return Err(at(
                    "claim",
                    "\"claim\" must be a claim path (a string)".into(),
                ))
            }
            None => {
                return Err((
                    None,
                    format!("rule {name:?} needs a \"claim\" (a claim path)"),
                ))
            }
        };
        let ops: Vec<(&str, &Value)> = OPS
            .iter()
            .filter_map(|k| Some((*k, obj.get(*k)?)))
            .collect();
        let [(op, value)] = ops[..] else {
            let names: Vec<&str> = ops.iter().map(|(k, _)| *k).collect();
            let has = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            let msg = format!(
                "rule {name:?} needs exactly one of {}; it has {has}",
                OPS.join(", ")
            );
            return Err((names.get(1).map(|k| (*k).to_owned()), msg));
        };
        let op = match (op, value) {
            ("present", Value::Bool(true)) => Op::Present,
            ("present", _) => return Err(at(op, "\"present\" must be true".into())),
            ("equals", v) => Op::Equals(v.clone()),
            ("one_of", Value::Array(list)) => Op::OneOf(list.clone()),
            ("one_of", _) => return Err(at(op, "\"one_of\" must be a list".into())),
            ("contains", v) => Op::Contains(v.clone()),
            ("regex", Value::String(re)) => Op::Regex(
                Regex::new(re).map_err(|e| at(op, format!("regex {re:?} is not valid: {e}")))?,
            ),
            ("regex", _) => return Err(at(op, "\"regex\" must be a string".into())),
            _ => unreachable!("every operator is listed"),
        };
        Ok(Rule { name, claim, op })
    }
}

const OPS: [&str; 5] = ["present", "equals", "one_of", "contains", "regex"];
const FIELDS: [&str; 7] = [
    "name", "claim", "present", "equals", "one_of", "contains", "regex",
];

#[cfg(feature = "regex-lite")]
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(all(test, feature = "regex-lite"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Result<Rule, String> {
        Rule::read(&v).map_err(|(_, e)| e)
    }

    fn hits(r: Value, claims: Value) -> bool {
        let r = rule(r).unwrap();
        let rules = [r];
        let regex = compiled(&rules);
        rules[0].matches(0, claims.as_object().unwrap(), &regex)
    }

    #[test]
    fn every_operator() {
        let c = json!({"org": {"tier": "gold", "n": 3}, "groups": ["staff", "tv"], "email": "a@rikstv.no", "teams": [{"name": "web"}]});
        assert!(hits(
            json!({"name": "p", "claim": "org.tier", "present": true}),
            c.clone()
        ));
        assert!(!hits(
            json!({"name": "p", "claim": "org.plan", "present": true}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "e", "claim": "org.tier", "equals": "gold"}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "e", "claim": "org.n", "equals": 3.0}),
            c.clone()
        ));
        assert!(!hits(
            json!({"name": "e", "claim": "org.n", "equals": "3"}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "o", "claim": "org.tier", "one_of": ["silver", "gold"]}),
            c.clone()
        ));
        assert!(!hits(
            json!({"name": "o", "claim": "org.tier", "one_of": []}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "c", "claim": "groups", "contains": "staff"}),
            c.clone()
        ));
        assert!(!hits(
            json!({"name": "c", "claim": "groups", "contains": "sta"}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "c", "claim": "email", "contains": "@rikstv"}),
            c.clone()
        ));
        assert!(hits(
            json!({"name": "r", "claim": "email", "regex": "@rikstv\\.no$"}),
            c.clone()
        ));
        assert!(
            hits(
                json!({"name": "r", "claim": "teams.0.name", "regex": "e"}),
                c.clone()
            ),
            "unanchored"
        );
        assert!(
            !hits(json!({"name": "r", "claim": "org.n", "regex": "3"}), c),
            "not a string"
        );
    }

    #[test]
    fn malformed_rules_say_why() {
        let err = |v: Value| rule(v).unwrap_err();
        assert!(err(json!({"claim": "a", "present": true})).contains("needs a \"name\""));
        assert!(err(json!({"name": "x", "present": true})).contains("needs a \"claim\""));
        assert!(err(json!({"name": "x", "claim": "a"})).contains("it has none"));
        assert!(
            err(json!({"name": "x", "claim": "a", "equals": 1, "regex": "a"}))
                .contains("it has equals, regex")
        );
        assert!(err(json!({"name": "x", "claim": "a", "present": false})).contains("must be true"));
        assert!(err(json!({"name": "x", "claim": "a", "one_of": "a"})).contains("must be a list"));
        assert!(err(json!({"name": "x", "claim": "a", "regex": "("})).contains("is not valid"));
        assert!(
            err(json!({"name": "x", "claim": "a", "equal": 1})).contains("unknown field `equal`")
        );
        // `equals: null` is an operator, not a missing one.
        assert!(rule(json!({"name": "x", "claim": "a", "equals": null})).is_ok());
    }
}
