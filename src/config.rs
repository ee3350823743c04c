//! Edge configuration from wrangler vars and secrets (the contract in BRIEF.md).
//!
//! Parsed once per isolate and per distinct set of values, never per request. A broken value
//! never stops traffic: it is recorded as a problem, logged loudly, and the part it configures
//! falls back to the safe side (no key usable means nobody is beta).

use betaroute_core::claims::ClaimsPolicy;
use betaroute_core::signature::{self, RoutingKey};
use betaroute_core::{Alg, BetaPolicy, HeaderPolicy, KeySet, Policy, Verifier, VerifyPolicy};

use crate::error::{ConfigProblem, EdgeError, PolicyProblem};

/// Every variable the edge reads, in the order of [`Vars::values`].
pub const VAR_NAMES: [&str; 35] = [
    "ORIGIN_URL",
    "JWT_KEYS",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY_SECONDS",
    "JWT_ALGORITHMS",
    "JWT_ALLOW_MISSING_EXP",
    "BETA_CLAIM",
    "BETA_HEADER",
    "TOKEN_COOKIE",
    "ROUTING_HEADERS",
    "BETAROUTE_PREFIX",
    "ROUTING_SIGNING_KEYS",
    "ROUTING_SIGNING_KID",
    "SIGNATURE_HEADER",
    "JWT_JWKS_URL",
    "JWKS_CACHE_MIN_SECONDS",
    "JWKS_CACHE_MAX_SECONDS",
    "JWKS_REFRESH_INTERVAL_SECONDS",
    "JWKS_FETCH_TIMEOUT_MS",
    "LOG_REQUESTS",
    "ROLLOUT_POLICY",
    "POLICY_CACHE_SECONDS",
    "TOKEN_QUERY_PARAM",
    "COHORT_HEADER",
    "OFREP_URL",
    "OFREP_FLAG",
    "OFREP_TIMEOUT_MS",
    "OFREP_CACHE_SECONDS",
    "OFREP_CACHE_SIZE",
    "OFREP_RETRY_SECONDS",
    "OFREP_BEARER_TOKEN",
    "OFREP_API_KEY",
    "CONSOLE_PATH",
    "SERVED_BY_HEADER",
];

/// Where the beta flag is asked for (OFREP), and how its answers are kept.
#[derive(Clone, PartialEq, Eq)]
pub struct OfrepSettings {
    /// `POST {base}/ofrep/v1/evaluate/flags/{flag}`.
    pub url: String,
    pub flag: String,
    pub timeout_ms: u64,
    pub cache_ms: u64,
    pub cache_size: usize,
    /// After a failure, the service is not asked again for this long (answers fall back).
    pub retry_ms: u64,
    /// `Authorization: Bearer` (OFREP_BEARER_TOKEN) and `X-API-Key` (OFREP_API_KEY): secrets.
    pub bearer: Option<String>,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for OfrepSettings {
    // The credentials never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OfrepSettings({}, flag {})", self.url, self.flag)
    }
}

/// The Workers KV binding whose key [`POLICY_KEY`] holds the rollout policy.
pub const POLICY_BINDING: &str = "BETAROUTE_POLICY";
pub const POLICY_KEY: &str = "policy";
/// Where [`EdgeConfig::policy_problem`] texts say a policy came from.
pub const INLINE_SOURCE: &str = "ROLLOUT_POLICY";
pub const KV_SOURCE: &str = "KV BETAROUTE_POLICY/policy";

/// Where remote keys come from and how long they are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    pub url: String,
    /// Bounds on the lifetime taken from the response's Cache-Control max-age.
    pub min_ttl: u64,
    pub max_ttl: u64,
    /// At most one fetch per interval, whatever triggers it (expiry, unknown kid, failures).
    pub refresh_interval: u64,
    pub timeout_ms: u64,
}

impl JwksSettings {
    /// The lifetime of a fetched key set: Cache-Control `max-age` clamped to the bounds;
    /// `no-store`, `no-cache` or no max-age give the lower bound.
    pub fn ttl(&self, cache_control: Option<&str>) -> u64 {
        let cc = cache_control.unwrap_or("").to_ascii_lowercase();
        let max_age = if cc.contains("no-store") || cc.contains("no-cache") {
            None
        } else {
            cc.split(',').find_map(|d| {
                d.trim()
                    .strip_prefix("max-age=")?
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
            })
        };
        max_age
            .unwrap_or(self.min_ttl)
            .clamp(self.min_ttl, self.max_ttl.max(self.min_ttl))
    }
}

