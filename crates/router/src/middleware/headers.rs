//! `headers`, as Traefik's (`pkg/middlewares/headers`: a CORS and custom-headers layer, then the
//! security layer of `unrolled/secure`, then the next handler). On the request: a CORS preflight
//! is answered at once; custom request headers are set or removed (`""`); the allowed hosts are
//! checked. On the response, inner layer first: the security headers, the custom response
//! headers (which may override or remove them), then the CORS headers and `Vary`.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use regex::Regex;

use super::{Answer, Flow, Req};

/// A custom header: set to a value, or removed (`None`, written `""`).
pub type Custom = Vec<(HeaderName, Option<HeaderValue>)>;

#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub custom_request: Custom,
    pub custom_response: Custom,
    pub cors: Option<Cors>,
    pub secure: Option<Secure>,
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub allow_credentials: bool,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_origins: Vec<String>,
    pub allow_origin_regex: Vec<Regex>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub add_vary: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Secure {
    pub allowed_hosts: Vec<String>,
    pub hosts_proxy_headers: Vec<HeaderName>,
    pub ssl_proxy_headers: Vec<(HeaderName, String)>,
    pub sts_seconds: i64,
    pub sts_include_subdomains: bool,
    pub sts_preload: bool,
    pub force_sts: bool,
    pub frame_deny: bool,
    pub custom_frame_options: String,
    pub content_type_nosniff: bool,
    pub browser_xss_filter: bool,
    pub custom_browser_xss: String,
    pub csp: String,
    pub csp_report_only: String,
    pub public_key: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
    pub is_development: bool,
}

/// What the response side needs from the request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The matched allowed origin, if any.
    origin: Option<String>,
    /// Security headers for this request (`None` when the secure layer answered or is absent).
    security: Vec<(HeaderName, HeaderValue)>,
}

fn joined(list: &[String]) -> String {
    list.join(",")
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

impl Cors {
    fn matched_origin(&self, origin: &str) -> Option<String> {
        for o in &self.allow_origins {
            if o == "*" {
                return Some(if self.allow_credentials {
                    origin.to_owned()
                } else {
                    "*".into()
                });
            }
            if o == origin {
                return Some(o.clone());
            }
        }
        self.allow_origin_regex
            .iter()
            .any(|r| r.is_match(origin))
            .then(|| origin.to_owned())
    }

    fn preflight(&self, req: &Req, origin: &str) -> Answer {
        let mut a = Answer::text(StatusCode::OK, "");
        a.headers.clear();
        let h = &mut a.headers;
        set(h, "content-length", "0");
        let star = |l: &[String]| l.iter().any(|x| x == "*") && self.allow_credentials;
        if self.allow_credentials {
            set(h, "access-control-allow-credentials", "true");
        }
        // The list, or with `*` and credentials, what the preflight asked for.
        let mut allow = |list: &[String], asked: &'static str, allowed: &'static str| {
            let value = if star(list) {
                req.parts
                    .headers
                    .get(asked)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            } else {
                (!list.is_empty()).then(|| joined(list))
            };
            if let Some(v) = value {
                set(h, allowed, &v);
            }
        };
        allow(
            &self.allow_headers,
            "access-control-request-headers",
            "access-control-allow-headers",
        );
        allow(
            &self.allow_methods,
            "access-control-request-method",
            "access-control-allow-methods",
        );
        if let Some(o) = self.matched_origin(origin) {
            set(h, "access-control-allow-origin", &o);
        }
        if let Some(age) = self.max_age {
            set(h, "access-control-max-age", &age.to_string());
        }
        if !self.expose_headers.is_empty() && !star(&self.expose_headers) {
            set(
                h,
                "access-control-expose-headers",
                &joined(&self.expose_headers),
            );
        }
        a
    }
}

impl Secure {
    fn is_ssl(&self, req: &Req) -> bool {
        req.tls
            || req
                .parts
                .uri
                .scheme_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
            || self.ssl_proxy_headers.iter().any(|(k, v)| {
                req.parts.headers.get(k).and_then(|h| h.to_str().ok()) == Some(v.as_str())
            })
    }

    /// `Err`: the host is not allowed (500 "Bad Host").
    fn check(&self, req: &Req) -> Result<Vec<(HeaderName, HeaderValue)>, ()> {
        if !self.allowed_hosts.is_empty() && !self.is_development {
            let mut host = req.host.clone();
            for h in &self.hosts_proxy_headers {
                if let Some(v) = req.parts.headers.get(h).and_then(|v| v.to_str().ok()) {
                    if !v.is_empty() {
                        host = v.to_owned();
                        break;
                    }
                }
            }
            if !self
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&host))
            {
                return Err(());
            }
        }
        let ssl = self.is_ssl(req);
        let mut out = Vec::new();
        let mut push = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                out.push((HeaderName::from_static(name), v));
            }
        };
        if self.sts_seconds != 0 && (ssl || self.force_sts) && !self.is_development {
            let mut v = format!("max-age={}", self.sts_seconds);
            if self.sts_include_subdomains {
                v.push_str("; includeSubDomains");
            }
            if self.sts_preload {
                v.push_str("; preload");
            }
            push("strict-transport-security", v);
        }
        if !self.custom_frame_options.is_empty() {
            push("x-frame-options", self.custom_frame_options.clone());
        } else if self.frame_deny {
            push("x-frame-options", "DENY".into());
        }
        if self.content_type_nosniff {
            push("x-content-type-options", "nosniff".into());
        }
        if !self.custom_browser_xss.is_empty() {
            push("x-xss-protection", self.custom_browser_xss.clone());
        } else if self.browser_xss_filter {
            push("x-xss-protection", "1; mode=block".into());
        }
        if !self.public_key.is_empty() && ssl && !self.is_development {
            push("public-key-pins", self.public_key.clone());
        }
        let nonce =
            (self.csp.contains("$NONCE") || self.csp_report_only.contains("$NONCE")).then(nonce);
        let with_nonce = |s: &str| match &nonce {
            Some(n) => s.replace("$NONCE", &format!("'nonce-{n}'")),
            None => s.to_owned(),
        };
        if !self.csp.is_empty() {
            push("content-security-policy", with_nonce(&self.csp));
        }
        if !self.csp_report_only.is_empty() {
            push(
                "content-security-policy-report-only",
                with_nonce(&self.csp_report_only),
            );
        }
        if !self.referrer_policy.is_empty() {
            push("referrer-policy", self.referrer_policy.clone());
        }
        if !self.permissions_policy.is_empty() {
            push("permissions-policy", self.permissions_policy.clone());
        }
        Ok(out)
    }
}

