//! Signed routing decisions: the edge proves to the origin router which routing headers it set.
//!
//! Without this, anyone who can reach the router directly can send `X-RiksTV-Beta: true`
//! (Traefik routes before any middleware could object). The edge signs, with a shared HMAC key,
//! a canonical string of the routing headers it set (or their absence), the request's method,
//! host and path, and a timestamp. The router recomputes it: routing headers without a valid,
//! fresh signature are removed before matching.
//!
//! Header value: `v1; kid=KEY_ID; t=UNIX_SECONDS; h=name1,name2; mac=BASE64URL(HMAC-SHA256)`.
//!
//! Canonical string (lines joined by `\n`):
//! ```text
//! betaroute-routing-v1
//! <t>
//! <METHOD>
//! <host, lowercased>
//! <path as sent, without the query>
//! <name>:<1:value | 0>        one line per signed header name, lowercased, in `h` order
//! ```

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Default name of the signature header.
pub const DEFAULT_HEADER: &str = "X-BetaRoute-Signature";
/// Minimum key size: HMAC-SHA256 keys shorter than the hash are refused (RFC 7518 3.2 spirit).
pub const MIN_KEY_BYTES: usize = 32;

/// One signing key with its id. Several can be configured for rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct RoutingKey {
    pub kid: String,
    key: Vec<u8>,
}

impl fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutingKey({}, {} bytes)", self.kid, self.key.len())
    }
}

impl RoutingKey {
    pub fn new(kid: &str, key: Vec<u8>) -> Result<RoutingKey, String> {
        if kid.is_empty()
            || !kid
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b";,=".contains(&b))
        {
            return Err(format!(
                "key id {kid:?} must be non-empty printable ASCII without ; , ="
            ));
        }
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "key {kid:?} has {} bytes; at least {MIN_KEY_BYTES} are required",
                key.len()
            ));
        }
        Ok(RoutingKey {
            kid: kid.to_owned(),
            key,
        })
    }

    /// Keys from a JWKS of `oct` keys (`{"keys":[{"kty":"oct","kid":"r1","k":"..."}]}`), the format
    /// of the edge secret and of the router's keys file.
    pub fn from_jwks(json: &str) -> Result<Vec<RoutingKey>, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let keys = v
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("expected {\"keys\":[...]}")?;
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let kid = k
                .get("kid")
                .and_then(|v| v.as_str())
                .ok_or(format!("key #{i} has no kid"))?;
            if k.get("kty").and_then(|v| v.as_str()) != Some("oct") {
                return Err(format!("key {kid:?} is not kty oct"));
            }
            let raw = k
                .get("k")
                .and_then(|v| v.as_str())
                .ok_or(format!("key {kid:?} has no k"))?;
            let bytes = Base64UrlUnpadded::decode_vec(raw)
                .map_err(|_| format!("key {kid:?}: k is not base64url"))?;
            out.push(RoutingKey::new(kid, bytes)?);
        }
        if out.is_empty() {
            return Err("no keys".into());
        }
        Ok(out)
    }
}

/// What the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
}

fn canonical(t: u64, req: &Request<'_>, headers: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut s = format!(
        "betaroute-routing-v1\n{t}\n{}\n{}\n{}",
        req.method,
        req.host.to_ascii_lowercase(),
        req.path
    );
    for (name, value) in headers {
        s.push('\n');
        s.push_str(&name.to_ascii_lowercase());
        match value {
            Some(v) => {
                s.push_str(":1:");
                s.push_str(v);
            }
            None => s.push_str(":0"),
        }
    }
    s.into_bytes()
}

fn mac(key: &RoutingKey, data: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.key).expect("HMAC takes any key size");
    m.update(data);
    m
}

