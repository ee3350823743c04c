//! `basicAuth`, as Traefik's (`pkg/middlewares/auth/basic_auth.go`): `Authorization: Basic`
//! checked against htpasswd users (inline `users`, then `usersFile`'s lines, a later entry
//! overriding an earlier one); any failure is the same 401 with
//! `WWW-Authenticate: Basic realm="..."`. An unknown user is still checked against a real
//! secret, so that timing does not tell users apart. Credentials are never logged.

use std::collections::HashMap;
use std::sync::Mutex;

use base64ct::Encoding;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::StatusCode;

use super::{htpasswd, Answer, Flow, Req};

pub struct BasicAuth {
    /// User name to secret.
    users: HashMap<String, String>,
    /// The secret unknown users are checked against.
    decoy: String,
    realm: String,
    header_field: Option<HeaderName>,
    remove_header: bool,
    /// SHA-256 of recently verified `(user, password, secret)`: bcrypt costs milliseconds per
    /// check, and a client sends the same credentials with every request. Bounded; cleared
    /// when full.
    verified: Mutex<std::collections::HashSet<[u8; 32]>>,
}

const VERIFIED_MAX: usize = 4096;

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Clone for BasicAuth {
    fn clone(&self) -> Self {
        BasicAuth {
            users: self.users.clone(),
            decoy: self.decoy.clone(),
            realm: self.realm.clone(),
            header_field: self.header_field.clone(),
            remove_header: self.remove_header,
            verified: Mutex::new(Default::default()),
        }
    }
}

impl BasicAuth {
    /// From `name:secret` entries in order (file lines first, then `users`); `Err` names the
    /// entry that is not `name:secret`, or says there is no user.
    pub fn new(
        entries: &[String],
        users_file: &str,
        realm: Option<String>,
        header_field: Option<HeaderName>,
        remove_header: bool,
    ) -> Result<BasicAuth, String> {
        let mut users = HashMap::new();
        let mut decoy = None;
        for e in entries {
            let parts: Vec<&str> = e.split(':').collect();
            let [name, secret] = parts[..] else {
                // The entry may hold a secret: name the user only.
                let user = e.split(':').next().unwrap_or("");
                return Err(format!(
                    "error parsing BasicUser: {user:?} is not name:hash"
                ));
            };
            decoy.get_or_insert_with(|| secret.to_owned());
            users.insert(name.to_owned(), secret.to_owned());
        }
        let Some(decoy) = decoy else {
            return Err(format!("no users found in {users_file}"));
        };
        Ok(BasicAuth {
            users,
            decoy,
            realm: realm
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "traefik".into()),
            header_field,
            remove_header,
            verified: Mutex::new(Default::default()),
        })
    }

    fn credentials(req: &Req) -> Option<(String, String)> {
        let v = req.parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = v.split_at_checked(6)?;
        if !scheme.eq_ignore_ascii_case("basic ") {
            return None;
        }
        let raw = base64ct::Base64::decode_vec(rest).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }

    fn verify(&self, user: &str, password: &str, secret: &str) -> bool {
        let key: [u8; 32] = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [user, password, secret] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part.as_bytes());
            }
            ctx.finish().as_ref().try_into().expect("32 bytes")
        };
        let lock = || {
            self.verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if lock().contains(&key) {
            return true;
        }
        let ok = htpasswd::check(secret, password);
        if ok {
            let mut v = lock();
            if v.len() >= VERIFIED_MAX {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        let user = Self::credentials(req).and_then(|(user, password)| {
            match self.users.get(&user) {
                Some(secret) => self.verify(&user, &password, secret).then_some(user),
                None => {
                    // As much work as for a known user, then no.
                    let _ = htpasswd::check(&self.decoy, &password);
                    None
                }
            }
        });
        let Some(user) = user else {
            let mut a = Answer::text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
            a.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", self.realm)) {
                a.headers.insert(http::header::WWW_AUTHENTICATE, v);
            }
            return Flow::Answer(Box::new(a));
        };
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
}