/// 16 random bytes, base64 without padding: a CSP nonce.
fn nonce() -> String {
    use base64ct::Encoding;
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    base64ct::Base64Unpadded::encode_string(&b)
}

fn apply_custom(headers: &mut HeaderMap, custom: &Custom) {
    for (name, value) in custom {
        match value {
            Some(v) => {
                headers.insert(name.clone(), v.clone());
            }
            None => {
                headers.remove(name);
            }
        }
    }
}

impl Headers {
    /// The request side; `Ok` carries what the response side needs.
    pub fn on_request(&self, req: &mut Req) -> Result<Seen, Flow> {
        let origin = req
            .parts
            .headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if let Some(cors) = &self.cors {
            let asks = req
                .parts
                .headers
                .get("access-control-request-method")
                .is_some_and(|v| !v.is_empty());
            if req.parts.method == Method::OPTIONS && !origin.is_empty() && asks {
                return Err(Flow::Answer(Box::new(cors.preflight(req, &origin))));
            }
        }
        for (name, value) in &self.custom_request {
            match value {
                Some(v) if name == http::header::HOST => {
                    req.parts.headers.insert(http::header::HOST, v.clone());
                    req.set_host(v.to_str().unwrap_or_default());
                }
                Some(v) => {
                    req.parts.headers.insert(name.clone(), v.clone());
                }
                None => {
                    if name == "x-forwarded-for" {
                        req.no_forwarded_for = true;
                    }
                    req.parts.headers.remove(name);
                }
            }
        }
        let origin = self.cors.as_ref().and_then(|c| c.matched_origin(&origin));
        let security = match &self.secure {
            Some(s) => match s.check(req) {
                Ok(h) => h,
                Err(()) => {
                    let mut a = Answer::text(StatusCode::INTERNAL_SERVER_ERROR, "Bad Host\n");
                    set(&mut a.headers, "x-content-type-options", "nosniff");
                    // The custom and CORS response headers still apply to this answer.
                    self.on_response(
                        &Seen {
                            origin,
                            security: Vec::new(),
                        },
                        &mut a.headers,
                    );
                    return Err(Flow::Answer(Box::new(a)));
                }
            },
            None => Vec::new(),
        };
        Ok(Seen { origin, security })
    }

    /// The response side, inner layer first.
    pub fn on_response(&self, seen: &Seen, headers: &mut HeaderMap) {
        for (name, value) in &seen.security {
            headers.insert(name.clone(), value.clone());
        }
        apply_custom(headers, &self.custom_response);
        let Some(cors) = &self.cors else {
            return;
        };
        if let Some(o) = &seen.origin {
            set(headers, "access-control-allow-origin", o);
        }
        if cors.allow_credentials {
            set(headers, "access-control-allow-credentials", "true");
        }
        let star = cors.expose_headers.iter().any(|x| x == "*") && cors.allow_credentials;
        if !cors.expose_headers.is_empty() && !star {
            set(
                headers,
                "access-control-expose-headers",
                &joined(&cors.expose_headers),
            );
        }
        if cors.add_vary {
            let first = headers
                .get(http::header::VARY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if first != "Origin" {
                let v = if first.is_empty() {
                    "Origin".into()
                } else {
                    format!("{first},Origin")
                };
                set(headers, "vary", &v);
            }
        }
    }
}
