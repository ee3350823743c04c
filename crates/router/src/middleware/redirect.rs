//! `redirectScheme` and `redirectRegex`, as Traefik's (`pkg/middlewares/redirect`): the request's
//! URL as the client sent it (scheme from TLS, host from `Host`, the request target as received)
//! is matched and rewritten by a regular expression; a changed URL answers a redirect, 302/307
//! (301/308 when permanent: the 30x that keeps the method for anything but GET).

use http::StatusCode;
use regex::Regex;

use super::gourl::{split_host_port, GoPath};
use super::{Answer, Flow, Req};

#[derive(Debug, Clone)]
pub struct Redirect {
    regex: Regex,
    replacement: String,
    permanent: bool,
    status: Option<StatusCode>,
    /// `redirectScheme` reads the client's scheme from `X-Forwarded-Proto` too, and drops a
    /// default port from the URL it matches.
    scheme_mode: bool,
}

impl Redirect {
    /// `redirectScheme` or `redirectRegex`.
    pub fn kind(&self) -> &'static str {
        if self.scheme_mode {
            "redirectScheme"
        } else {
            "redirectRegex"
        }
    }
}

/// Traefik's `uriRegexp`: an absolute-form request target.
fn absolute_target(uri: &str) -> Option<(String, String, String, String)> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^(https?)://(\[[\w:.]+\]|[\w._-]+)?(:\d+)?(.*)$").expect("valid regex")
    });
    let c = re.captures(uri)?;
    let g = |i| c.get(i).map_or(String::new(), |m| m.as_str().to_owned());
    Some((g(1), g(2), g(3), g(4)))
}

impl Redirect {
    /// `redirectRegex`: `regex` (Go syntax, compiled by the caller) to `replacement`.
    pub fn regex(
        regex: Regex,
        replacement: String,
        permanent: bool,
        status: Option<StatusCode>,
    ) -> Redirect {
        Redirect {
            regex,
            replacement,
            permanent,
            status,
            scheme_mode: false,
        }
    }

    /// `redirectScheme`: to `scheme`, with `port` unless it is the scheme's default.
    pub fn scheme(
        scheme: &str,
        port: Option<&str>,
        permanent: bool,
        force_permanent: bool,
    ) -> Redirect {
        let default_port =
            |p: &str| (scheme == "http" && p == "80") || (scheme == "https" && p == "443");
        let port = match port {
            Some(p) if !p.is_empty() && !default_port(p) => format!(":{p}"),
            _ => String::new(),
        };
        Redirect {
            regex: Regex::new(r"^(https?://)?(\[[\w:.]+\]|[\w._-]+)?(:\d+)?(.*)$")
                .expect("valid regex"),
            replacement: format!("{scheme}://${{2}}{port}${{4}}"),
            permanent,
            status: force_permanent.then_some(StatusCode::PERMANENT_REDIRECT),
            scheme_mode: true,
        }
    }

    /// The URL the client asked for, as Traefik spells it for matching.
    fn client_url(&self, req: &Req) -> String {
        let target = req.request_target();
        let mut scheme = "http".to_owned();
        let (mut host, mut port) = if self.scheme_mode {
            match split_host_port(&req.host) {
                Some((h, p)) => (h.to_owned(), format!(":{p}")),
                None => (req.host.to_owned(), String::new()),
            }
        } else {
            (req.host.to_owned(), String::new())
        };
        let mut uri = target.clone();
        if let Some((s, h, p, rest)) = absolute_target(&target) {
            scheme = s;
            if !h.is_empty() {
                host = h;
            }
            if !p.is_empty() {
                port = p;
            }
            uri = rest;
        }
        if req.tls {
            scheme = "https".into();
        }
        if self.scheme_mode {
            if let Some(proto) = req
                .parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
            {
                if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
                    scheme = "http".into();
                } else if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
                    scheme = "https".into();
                }
            }
            if (scheme == "http" && port == ":80") || (scheme == "https" && port == ":443") {
                port.clear();
            }
        }
        format!("{scheme}://{host}{port}{uri}")
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        let old = self.client_url(req);
        if !self.regex.is_match(&old) {
            return Flow::Next;
        }
        let new = self
            .regex
            .replace_all(&old, self.replacement.as_str())
            .into_owned();
        let Some(location) = go_url_string(&new) else {
            // Traefik's error handler answers a URL it cannot parse with 502.
            return Flow::Answer(Box::new(Answer::text(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway\n",
            )));
        };
        if new == old {
            // Nothing to redirect to: Traefik forwards the (re-parsed, identical) request.
            return Flow::Next;
        }
        let get = req.parts.method == http::Method::GET;
        let status = self.status.unwrap_or(match (self.permanent, get) {
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
        });
        let mut a = Answer::text(status, status.canonical_reason().unwrap_or(""));
        a.headers.remove(http::header::CONTENT_TYPE);
        if let Ok(v) = http::HeaderValue::from_str(&location) {
            a.headers.insert(http::header::LOCATION, v);
        }
        Flow::Answer(Box::new(a))
    }
}

/// Go's host check (`unescape(host, encodeHost)`): a `%` escape only for a non-ASCII byte (or
/// `%25`), and no ASCII byte Go would escape in a host.
fn valid_host(host: &str) -> bool {
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(_)) if h >= 8 || &b[i..i + 3] == b"%25" => {}
                _ => return false,
            }
            i += 3;
            continue;
        }
        let allowed =
            c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c);
        if !allowed {
            return false;
        }
        i += 1;
    }
    true
}

/// `url.Parse(s).String()` for the URLs a redirect makes: the path re-encoded as Go keeps it;
/// `None` when Go's parser would refuse it (a bad `%` escape).
fn go_url_string(s: &str) -> Option<String> {
    let (before_fragment, fragment) = match s.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (before_fragment, None),
    };
    let (origin, path) = match before_query.find("://") {
        Some(i) => {
            let after = &before_query[i + 3..];
            let slash = after.find('/').map_or(before_query.len(), |j| i + 3 + j);
            before_query.split_at(slash)
        }
        None => ("", before_query),
    };
    if let Some(i) = origin.find("://") {
        let authority = &origin[i + 3..];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if !valid_host(host) {
            return None;
        }
    }
    let mut out = String::from(origin);
    out.push_str(&GoPath::from_escaped(path).ok()?.escaped());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}