/// Raw values of [`VAR_NAMES`], as read from the environment. Compared to detect a change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vars {
    pub values: Vec<Option<String>>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = VAR_NAMES.iter().position(|n| *n == name)?;
        self.values
            .get(i)?
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// The parsed configuration.
#[derive(Debug)]
pub struct EdgeConfig {
    /// Base URL requests are forwarded to (no trailing slash); `None`: the request's own URL.
    pub origin: Option<String>,
    /// The verifier over `JWT_KEYS`, or why there is none (then every request is main, reason
    /// `config_error`). With `JWT_JWKS_URL`, remote keys are added to it at request time.
    pub verifier: Result<std::rc::Rc<Verifier>, EdgeError>,
    pub jwks: Option<JwksSettings>,
    pub beta: BetaPolicy,
    /// Header names stripped from every client request (routing headers and the signature header).
    pub strip: HeaderPolicy,
    /// The lowercase spellings `strip` matches, when few enough to delete one by one.
    pub strip_spellings: Option<Vec<String>>,
    /// Routing header names the signature covers, in signing order.
    pub routing_names: Vec<String>,
    /// Key that signs routing decisions, if configured.
    pub signer: Option<RoutingKey>,
    pub signature_header: String,
    pub token_cookie: Option<String>,
    /// Query parameter a token may come in (`TOKEN_QUERY_PARAM`), for WebSocket clients.
    pub token_param: Option<String>,
    /// The rollout policy of `ROLLOUT_POLICY`, when it is set and valid. A KV policy wins.
    pub inline_policy: Option<std::rc::Rc<Policy>>,
    /// How long a policy read from KV is used before KV is read again, in milliseconds.
    pub policy_cache_ms: f64,
    /// The flag service, when `OFREP_URL` is set.
    pub ofrep: Option<OfrepSettings>,
    /// Reserved path prefix for betaroute's own pages, e.g. `/_betaroute/`.
    pub prefix: String,
    /// The origin path the tester console's compare panel sends its requests to
    /// (`CONSOLE_PATH`); `None`: the panel is off.
    pub console_path: Option<String>,
    /// The router's response header naming the pool that answered (`SERVED_BY_HEADER`; the
    /// router sends it when its `cohort.servedByHeader` is set).
    pub served_by_header: String,
    /// One JSON log line per request (default on; configuration problems are always logged).
    pub log_requests: bool,
    /// Configuration problems ([`EdgeError::Config`] texts), logged when the configuration is
    /// loaded.
    pub problems: Vec<String>,
}

pub const DEFAULT_PREFIX: &str = "/_betaroute/";

