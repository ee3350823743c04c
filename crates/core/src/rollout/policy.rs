//! The rollout policy document: parsed strictly (unknown fields are errors, located by line and
//! column), validated once, then read by every decision.
//!
//! Read by hand from a `serde_json::Value` rather than through serde's derive: the edge already
//! carries `Value`, and the derived readers cost 40 KB of wasm (the bundle is capped at 200 KB
//! gzip). Positions come from [`locate`], which finds a field in the text.

use std::fmt;

use serde_json::{Map, Value};

use super::bucket;
use super::claim::ClaimPath;
use super::rule::Rule;

/// A validated rollout policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `beta: "on"` (the default) or `"off"`, the kill switch.
    pub beta_on: bool,
    /// Share of authenticated users in the rollout, in percent (two decimals).
    pub percent: f64,
    /// Share of beta-eligible users kept on main as a control group, in percent.
    pub holdback: f64,
    /// Subjects opted in and out, sorted (looked up by binary search).
    pub allow: Vec<String>,
    pub deny: Vec<String>,
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
            allow: Vec::new(),
            deny: Vec::new(),
            rules: Vec::new(),
            headers: Vec::new(),
            salt: String::new(),
            subject: ClaimPath::parse("sub").expect("a valid path"),
        }
    }
}

/// A policy that could not be read: what is wrong and where (1-based line and column of the
/// JSON text; 0 when the problem has no one place, such as two rules with one name).
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
            write!(
                f,
                "line {} column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for PolicyError {}

/// Every field of a policy.
pub const FIELDS: [&str; 9] = [
    "beta", "percent", "holdback", "allow", "deny", "rules", "headers", "salt", "subject",
];

/// A step of the path to a field: a key in an object or an index in an array.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let v: Value = serde_json::from_str(json).map_err(|e| {
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
        let fail = |path: &[Step], message: String| {
            let (line, column) = locate(json, path);
            PolicyError {
                message,
                line,
                column,
            }
        };
        let Value::Object(doc) = &v else {
            return Err(fail(&[], "a rollout policy is a JSON object".into()));
        };
        let mut p = Policy::default();
        for (key, value) in doc {
            let here = [Step::Key(key)];
            let field = |message: String| fail(&here, format!("{key}: {message}"));
            match key.as_str() {
                "beta" => {
                    p.beta_on = match value.as_str() {
                        Some("on") => true,
                        Some("off") => false,
                        _ => return Err(field(format!("must be \"on\" or \"off\", not {value}"))),
                    }
                }
                "percent" => p.percent = share(value).map_err(field)?,
                "holdback" => p.holdback = share(value).map_err(field)?,
                "allow" | "deny" => {
                    let list = subjects(value).map_err(|(i, m)| {
                        fail(&[Step::Key(key), Step::Index(i)], format!("{key}: {m}"))
                    })?;
                    if key == "allow" {
                        p.allow = list;
                    } else {
                        p.deny = list;
                    }
                }
                "rules" => {
                    let Value::Array(list) = value else {
                        return Err(field("must be a list of rules".into()));
                    };
                    for (i, r) in list.iter().enumerate() {
                        let rule = Rule::read(r).map_err(|(k, m)| {
                            let mut path = vec![Step::Key("rules"), Step::Index(i)];
                            if let Some(k) = &k {
                                path.push(Step::Key(k));
                            }
                            fail(&path, format!("rules: {m}"))
                        })?;
                        if p.rules.iter().any(|r| r.name == rule.name) {
                            let msg = format!("rules: two rules are named {:?}", rule.name);
                            return Err(fail(&[Step::Key("rules"), Step::Index(i)], msg));
                        }
                        p.rules.push(rule);
                    }
                }
                "headers" => {
                    p.headers = headers(value).map_err(|(k, m)| {
                        let path: Vec<Step> = std::iter::once(Step::Key("headers"))
                            .chain(k.as_deref().map(Step::Key))
                            .collect();
                        fail(&path, format!("headers: {m}"))
                    })?
                }
                "salt" => {
                    p.salt = value
                        .as_str()
                        .ok_or_else(|| field("must be a string".into()))?
                        .to_owned()
                }
                "subject" => {
                    let text = value
                        .as_str()
                        .ok_or_else(|| field("must be a claim path (a string)".into()))?;
                    p.subject = ClaimPath::parse(text).map_err(field)?;
                }
                _ => {
                    let msg = format!(
                        "unknown field `{key}`, expected one of {}",
                        FIELDS.join(", ")
                    );
                    return Err(fail(&here, msg));
                }
            }
        }
        if let Some(both) = p.allow.iter().find(|s| p.denies(s)) {
            let msg =
                format!("subject {both:?} is in both allow and deny (deny would win: remove one)");
            return Err(fail(&[Step::Key("allow")], msg));
        }
        Ok(p)
    }

    pub fn allows(&self, subject: &str) -> bool {
        self.allow
            .binary_search_by(|s| s.as_str().cmp(subject))
            .is_ok()
    }

    pub fn denies(&self, subject: &str) -> bool {
        self.deny
            .binary_search_by(|s| s.as_str().cmp(subject))
            .is_ok()
    }

    /// The header names the policy sets, as configured.
    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(_, h)| h.as_str())
    }

    /// Slots of the rollout and the holdback (see [`bucket::slots`]).
    pub fn rollout_slots(&self) -> u16 {
        bucket::slots(self.percent)
    }

    pub fn holdback_slots(&self) -> u16 {
        bucket::slots(self.holdback)
    }

    /// The policy as a JSON document in canonical form (every field, sorted lists), for
    /// `betaroute rollout show` and for writing back an edited policy.
    pub fn to_json(&self) -> Value {
        use serde_json::json;
        let rules: Vec<Value> = self.rules.iter().map(rule_json).collect();
        let headers: Map<String, Value> = self
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

/// A share in percent: 0 to 100 in steps of 0.01.
fn share(v: &Value) -> Result<f64, String> {
    let p = v
        .as_f64()
        .ok_or_else(|| format!("a share is a number (percent, 0 to 100), not {v}"))?;
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("a share is 0 to 100 (percent), not {v}"));
    }
    if ((p * 100.0) - (p * 100.0).round()).abs() > 1e-6 {
        return Err(format!(
            "a share is given in steps of 0.01 (percent), not {v}"
        ));
    }
    Ok(p)
}