/// The signature header value for a request whose routing headers are `headers`
/// (name, value-or-absent), at time `t`.
pub fn sign(
    key: &RoutingKey,
    t: u64,
    req: &Request<'_>,
    headers: &[(&str, Option<&str>)],
) -> String {
    let tag = mac(key, &canonical(t, req, headers))
        .finalize()
        .into_bytes();
    let names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    format!(
        "v1; kid={}; t={t}; h={}; mac={}",
        key.kid,
        names.join(","),
        Base64UrlUnpadded::encode_string(&tag)
    )
}

/// Why a signature was not accepted. The codes label the router's rejection metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejected {
    Missing,
    Malformed,
    UnknownKid,
    Expired,
    FromTheFuture,
    BadMac,
}

impl Rejected {
    pub fn code(self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Malformed => "malformed",
            Rejected::UnknownKid => "unknown_kid",
            Rejected::Expired => "expired",
            Rejected::FromTheFuture => "from_the_future",
            Rejected::BadMac => "bad_mac",
        }
    }
}

/// Freshness rules: a signature older than `max_age` (plus `skew`), or more than `skew` in the
/// future, is refused.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub max_age: u64,
    pub skew: u64,
}

/// Verifies a signature header value. On success returns the (lowercased) header names it
/// covers: routing headers outside that list are not vouched for.
pub fn verify<'v>(
    keys: &[RoutingKey],
    value: &'v str,
    now: u64,
    fresh: Freshness,
    req: &Request<'_>,
    header: impl Fn(&str) -> Option<String>,
) -> Result<Vec<&'v str>, Rejected> {
    let mut kid = None;
    let mut t = None;
    let mut names = None;
    let mut tag = None;
    let mut parts = value.split(';').map(str::trim);
    if parts.next() != Some("v1") {
        return Err(Rejected::Malformed);
    }
    for p in parts {
        let (k, v) = p.split_once('=').ok_or(Rejected::Malformed)?;
        let slot = match k {
            "kid" => &mut kid,
            "t" => &mut t,
            "h" => &mut names,
            "mac" => &mut tag,
            _ => return Err(Rejected::Malformed),
        };
        if slot.replace(v).is_some() {
            return Err(Rejected::Malformed); // a parameter given twice
        }
    }
    let (Some(kid), Some(t), Some(names), Some(tag)) = (kid, t, names, tag) else {
        return Err(Rejected::Malformed);
    };
    let t: u64 = t.parse().map_err(|_| Rejected::Malformed)?;
    let tag = Base64UrlUnpadded::decode_vec(tag).map_err(|_| Rejected::Malformed)?;
    let names: Vec<&str> = if names.is_empty() {
        Vec::new()
    } else {
        names.split(',').collect()
    };
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(Rejected::UnknownKid)?;
    if t > now + fresh.skew {
        return Err(Rejected::FromTheFuture);
    }
    if now > t + fresh.max_age + fresh.skew {
        return Err(Rejected::Expired);
    }
    let values: Vec<Option<String>> = names.iter().map(|n| header(n)).collect();
    let pairs: Vec<(&str, Option<&str>)> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (*n, v.as_deref()))
        .collect();
    mac(key, &canonical(t, req, &pairs))
        .verify_slice(&tag)
        .map_err(|_| Rejected::BadMac)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, b: u8) -> RoutingKey {
        RoutingKey::new(kid, vec![b; 32]).unwrap()
    }

    const REQ: Request<'static> = Request {
        method: "GET",
        host: "api.example.com",
        path: "/v1/items",
    };
    const FRESH: Freshness = Freshness {
        max_age: 30,
        skew: 5,
    };

    fn beta(name: &str) -> Option<String> {
        (name == "x-rikstv-beta").then(|| "true".to_owned())
    }

    #[test]
    fn round_trip_and_rotation() {
        let (k1, k2) = (key("r1", 1), key("r2", 2));
        let sig = sign(&k2, 1000, &REQ, &[("X-RiksTV-Beta", Some("true"))]);
        assert!(
            sig.starts_with("v1; kid=r2; t=1000; h=x-rikstv-beta; mac="),
            "{sig}"
        );
        assert_eq!(
            verify(&[k1.clone(), k2.clone()], &sig, 1010, FRESH, &REQ, beta),
            Ok(vec!["x-rikstv-beta"])
        );
        assert_eq!(
            verify(&[k1], &sig, 1010, FRESH, &REQ, beta),
            Err(Rejected::UnknownKid)
        );
    }

    #[test]
    fn anything_changed_breaks_the_mac() {
        let k = key("r1", 1);
        let sig = sign(&k, 1000, &REQ, &[("x-rikstv-beta", None)]);
        let keys = [k];
        // Absent when signed, present now: a forged header next to a genuine signature.
        assert_eq!(
            verify(&keys, &sig, 1000, FRESH, &REQ, beta),
            Err(Rejected::BadMac)
        );
        assert!(verify(&keys, &sig, 1000, FRESH, &REQ, |_| None).is_ok());
        let sig = sign(&keys[0], 1000, &REQ, &[("x-rikstv-beta", Some("true"))]);
        for other in [
            Request {
                path: "/v1/other",
                ..REQ
            },
            Request {
                method: "POST",
                ..REQ
            },
            Request {
                host: "evil.example.com",
                ..REQ
            },
        ] {
            assert_eq!(
                verify(&keys, &sig, 1000, FRESH, &other, beta),
                Err(Rejected::BadMac),
                "{other:?}"
            );
        }
        let tampered = sig.replace("mac=", "mac=A");
        assert!(matches!(
            verify(&keys, &tampered, 1000, FRESH, &REQ, beta),
            Err(Rejected::BadMac | Rejected::Malformed)
        ));
        assert_eq!(
            verify(
                &keys,
                &sig.replace("t=1000", "t=1001"),
                1001,
                FRESH,
                &REQ,
                beta
            ),
            Err(Rejected::BadMac)
        );
    }

    #[test]
    fn freshness() {
        let k = key("r1", 1);
        let sig = sign(&k, 1000, &REQ, &[("x-rikstv-beta", Some("true"))]);
        let keys = [k];
        assert!(verify(&keys, &sig, 1035, FRESH, &REQ, beta).is_ok());
        assert_eq!(
            verify(&keys, &sig, 1036, FRESH, &REQ, beta),
            Err(Rejected::Expired)
        );
        assert!(verify(&keys, &sig, 995, FRESH, &REQ, beta).is_ok());
        assert_eq!(
            verify(&keys, &sig, 994, FRESH, &REQ, beta),
            Err(Rejected::FromTheFuture)
        );
    }

    #[test]
    fn malformed_values() {
        let keys = [key("r1", 1)];
        for v in [
            "",
            "v2; kid=r1",
            "v1; kid=r1; t=1; h=; mac=AA; mac=AA",
            "v1; kid=r1; t=x; h=; mac=AA",
            "v1; kid=r1; t=1; mac=AA",
            "v1; kid=r1; t=1; h=; mac=@@",
            "v1; kid=r1; t=1; h=; mac=AA; z=1",
        ] {
            assert_eq!(
                verify(&keys, v, 1, FRESH, &REQ, beta),
                Err(Rejected::Malformed),
                "{v}"
            );
        }
    }

    #[test]
    fn keys() {
        assert!(RoutingKey::new("r1", vec![0; 31]).is_err());
        assert!(RoutingKey::new("a;b", vec![0; 32]).is_err());
        let jwks = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"r1","k":"{}"}}]}}"#,
            Base64UrlUnpadded::encode_string(&[7; 32])
        );
        assert_eq!(RoutingKey::from_jwks(&jwks).unwrap()[0].kid, "r1");
        assert!(RoutingKey::from_jwks(r#"{"keys":[{"kty":"RSA","kid":"x","k":"AA"}]}"#).is_err());
    }
}