impl EdgeConfig {
    /// Parses the values. A broken one is recorded in `problems` (in the order of the steps
    /// below) and the part it configures falls back to the safe side.
    pub fn parse(vars: &Vars) -> EdgeConfig {
        let mut problems = Vec::new();
        let origin = read_origin(vars, &mut problems);
        let beta = BetaPolicy {
            claim: vars.get("BETA_CLAIM").unwrap_or("beta").to_owned(),
            header: read_header_name(vars, "BETA_HEADER", "X-RiksTV-Beta", &mut problems),
            cohort_header: read_header_name(
                vars,
                "COHORT_HEADER",
                betaroute_core::cohort::DEFAULT_COHORT_HEADER,
                &mut problems,
            ),
        };
        let mut routing_names = vec![beta.header.clone(), beta.cohort_header.clone()];
        routing_names.extend(
            list(vars.get("ROUTING_HEADERS"))
                .filter(|h| is_token(h))
                .map(str::to_owned),
        );
        let signature_header = read_header_name(
            vars,
            "SIGNATURE_HEADER",
            signature::DEFAULT_HEADER,
            &mut problems,
        );
        let strip = HeaderPolicy::new(routing_names.iter().chain([&signature_header]));
        let signer = read_signer(vars, &mut problems);
        let claims = read_claims(vars, &mut problems);
        let jwks = read_jwks(vars, &mut problems);
        let verifier = read_verifier(vars, claims, jwks.is_some(), &mut problems);
        let prefix = read_prefix(vars, &mut problems);
        let console_path = vars.get("CONSOLE_PATH").and_then(|p| {
            if p.starts_with('/') && !p.starts_with(&prefix) {
                return Some(p.to_owned());
            }
            let value = p.to_owned();
            note(
                &mut problems,
                "CONSOLE_PATH",
                ConfigProblem::NotConsolePath { value },
            );
            None
        });
        let served_by_header = read_header_name(
            vars,
            "SERVED_BY_HEADER",
            "X-BetaRoute-Served-By",
            &mut problems,
        );
        let mut cfg = EdgeConfig {
            origin,
            verifier,
            jwks,
            beta,
            strip_spellings: strip.spellings(32),
            strip,
            routing_names,
            signer,
            signature_header,
            token_cookie: vars.get("TOKEN_COOKIE").map(str::to_owned),
            token_param: vars.get("TOKEN_QUERY_PARAM").map(str::to_owned),
            inline_policy: None,
            policy_cache_ms: 0.0,
            ofrep: None,
            log_requests: !matches!(vars.get("LOG_REQUESTS"), Some("false" | "0" | "no")),
            prefix,
            console_path,
            served_by_header,
            problems: Vec::new(),
        };
        cfg.policy_cache_ms = read_cache_seconds(vars, &mut problems) as f64 * 1000.0;
        cfg.ofrep = read_ofrep(vars, &mut problems);
        if let Some(text) = vars.get("ROLLOUT_POLICY") {
            match cfg.policy_from(INLINE_SOURCE, text) {
                Ok(p) => cfg.inline_policy = Some(std::rc::Rc::new(p)),
                Err(EdgeError::Policy(PolicyProblem::Invalid { message, .. })) => note(
                    &mut problems,
                    "ROLLOUT_POLICY",
                    ConfigProblem::Policy { message },
                ),
                Err(e) => problems.push(e.to_string()),
            }
        }
        cfg.problems = problems;
        cfg
    }

    /// A policy read from `source`, valid for this configuration: its mapped headers must not
    /// be headers the edge sets itself.
    pub fn policy_from(&self, source: &'static str, text: &str) -> Result<Policy, EdgeError> {
        let policy = Policy::parse(text).map_err(|e| PolicyProblem::Invalid {
            source,
            message: e.to_string(),
        })?;
        let own = HeaderPolicy::new([
            &self.beta.header,
            &self.beta.cohort_header,
            &self.signature_header,
        ]);
        if let Some(h) = policy.header_names().find(|h| own.is_routing_header(h)) {
            let header = h.to_owned();
            return Err(PolicyProblem::ReservedHeader { source, header }.into());
        }
        Ok(policy)
    }
}

/// The flag service's settings, when `OFREP_URL` is set.
fn read_ofrep(vars: &Vars, problems: &mut Vec<String>) -> Option<OfrepSettings> {
    let url = vars.get("OFREP_URL")?;
    let base = match parse_origin(url) {
        Ok(b) => b,
        Err(why) => {
            let value = url.to_owned();
            note(
                problems,
                "OFREP_URL",
                ConfigProblem::NotOfrep { value, why },
            );
            return None;
        }
    };
    let mut num = |name, default| whole_number(vars, problems, name, default);
    Some(OfrepSettings {
        url: base,
        flag: vars.get("OFREP_FLAG").unwrap_or("beta").to_owned(),
        timeout_ms: num("OFREP_TIMEOUT_MS", 250),
        cache_ms: num("OFREP_CACHE_SECONDS", 30) * 1000,
        cache_size: num("OFREP_CACHE_SIZE", 10_000) as usize,
        retry_ms: num("OFREP_RETRY_SECONDS", 5) * 1000,
        bearer: vars.get("OFREP_BEARER_TOKEN").map(str::to_owned),
        api_key: vars.get("OFREP_API_KEY").map(str::to_owned),
    })
}

