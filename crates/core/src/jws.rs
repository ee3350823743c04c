//! Strict parsing of a compact JWS (RFC 7515 section 7.1): `header.payload.signature`.
//!
//! Parsing only decodes; it trusts nothing. The header is read for `alg` and `kid` to pick a key,
//! the payload stays bytes until the signature over it has been checked.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedJws {
    /// The whole JOSE header, for display (`betaroute token verify`).
    pub header: Map<String, Value>,
    /// The `alg` header parameter as written.
    pub alg: String,
    /// The `kid` header parameter, when present.
    pub kid: Option<String>,
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Why a token could not be parsed. The message never includes the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Splits and decodes a compact JWS.
pub fn parse(token: &str) -> Result<ParsedJws, ParseError> {
    let err = |m: &str| ParseError(m.to_owned());
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let dots = token.bytes().filter(|&b| b == b'.').count();
        return Err(ParseError(if dots == 4 {
            "token has five parts: encrypted tokens (JWE) are not supported".into()
        } else {
            format!(
                "a compact JWS has three parts separated by dots, this token has {}",
                dots + 1
            )
        }));
    };
    let header_bytes = decode(h).ok_or_else(|| err("header is not base64url"))?;
    let payload = decode(p).ok_or_else(|| err("payload is not base64url"))?;
    let signature = decode(s).ok_or_else(|| err("signature is not base64url"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| err("header is not a JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        Some(_) => return Err(err("header \"alg\" is not a string")),
        None => return Err(err("header has no \"alg\"")),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(err("header \"kid\" is not a string")),
    };
    // RFC 7515 4.1.11: a recipient that does not understand a critical extension must reject the
    // JWS. betaroute understands none (this also rules out "b64": false, RFC 7797).
    if header.contains_key("crit") {
        return Err(err(
            "header lists critical extensions (\"crit\"), none of which are supported",
        ));
    }
    let signing_input = token.as_bytes()[..h.len() + 1 + p.len()].to_vec();
    Ok(ParsedJws {
        header,
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

/// Unpadded base64url only (RFC 7515 2): padding, `+`, `/` and whitespace are errors. Non-zero
/// trailing bits are rejected too, so one token has exactly one encoding.
fn decode(s: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        Base64UrlUnpadded::encode_string(s.as_bytes())
    }

    #[test]
    fn parses_a_token() {
        let t = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","kid":"k1"}"#),
            b64("{}"),
            b64("sig")
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, "HS256");
        assert_eq!(p.kid.as_deref(), Some("k1"));
        assert_eq!(p.signature, b"sig");
        assert_eq!(p.signing_input, t.rsplit_once('.').unwrap().0.as_bytes());
    }

    #[test]
    fn rejects_malformed_tokens() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let cases = [
            (String::new(), "three parts"),
            (format!("{h}.e30"), "three parts"),
            (format!("{h}.e30.AA.AA.AA"), "JWE"),
            (format!("{h}=.e30.AA"), "header is not base64url"),
            (format!("{h}.e30.A+A"), "signature is not base64url"),
            (format!("{}.e30.AA", b64("[]")), "not a JSON object"),
            (format!("{}.e30.AA", b64(r#"{"typ":"JWT"}"#)), "no \"alg\""),
            (format!("{}.e30.AA", b64(r#"{"alg":1}"#)), "not a string"),
            (
                format!("{}.e30.AA", b64(r#"{"alg":"HS256","kid":7}"#)),
                "\"kid\"",
            ),
            (
                format!(
                    "{}.e30.AA",
                    b64(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#)
                ),
                "crit",
            ),
        ];
        for (token, want) in cases {
            let e = parse(&token).unwrap_err();
            assert!(e.0.contains(want), "{token}: {}", e.0);
        }
    }
}
