//! Claim paths: dotted, with numeric segments indexing arrays (`teams.0.name`).

use std::fmt;

use serde_json::{Map, Value};

/// A parsed claim path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    text: String,
    segments: Vec<String>,
}

impl ClaimPath {
    /// A path of non-empty segments separated by `.`.
    pub fn parse(text: &str) -> Result<ClaimPath, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "claim path {text:?} has an empty segment (segments are separated by one \".\")"
            ));
        }
        Ok(ClaimPath {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path: a segment is a key in an object, or an index (decimal digits)
    /// into an array.
    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let mut segments = self.segments.iter();
        let mut cur = claims.get(segments.next()?)?;
        for s in segments {
            cur = match cur {
                Value::Object(m) => m.get(s)?,
                Value::Array(a) => a.get(index(s)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// An array index: decimal digits without a sign or a leading zero (but `0` itself).
fn index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A scalar claim as text: a string as is, a number or a boolean as its JSON text; `None` for a
/// null, an array or an object. Used for subjects and mapped header values.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(path: &str, claims: Value) -> Option<Value> {
        ClaimPath::parse(path)
            .unwrap()
            .lookup(claims.as_object().unwrap())
            .cloned()
    }

    #[test]
    fn nested_keys_and_array_elements() {
        let c = json!({"sub": "u1", "org": {"tier": "gold"}, "teams": [{"name": "tv"}, {"name": "web"}], "n": {"0": "zero"}});
        assert_eq!(at("sub", c.clone()), Some(json!("u1")));
        assert_eq!(at("org.tier", c.clone()), Some(json!("gold")));
        assert_eq!(at("teams.1.name", c.clone()), Some(json!("web")));
        assert_eq!(at("teams.2.name", c.clone()), None);
        assert_eq!(at("teams.01.name", c.clone()), None);
        assert_eq!(at("teams.x", c.clone()), None);
        assert_eq!(
            at("n.0", c.clone()),
            Some(json!("zero")),
            "a digit key in an object"
        );
        assert_eq!(at("org.tier.x", c), None);
        assert!(ClaimPath::parse("a..b").is_err() && ClaimPath::parse("").is_err());
    }

    #[test]
    fn scalars_as_text() {
        assert_eq!(scalar_text(&json!("gold")).as_deref(), Some("gold"));
        assert_eq!(scalar_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(scalar_text(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        for none in [json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(scalar_text(&none), None);
        }
    }
}