/// A whole-number variable, `default` when unset or not a whole number (a problem noted).
fn whole_number(vars: &Vars, problems: &mut Vec<String>, name: &'static str, default: u64) -> u64 {
    match vars.get(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            let value = v.to_owned();
            note(
                problems,
                name,
                ConfigProblem::NotWholeNumber { value, default },
            );
            default
        }),
    }
}

/// `POLICY_CACHE_SECONDS`: how long a KV policy is used before KV is read again (default 5).
fn read_cache_seconds(vars: &Vars, problems: &mut Vec<String>) -> u64 {
    const DEFAULT: u64 = 5;
    match vars.get("POLICY_CACHE_SECONDS") {
        None => DEFAULT,
        Some(v) => v.parse().unwrap_or_else(|_| {
            let value = v.to_owned();
            note(
                problems,
                "POLICY_CACHE_SECONDS",
                ConfigProblem::NotSeconds {
                    value,
                    default: DEFAULT,
                },
            );
            DEFAULT
        }),
    }
}

/// `ORIGIN_URL`; without it (or when it is invalid), requests go to their own URL.
fn read_origin(vars: &Vars, problems: &mut Vec<String>) -> Option<String> {
    let url = vars.get("ORIGIN_URL")?;
    match parse_origin(url) {
        Ok(o) => Some(o),
        Err(why) => {
            let value = url.to_owned();
            note(
                problems,
                "ORIGIN_URL",
                ConfigProblem::NotOrigin { value, why },
            );
            None
        }
    }
}

/// A header name variable, `default` when unset or not a valid header name.
fn read_header_name(
    vars: &Vars,
    name: &'static str,
    default: &'static str,
    problems: &mut Vec<String>,
) -> String {
    match vars.get(name) {
        Some(h) if is_token(h) => h.to_owned(),
        Some(h) => {
            let value = h.to_owned();
            note(
                problems,
                name,
                ConfigProblem::NotHeaderName { value, default },
            );
            default.to_owned()
        }
        None => default.to_owned(),
    }
}

/// The key that signs routing decisions: `ROUTING_SIGNING_KID` in `ROUTING_SIGNING_KEYS`, or its
/// first key.
fn read_signer(vars: &Vars, problems: &mut Vec<String>) -> Option<RoutingKey> {
    let keys = match RoutingKey::from_jwks(vars.get("ROUTING_SIGNING_KEYS")?) {
        Ok(keys) => keys,
        // Core's description: RoutingKey::from_jwks still returns a String.
        Err(message) => {
            let problem = ConfigProblem::SigningKeys { message };
            note(problems, "ROUTING_SIGNING_KEYS", problem);
            return None;
        }
    };
    let Some(kid) = vars.get("ROUTING_SIGNING_KID") else {
        return keys.into_iter().next();
    };
    let found = keys.into_iter().find(|k| k.kid == kid);
    if found.is_none() {
        let kid = kid.to_owned();
        note(
            problems,
            "ROUTING_SIGNING_KID",
            ConfigProblem::UnknownSigningKid { kid },
        );
    }
    found
}

/// The claim policy: issuer, audiences, leeway, whether `exp` is required.
fn read_claims(vars: &Vars, problems: &mut Vec<String>) -> ClaimsPolicy {
    let leeway = match vars.get("JWT_LEEWAY_SECONDS") {
        None => 60,
        Some(v) => v.parse().unwrap_or_else(|_| {
            let (value, default) = (v.to_owned(), 60);
            note(
                problems,
                "JWT_LEEWAY_SECONDS",
                ConfigProblem::NotSeconds { value, default },
            );
            default
        }),
    };
    ClaimsPolicy {
        issuer: vars.get("JWT_ISSUER").map(str::to_owned),
        audiences: list(vars.get("JWT_AUDIENCE")).map(str::to_owned).collect(),
        leeway,
        require_exp: !matches!(
            vars.get("JWT_ALLOW_MISSING_EXP"),
            Some("true" | "1" | "yes")
        ),
    }
}

