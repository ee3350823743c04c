//! Registered claim validation (RFC 7519 section 4.1) with an injected clock.

use serde_json::{Map, Value};

use crate::decision::Reason;

/// What the verifier requires of the registered claims.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimsPolicy {
    /// Required `iss`, compared exactly.
    pub issuer: Option<String>,
    /// Accepted audiences: when non-empty, the token's `aud` (string or array) must name one.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// Whether a token without `exp` is rejected (the default: RFC 8725 3.10 advice).
    pub require_exp: bool,
}

impl Default for ClaimsPolicy {
    fn default() -> Self {
        ClaimsPolicy {
            issuer: None,
            audiences: Vec::new(),
            leeway: 60,
            require_exp: true,
        }
    }
}

/// Validates `exp`, `nbf`, `iss` and `aud` at time `now` (Unix seconds).
/// Returns the reason and a human detail on failure.
pub fn validate(
    claims: &Map<String, Value>,
    policy: &ClaimsPolicy,
    now: f64,
) -> Result<(), (Reason, String)> {
    let leeway = policy.leeway as f64;
    match numeric_date(claims, "exp")? {
        // RFC 7519 4.1.4: the current time MUST be before the expiration time.
        Some(exp) if now >= exp + leeway => {
            return Err((
                Reason::Expired,
                format!(
                    "token expired at {} (now {}, leeway {}s)",
                    Seconds(exp),
                    Seconds(now),
                    policy.leeway
                ),
            ))
        }
        Some(_) => {}
        None if policy.require_exp => {
            return Err((Reason::MissingExp, "token has no \"exp\" claim".into()))
        }
        None => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now < nbf - leeway {
            return Err((
                Reason::NotYetValid,
                format!(
                    "token is not valid before {} (now {}, leeway {}s)",
                    Seconds(nbf),
                    Seconds(now),
                    policy.leeway
                ),
            ));
        }
    }
    if let Some(want) = &policy.issuer {
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == want => {}
            Some(Value::String(iss)) => {
                return Err((
                    Reason::WrongIssuer,
                    format!("issuer {iss:?} is not {want:?}"),
                ))
            }
            Some(_) => return Err((Reason::InvalidClaims, "\"iss\" is not a string".into())),
            None => {
                return Err((
                    Reason::WrongIssuer,
                    format!("token has no \"iss\", {want:?} required"),
                ))
            }
        }
    }
    if !policy.audiences.is_empty() {
        let accepted = |a: &str| policy.audiences.iter().any(|w| w == a);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted(a),
            Some(Value::Array(list)) => {
                let mut any = false;
                for a in list {
                    match a {
                        Value::String(a) => any |= accepted(a),
                        _ => {
                            return Err((
                                Reason::InvalidClaims,
                                "\"aud\" holds a non-string".into(),
                            ))
                        }
                    }
                }
                any
            }
            Some(_) => {
                return Err((
                    Reason::InvalidClaims,
                    "\"aud\" is not a string or an array".into(),
                ))
            }
            None => false,
        };
        if !ok {
            return Err((
                Reason::WrongAudience,
                format!(
                    "audience does not include {}",
                    policy.audiences.join(" or ")
                ),
            ));
        }
    }
    Ok(())
}

/// A time in seconds as a detail shows it: whole seconds, or three decimals. Written with
/// integers: float formatting would cost the edge 15 KB of wasm.
struct Seconds(f64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = (self.0 * 1000.0).round();
        if !ms.is_finite() || ms.abs() >= 9.0e15 {
            return f.write_str("an out-of-range time");
        }
        let ms = ms as i64;
        let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
        match ms % 1000 {
            0 => write!(f, "{sign}{}", ms / 1000),
            r => write!(f, "{sign}{}.{r:03}", ms / 1000),
        }
    }
}

/// A NumericDate (RFC 7519 2): a JSON number of seconds, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, (Reason, String)> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err((
                Reason::InvalidClaims,
                format!("\"{name}\" is not a finite number"),
            )),
        },
        Some(_) => Err((
            Reason::InvalidClaims,
            format!("\"{name}\" is not a NumericDate"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(claims: Value, policy: &ClaimsPolicy, now: f64) -> Result<(), Reason> {
        validate(claims.as_object().unwrap(), policy, now).map_err(|(r, _)| r)
    }

    #[test]
    fn exp_and_nbf_with_leeway() {
        let p = ClaimsPolicy::default();
        assert_eq!(check(json!({"exp": 1000}), &p, 1059.0), Ok(()));
        assert_eq!(
            check(json!({"exp": 1000}), &p, 1060.0),
            Err(Reason::Expired)
        );
        assert_eq!(check(json!({"exp": 1000.5}), &p, 1060.0), Ok(()));
        assert_eq!(check(json!({}), &p, 0.0), Err(Reason::MissingExp));
        assert_eq!(
            check(json!({"exp": "1000"}), &p, 0.0),
            Err(Reason::InvalidClaims)
        );
        let no_exp = ClaimsPolicy {
            require_exp: false,
            ..p.clone()
        };
        assert_eq!(check(json!({}), &no_exp, 0.0), Ok(()));
        assert_eq!(check(json!({"exp": 2000, "nbf": 1100}), &p, 1040.0), Ok(()));
        assert_eq!(
            check(json!({"exp": 2000, "nbf": 1100}), &p, 1039.0),
            Err(Reason::NotYetValid)
        );
        let strict = ClaimsPolicy { leeway: 0, ..p };
        assert_eq!(
            check(json!({"exp": 1000}), &strict, 1000.0),
            Err(Reason::Expired)
        );
        assert_eq!(check(json!({"exp": 1000}), &strict, 999.0), Ok(()));
    }

    #[test]
    fn times_in_details() {
        assert_eq!(Seconds(1000.0).to_string(), "1000");
        assert_eq!(Seconds(1000.5).to_string(), "1000.500");
        assert_eq!(Seconds(-1.25).to_string(), "-1.250");
        assert_eq!(Seconds(f64::NAN).to_string(), "an out-of-range time");
    }

    #[test]
    fn issuer_and_audience() {
        let p = ClaimsPolicy {
            issuer: Some("https://auth".into()),
            audiences: vec!["api".into()],
            ..ClaimsPolicy::default()
        };
        let ok = json!({"exp": 10, "iss": "https://auth", "aud": "api"});
        assert_eq!(check(ok, &p, 0.0), Ok(()));
        assert_eq!(
            check(
                json!({"exp": 10, "iss": "https://auth", "aud": ["x", "api"]}),
                &p,
                0.0
            ),
            Ok(())
        );
        assert_eq!(
            check(
                json!({"exp": 10, "iss": "https://evil", "aud": "api"}),
                &p,
                0.0
            ),
            Err(Reason::WrongIssuer)
        );
        assert_eq!(
            check(json!({"exp": 10, "aud": "api"}), &p, 0.0),
            Err(Reason::WrongIssuer)
        );
        assert_eq!(
            check(
                json!({"exp": 10, "iss": "https://auth", "aud": "web"}),
                &p,
                0.0
            ),
            Err(Reason::WrongAudience)
        );
        assert_eq!(
            check(json!({"exp": 10, "iss": "https://auth"}), &p, 0.0),
            Err(Reason::WrongAudience)
        );
        assert_eq!(
            check(
                json!({"exp": 10, "iss": "https://auth", "aud": [1]}),
                &p,
                0.0
            ),
            Err(Reason::InvalidClaims)
        );
    }
}
