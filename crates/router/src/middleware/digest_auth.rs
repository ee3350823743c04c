//! `digestAuth`, as Traefik's (`pkg/middlewares/auth/digest_auth.go` over `go-http-auth`): HTTP
//! Digest with MD5 and `qop=auth` (RFC 7616's legacy profile, what Traefik speaks). Users are
//! `user:realm:HA1` entries (htdigest's format); a new nonce comes with every challenge and is
//! good until the server forgets it (1,100 at most; the 200 least recently used go first); a
//! replayed nonce count is refused, a lower one gets a `stale="true"` challenge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use base64ct::Encoding;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::StatusCode;
use md5::{Digest, Md5};
use rand_core::RngCore;

use super::{Answer, Flow, Req};

const NONCES_MAX: usize = 1100;
const NONCES_PURGED: usize = 200;

pub struct DigestAuth {
    /// `user:realm` to HA1 (lower-case hex).
    users: HashMap<String, String>,
    realm: String,
    opaque: String,
    header_field: Option<HeaderName>,
    remove_header: bool,
    /// Nonce to (highest nonce count seen, last use).
    nonces: Mutex<HashMap<String, (u64, Instant)>>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth")
            .field("users", &self.users.len())
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Clone for DigestAuth {
    fn clone(&self) -> Self {
        DigestAuth {
            users: self.users.clone(),
            realm: self.realm.clone(),
            opaque: random_key(),
            header_field: self.header_field.clone(),
            remove_header: self.remove_header,
            nonces: Mutex::new(HashMap::new()),
        }
    }
}

/// go-http-auth's `RandomKey`: 12 random bytes, base64 (16 characters).
fn random_key() -> String {
    let mut b = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut b);
    base64ct::Base64::encode_string(&b)
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `k=v, k="v"` parameters of a Digest credential (quotes and backslash escapes honoured).
fn params(s: &str) -> HashMap<String, String> {
    let mut parts = Vec::new();
    let (mut cur, mut quoted, mut escaped) = (String::new(), false, false);
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == ',' && !quoted {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
        .iter()
        .filter_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// Why a credential failed: a fresh challenge, or one saying the nonce is stale.
enum Fail {
    Challenge,
    Stale,
}

impl DigestAuth {
    pub fn new(
        entries: &[String],
        realm: Option<String>,
        header_field: Option<HeaderName>,
        remove_header: bool,
    ) -> Result<DigestAuth, String> {
        let mut users = HashMap::new();
        for e in entries {
            let parts: Vec<&str> = e.split(':').collect();
            let [user, realm, ha1] = parts[..] else {
                let user = e.split(':').next().unwrap_or("");
                return Err(format!(
                    "error parsing DigestUser: {user:?} is not user:realm:hash"
                ));
            };
            users.insert(format!("{user}:{realm}"), ha1.to_owned());
        }
        Ok(DigestAuth {
            users,
            realm: realm
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "traefik".into()),
            opaque: random_key(),
            header_field,
            remove_header,
            nonces: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self, req: &Req) -> Result<String, Fail> {
        let header = req
            .parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Fail::Challenge)?;
        let (scheme, rest) = header.split_once(' ').ok_or(Fail::Challenge)?;
        if scheme != "Digest" {
            return Err(Fail::Challenge);
        }
        let p = params(rest);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let algorithm = p.get("algorithm").map_or("MD5", String::as_str);
        if get("opaque") != self.opaque || algorithm != "MD5" || get("qop") != "auth" {
            return Err(Fail::Challenge);
        }
        let uri = get("uri");
        let target = req.request_target();
        if uri != target {
            let path = match uri.find("://") {
                Some(i) => {
                    let after = &uri[i + 3..];
                    after.find('/').map_or("", |j| &after[j..])
                }
                None => uri,
            };
            let path = path.split(['?', '#']).next().unwrap_or("");
            if !req.parts.uri.path().starts_with(path) {
                return Err(Fail::Challenge);
            }
        }
        let user = get("username");
        let ha1 = self
            .users
            .get(&format!("{user}:{}", self.realm))
            .map_or("", String::as_str);
        let ha2 = md5_hex(&format!("{}:{uri}", req.parts.method));
        let expected = md5_hex(&format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce"),
            get("qop")
        ));
        if ha1.is_empty()
            || !super::htpasswd::ct_eq(expected.as_bytes(), get("response").as_bytes())
        {
            return Err(Fail::Challenge);
        }
        let nc = u64::from_str_radix(get("nc"), 16).map_err(|_| Fail::Challenge)?;
        let mut nonces = self.lock();
        let Some(entry) = nonces.get_mut(get("nonce")) else {
            return Err(Fail::Challenge);
        };
        if entry.0 != 0 && nc == entry.0 {
            return Err(Fail::Challenge);
        }
        if entry.0 != 0 && nc < entry.0 {
            return Err(Fail::Stale);
        }
        *entry = (nc, Instant::now());
        Ok(user.to_owned())
    }

    fn challenge(&self, stale: bool) -> Answer {
        let nonce = random_key();
        {
            let mut nonces = self.lock();
            if nonces.len() >= NONCES_MAX {
                let mut by_age: Vec<(Instant, String)> =
                    nonces.iter().map(|(k, (_, t))| (*t, k.clone())).collect();
                by_age.sort();
                for (_, k) in by_age.into_iter().take(NONCES_PURGED) {
                    nonces.remove(&k);
                }
            }
            nonces.insert(nonce.clone(), (0, Instant::now()));
        }
        let mut a = Answer::text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
        a.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        let stale = if stale { ", stale=\"true\"" } else { "" };
        let v = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\"{stale}, algorithm=\"MD5\", qop=\"auth\"",
            self.realm, self.opaque
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            a.headers.insert(http::header::WWW_AUTHENTICATE, v);
        }
        a
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        match self.check(req) {
            Ok(user) => {
                if let Some(field) = &self.header_field {
                    if let Ok(v) = HeaderValue::from_str(&user) {
                        req.parts.headers.insert(field.clone(), v);
                    }
                }
                if self.remove_header {
                    req.parts.headers.remove(AUTHORIZATION);
                }
                Flow::Next
            }
            Err(Fail::Challenge) => Flow::Answer(Box::new(self.challenge(false))),
            Err(Fail::Stale) => Flow::Answer(Box::new(self.challenge(true))),
        }
    }
}

/// A client's answer to a challenge (for tests: what a browser computes).
pub fn respond_to(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let p = params(challenge.strip_prefix("Digest ").unwrap_or(challenge));
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let ha1 = md5_hex(&format!("{user}:{}:{password}", get("realm")));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", get("nonce")));
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", opaque=\"{}\"",
        get("realm"),
        get("nonce"),
        get("opaque")
    )
}