/// Remote keys (`JWT_JWKS_URL`) and how long they are kept.
fn read_jwks(vars: &Vars, problems: &mut Vec<String>) -> Option<JwksSettings> {
    let url = vars.get("JWT_JWKS_URL")?;
    if !url.starts_with("https://") && !url.starts_with("http://") {
        let value = url.to_owned();
        note(
            problems,
            "JWT_JWKS_URL",
            ConfigProblem::NotHttpUrl { value },
        );
        return None;
    }
    let mut num = |name, default| whole_number(vars, problems, name, default);
    Some(JwksSettings {
        url: url.to_owned(),
        min_ttl: num("JWKS_CACHE_MIN_SECONDS", 300),
        max_ttl: num("JWKS_CACHE_MAX_SECONDS", 86_400),
        refresh_interval: num("JWKS_REFRESH_INTERVAL_SECONDS", 30),
        timeout_ms: num("JWKS_FETCH_TIMEOUT_MS", 3000),
    })
}

/// The verifier over `JWT_KEYS`, with its skipped keys (or why there is none) as problems.
fn read_verifier(
    vars: &Vars,
    claims: ClaimsPolicy,
    remote_keys: bool,
    problems: &mut Vec<String>,
) -> Result<std::rc::Rc<Verifier>, EdgeError> {
    let verifier = build_verifier(vars, claims, remote_keys).map(std::rc::Rc::new);
    match &verifier {
        Ok(v) => {
            for s in &v.keys().skipped {
                note(problems, "JWT_KEYS", ConfigProblem::SkippedKey(s.clone()));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    verifier
}

/// `BETAROUTE_PREFIX` as `/name/`; never `/`, which would shadow the origin.
fn read_prefix(vars: &Vars, problems: &mut Vec<String>) -> String {
    let Some(p) = vars.get("BETAROUTE_PREFIX") else {
        return DEFAULT_PREFIX.to_owned();
    };
    let p = format!("/{}/", p.trim_matches('/'));
    if p == "//" {
        note(problems, "BETAROUTE_PREFIX", ConfigProblem::ShadowsOrigin);
        return DEFAULT_PREFIX.to_owned();
    }
    p
}

/// Records a problem with the variable `var`, as its text.
fn note(problems: &mut Vec<String>, var: &'static str, problem: ConfigProblem) {
    problems.push(EdgeError::Config { var, problem }.to_string());
}

fn build_verifier(
    vars: &Vars,
    claims: ClaimsPolicy,
    remote_keys: bool,
) -> Result<Verifier, EdgeError> {
    let config = |var, problem| EdgeError::Config { var, problem };
    let allowed_algs = match vars.get("JWT_ALGORITHMS") {
        None => None,
        Some(v) => Some(
            list(Some(v))
                .map(|a| {
                    Alg::from_name(a).ok_or_else(|| {
                        let name = a.to_owned();
                        config(
                            "JWT_ALGORITHMS",
                            ConfigProblem::UnsupportedAlgorithm { name },
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let keys = match vars.get("JWT_KEYS") {
        Some(keys) => {
            KeySet::from_json(keys).map_err(|e| config("JWT_KEYS", ConfigProblem::Keys(e)))?
        }
        // Only remote keys: start from an empty set.
        None if remote_keys => KeySet::default(),
        None => return Err(config("JWT_KEYS", ConfigProblem::NoKeys)),
    };
    Ok(Verifier::new(
        keys,
        VerifyPolicy {
            claims,
            allowed_algs,
            ..VerifyPolicy::default()
        },
    ))
}

/// Comma-separated list, entries trimmed, empty entries dropped.
fn list(v: Option<&str>) -> impl Iterator<Item = &str> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// RFC 9110 token characters: what a header name may consist of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Validates an origin base URL: `http(s)://authority[/path]`, no query or fragment.
fn parse_origin(url: &str) -> Result<String, &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("not an http:// or https:// URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("no host");
    }
    if rest.contains(['?', '#', ' ']) {
        return Err("a base URL has no query, fragment or spaces");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            values: VAR_NAMES
                .iter()
                .map(|n| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.to_string())
                })
                .collect(),
        }
    }

    #[test]
    fn defaults_and_problems() {
        let c = EdgeConfig::parse(&vars(&[]));
        assert_eq!(c.origin, None);
        assert_eq!(c.beta, BetaPolicy::default());
        assert_eq!(c.prefix, DEFAULT_PREFIX);
        assert!(c.verifier.is_err());
        assert!(c.strip.is_routing_header("x_rikstv_beta"));

        let c = EdgeConfig::parse(&vars(&[
            ("ORIGIN_URL", "ftp://x"),
            ("JWT_KEYS", "{not json"),
            ("JWT_LEEWAY_SECONDS", "soon"),
            ("BETA_HEADER", "bad header"),
            ("BETAROUTE_PREFIX", "/"),
        ]));
        assert_eq!(c.origin, None);
        assert!(matches!(
            &c.verifier,
            Err(EdgeError::Config {
                var: "JWT_KEYS",
                ..
            })
        ));
        assert_eq!(c.problems.len(), 5, "{:?}", c.problems);
    }

    #[test]
    fn every_problem_in_order() {
        let c = EdgeConfig::parse(&vars(&[
            ("ORIGIN_URL", "http://o?q"),
            ("BETA_HEADER", "x y"),
            ("SIGNATURE_HEADER", "a:b"),
            ("ROUTING_SIGNING_KEYS", "[]"),
            ("JWT_LEEWAY_SECONDS", "-1"),
            ("JWT_JWKS_URL", "https://keys.example"),
            ("JWKS_CACHE_MIN_SECONDS", "x"),
            ("JWKS_FETCH_TIMEOUT_MS", "1.5"),
            ("JWT_ALGORITHMS", "HS256, XX1"),
            ("BETAROUTE_PREFIX", "///"),
        ]));
        assert_eq!(
            c.problems,
            [
                "ORIGIN_URL \"http://o?q\" ignored (a base URL has no query, fragment or spaces): forwarding to the request's own URL",
                "BETA_HEADER \"x y\" is not a valid header name; using X-RiksTV-Beta",
                "SIGNATURE_HEADER \"a:b\" is not a valid header name; using X-BetaRoute-Signature",
                "ROUTING_SIGNING_KEYS: expected {\"keys\":[...]}: routing decisions are not signed",
                "JWT_LEEWAY_SECONDS \"-1\" is not a whole number of seconds; using 60",
                "JWKS_CACHE_MIN_SECONDS \"x\" is not a whole number; using 300",
                "JWKS_FETCH_TIMEOUT_MS \"1.5\" is not a whole number; using 3000",
                "JWT_ALGORITHMS: \"XX1\" is not a supported algorithm",
                "BETAROUTE_PREFIX must not be \"/\": it would shadow the origin",
            ]
        );
        assert_eq!(c.signature_header, signature::DEFAULT_HEADER);
        assert!(c.jwks.is_some() && c.signer.is_none() && c.origin.is_none());
    }

    #[test]
    fn jwks_lifetime_from_cache_control() {
        let s = JwksSettings {
            url: "https://x".into(),
            min_ttl: 60,
            max_ttl: 3600,
            refresh_interval: 30,
            timeout_ms: 3000,
        };
        assert_eq!(s.ttl(Some("public, max-age=600")), 600);
        assert_eq!(s.ttl(Some("max-age=5")), 60);
        assert_eq!(s.ttl(Some("max-age=999999")), 3600);
        assert_eq!(s.ttl(Some("no-store")), 60);
        assert_eq!(s.ttl(None), 60);
    }

    #[test]
    fn configured_values() {
        let c = EdgeConfig::parse(&vars(&[
            ("ORIGIN_URL", "http://127.0.0.1:9/"),
            (
                "JWT_KEYS",
                r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#,
            ),
            ("JWT_AUDIENCE", "api, web"),
            ("BETA_HEADER", "X-Cohort-Beta"),
            ("ROUTING_HEADERS", "X-RiksTV-Beta, X-Route"),
            ("BETAROUTE_PREFIX", "__br"),
        ]));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.origin.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            c.verifier.unwrap().policy().claims.audiences,
            ["api", "web"]
        );
        assert!(
            c.strip.is_routing_header("x_cohort_beta")
                && c.strip.is_routing_header("X-RiksTV-Beta")
                && c.strip.is_routing_header("x-route")
        );
        assert_eq!(c.prefix, "/__br/");
    }
}
