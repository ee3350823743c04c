//! The path middlewares, as Traefik's (`pkg/middlewares/{stripprefix,stripprefixregex,addprefix,
//! replacepath,replacepathregex}`): they edit Go's two forms of the path ([`GoPath`]) and record
//! what they removed or replaced in `X-Forwarded-Prefix` / `X-Replaced-Path`. A strip that leaves
//! a path which cleaning would change (`/api/../admin`, `//x`) is refused with 400, as Traefik
//! does, so a prefix can never be used to reach around it.

use regex::Regex;

use super::gourl::{unescape, GoPath};
use super::{Answer, Flow, Req};

pub const FORWARDED_PREFIX: &str = "x-forwarded-prefix";
pub const REPLACED_PATH: &str = "x-replaced-path";

#[derive(Debug, Clone)]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
    /// Traefik v2's `forceSlash` (deprecated): the stripped path always starts with one `/`.
    pub force_slash: bool,
}

#[derive(Debug, Clone)]
pub struct StripPrefixRegex {
    pub regex: Vec<Regex>,
}

#[derive(Debug, Clone)]
pub struct AddPrefix {
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub struct ReplacePath {
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct ReplacePathRegex {
    pub regex: Regex,
    pub replacement: String,
}

fn ensure_leading_slash(s: String) -> String {
    if s.is_empty() || s.starts_with('/') {
        s
    } else {
        format!("/{s}")
    }
}

fn ensure_leading_slash_bytes(s: Vec<u8>) -> Vec<u8> {
    if s.is_empty() || s[0] == b'/' {
        s
    } else {
        [b"/".as_slice(), &s].concat()
    }
}

/// How many bytes of `raw` encode the first `decoded_len` decoded bytes.
fn encoded_prefix_len(raw: &str, decoded_len: usize) -> usize {
    let b = raw.as_bytes();
    let (mut decoded, mut i) = (0, 0);
    while i < b.len() && decoded < decoded_len {
        i += if b[i] == b'%' && i + 2 < b.len() {
            3
        } else {
            1
        };
        decoded += 1;
    }
    i
}

/// After a strip: the path must be what cleaning it gives, else 400.
fn sanitized(p: GoPath) -> Result<GoPath, Box<Answer>> {
    if p.path.is_empty() {
        return Ok(p);
    }
    match p.joined() {
        Ok(j) if j.path == p.path => Ok(j),
        _ => Err(Box::new(Answer::text(
            http::StatusCode::BAD_REQUEST,
            "Bad Request\n",
        ))),
    }
}

impl StripPrefix {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let Ok(mut p) = req.path() else {
            return Flow::Next;
        };
        for prefix in &self.prefixes {
            if !p.path.starts_with(prefix.as_bytes()) {
                continue;
            }
            let rest = p.path[prefix.len()..].to_vec();
            p.path = if self.force_slash {
                let trimmed = rest.strip_prefix(b"/").unwrap_or(&rest);
                [b"/".as_slice(), trimmed].concat()
            } else {
                ensure_leading_slash_bytes(rest)
            };
            if !p.raw.is_empty() {
                let rest = p.raw[encoded_prefix_len(&p.raw, prefix.len())..].to_owned();
                p.raw = if self.force_slash {
                    format!("/{}", rest.trim_start_matches('/'))
                } else {
                    ensure_leading_slash(rest)
                };
            }
            return match sanitized(p) {
                Ok(p) => {
                    req.add_header(FORWARDED_PREFIX, prefix);
                    req.set_path(p);
                    Flow::Next
                }
                Err(a) => Flow::Answer(a),
            };
        }
        Flow::Next
    }
}

impl StripPrefixRegex {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let Ok(mut p) = req.path() else {
            return Flow::Next;
        };
        // Go matches on the decoded path's bytes; a path that is not UTF-8 matches nothing here.
        let Ok(path) = String::from_utf8(p.path.clone()) else {
            return Flow::Next;
        };
        for re in &self.regex {
            let Some(m) = re.find(&path) else {
                continue;
            };
            let prefix = m.as_str();
            if prefix.is_empty() || !path.starts_with(prefix) {
                continue;
            }
            p.path = ensure_leading_slash(path.replacen(prefix, "", 1)).into_bytes();
            if !p.raw.is_empty() {
                let rest = p.raw[encoded_prefix_len(&p.raw, prefix.len())..].to_owned();
                p.raw = ensure_leading_slash(rest);
            }
            let prefix = prefix.to_owned();
            return match sanitized(p) {
                Ok(p) => {
                    req.add_header(FORWARDED_PREFIX, &prefix);
                    req.set_path(p);
                    Flow::Next
                }
                Err(a) => Flow::Answer(a),
            };
        }
        Flow::Next
    }
}

impl AddPrefix {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let Ok(mut p) = req.path() else {
            return Flow::Next;
        };
        p.path = ensure_leading_slash_bytes([self.prefix.as_bytes(), &p.path].concat());
        if !p.raw.is_empty() {
            p.raw = ensure_leading_slash(format!("{}{}", self.prefix, p.raw));
        }
        req.set_path(p);
        Flow::Next
    }
}

/// The path as both replacing middlewares take it: `RawPath`, else `EscapedPath()`.
fn current(p: &GoPath) -> String {
    if p.raw.is_empty() {
        p.escaped()
    } else {
        p.raw.clone()
    }
}

/// The new path from its encoded form, or 500 naming the bad escape (as Traefik answers).
fn replaced(raw: String) -> Result<GoPath, Box<Answer>> {
    match unescape(&raw) {
        Ok(path) => Ok(GoPath { path, raw }),
        Err(e) => Err(Box::new(Answer::text(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e}\n"),
        ))),
    }
}

impl ReplacePath {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let Ok(p) = req.path() else {
            return Flow::Next;
        };
        req.add_header(REPLACED_PATH, &current(&p));
        match replaced(self.path.clone()) {
            Ok(p) => {
                req.set_path(p);
                Flow::Next
            }
            Err(a) => Flow::Answer(a),
        }
    }
}

impl ReplacePathRegex {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let Ok(p) = req.path() else {
            return Flow::Next;
        };
        let cur = current(&p);
        if !self.regex.is_match(&cur) {
            return Flow::Next;
        }
        req.add_header(REPLACED_PATH, &cur);
        let raw = self
            .regex
            .replace_all(&cur, self.replacement.as_str())
            .into_owned();
        match replaced(raw).and_then(sanitized) {
            Ok(p) => {
                req.set_path(p);
                Flow::Next
            }
            Err(a) => Flow::Answer(a),
        }
    }
}