/// `allow` / `deny`: a list of subjects, returned sorted and without repeats. The error is the
/// index of the bad entry and why.
fn subjects(v: &Value) -> Result<Vec<String>, (usize, String)> {
    let Value::Array(list) = v else {
        return Err((0, "must be a list of subjects (strings)".into()));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match s {
            Value::String(s) => out.push(s.clone()),
            other => return Err((i, format!("a subject is a string, not {other}"))),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A problem in one field: the key at fault inside it, if one is, and what is wrong.
type FieldError = (Option<String>, String);

/// `headers`: claim path to header name. The error names the key at fault, if one is.
fn headers(v: &Value) -> Result<Vec<(ClaimPath, String)>, FieldError> {
    let Value::Object(m) = v else {
        return Err((
            None,
            "must be an object from claim path to header name".into(),
        ));
    };
    let mut out: Vec<(ClaimPath, String)> = Vec::with_capacity(m.len());
    for (claim, header) in m {
        let at = |msg: String| (Some(claim.clone()), msg);
        let path = ClaimPath::parse(claim).map_err(at)?;
        let Some(header) = header.as_str().filter(|h| is_token(h)) else {
            return Err(at(format!(
                "{header} (for claim {claim:?}) is not a valid header name"
            )));
        };
        let canonical = |h: &str| h.to_ascii_lowercase().replace('_', "-");
        if out.iter().any(|(_, h)| canonical(h) == canonical(header)) {
            return Err(at(format!("{header:?} is set by two claims")));
        }
        out.push((path, header.to_owned()));
    }
    Ok(out)
}

/// RFC 9110 token characters: what a header name may consist of.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A share as written by a person: `5`, not `5.0`.
fn share_json(p: f64) -> Value {
    if p.fract() == 0.0 {
        serde_json::json!(p as u64)
    } else {
        serde_json::json!(p)
    }
}

fn rule_json(r: &Rule) -> Value {
    use super::rule::Op;
    let mut m = Map::new();
    m.insert("name".into(), r.name.clone().into());
    m.insert("claim".into(), r.claim.as_str().into());
    let (k, v) = match &r.op {
        Op::Present => ("present", true.into()),
        Op::Equals(v) => ("equals", v.clone()),
        Op::OneOf(l) => ("one_of", l.clone().into()),
        Op::Contains(v) => ("contains", v.clone()),
        Op::Regex(re) => ("regex", re.pattern.source.clone().into()),
    };
    m.insert(k.into(), v);
    m.into()
}

/// The 1-based line and column in `json` (valid JSON) where the value at `path` is written (for
/// a key, where the key is written); the start of the text for the empty path, and the deepest
/// step found when the path does not exist.
pub fn locate(json: &str, path: &[Step]) -> (usize, usize) {
    let b = json.as_bytes();
    let mut at = skip_ws(b, 0);
    for (depth, step) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        match (b.get(at), step) {
            (Some(b'{'), Step::Key(want)) => {
                let mut i = skip_ws(b, at + 1);
                let mut found = None;
                while b.get(i) == Some(&b'"') {
                    let key_at = i;
                    let end = skip_string(b, i);
                    let key: Option<String> = serde_json::from_str(&json[key_at..end]).ok();
                    i = skip_ws(b, skip_ws(b, end) + 1); // past ':'
                    if key.as_deref() == Some(*want) {
                        found = Some(if last { key_at } else { i });
                    }
                    i = skip_ws(b, skip_value(b, i));
                    if b.get(i) == Some(&b',') {
                        i = skip_ws(b, i + 1);
                    }
                }
                match found {
                    Some(f) => at = f,
                    None => break,
                }
            }
            (Some(b'['), Step::Index(want)) => {
                let mut i = skip_ws(b, at + 1);
                let mut n = 0;
                while i < b.len() && b[i] != b']' && n < *want {
                    i = skip_ws(b, skip_value(b, i));
                    if b.get(i) == Some(&b',') {
                        i = skip_ws(b, i + 1);
                    }
                    n += 1;
                }
                if n != *want || b.get(i) == Some(&b']') {
                    break;
                }
                at = i;
            }
            _ => break,
        }
    }
    let before = &json[..at.min(json.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Past the string starting at `i` (its opening quote).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Past the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            j
        }
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
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.starts_with("unknown field `percnt`"), "{e}");
        assert!(
            e.to_string().starts_with("line 3 column 3: unknown field"),
            "{e}"
        );
        let e = err("{\"percent\": 101}");
        assert!(e.message.contains("0 to 100") && e.line == 1, "{e}");
        assert!(err("{\"percent\": 5.005}")
            .message
            .contains("steps of 0.01"));
        assert!(err("{\"holdback\": -1}").message.contains("0 to 100"));
        assert!(err("{\"beta\": \"true\"}")
            .message
            .contains("\"on\" or \"off\""));
        assert!(err("{\"beta\": true}")
            .message
            .contains("\"on\" or \"off\""));
        let e = err("{\"rules\": [\n {\"name\": \"x\", \"claim\": \"a\"}]\n}");
        assert_eq!((e.line, e.column), (2, 2), "{e}");
        assert!(e.message.contains("exactly one of"), "{e}");
        let e = err("{\"rules\": [{\"name\": \"a\", \"claim\": \"x\", \"present\": true},\n  {\"name\": \"b\",\n   \"claim\": \"y\", \"regex\": \"(\"}]}");
        assert_eq!((e.line, e.column), (3, 18), "{e}");
        assert!(e.message.contains("rule \"b\": regex"), "{e}");
        assert!(err("{\"headers\": {\"a\": \"X Tier\"}}")
            .message
            .contains("not a valid header name"));
        assert!(err("{\"headers\": {\"a..b\": \"X-Tier\"}}")
            .message
            .contains("empty segment"));
        assert!(err("{\"headers\": {\"a\": \"X-Tier\", \"b\": \"x_tier\"}}")
            .message
            .contains("set by two claims"));
        assert!(err("{\"allow\": [\"u\"], \"deny\": [\"u\"]}")
            .message
            .contains("both allow and deny"));
        assert!(err("{\"subject\": \"\"}").message.contains("empty segment"));
        assert_eq!(
            err("\n  []").to_string(),
            "line 2 column 3: a rollout policy is a JSON object"
        );
        assert!(err("{").line == 1);
        let dup = err(
            r#"{"rules": [{"name": "a", "claim": "x", "present": true}, {"name": "a", "claim": "y", "present": true}]}"#,
        );
        assert!(dup.message.contains("two rules are named \"a\""), "{dup}");
        assert_eq!(dup.column, 58, "{dup}");
        let e = err("{\"headers\": {\"org.tier\": \"X-Tier\",\n \"x\": 1}}");
        assert_eq!((e.line, e.column), (2, 2), "{e}");
        let e = err("{\"deny\": [\"a\", 2]}");
        assert_eq!((e.line, e.column), (1, 16), "{e}");
        assert!(err("{\"percent\": \"5\"}").message.contains("is a number"));
    }
}
