//! The edge's one error type: what went wrong, by source (configuration, WebCrypto, remote keys,
//! the origin fetch, header manipulation), with the details as fields.
//!
//! An error never fails a request: it is logged, recorded as a configuration problem, or becomes
//! the `detail` of a `config_error` verdict, always as its [`Display`](fmt::Display) text. Those
//! texts are what operators see and tests pin, so they are part of the contract.

use std::fmt;

use betaroute_core::jwk::SkippedKey;
use betaroute_core::KeyError;

/// Something the edge could not do, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EdgeError {
    /// A configuration variable (`var`) that is wrong or missing. Recorded as a configuration
    /// problem; when it leaves no verifier, also the detail of every `config_error` verdict.
    Config {
        var: &'static str,
        problem: ConfigProblem,
    },
    /// WebCrypto could not check a signature with the key at `index` in the key set.
    WebCrypto {
        index: usize,
        failure: CryptoFailure,
    },
    /// Remote keys (`JWT_JWKS_URL`) could not be had or used. Without the URL: the log line
    /// carries it.
    Jwks(JwksProblem),
    /// The origin fetch could not be started or failed.
    Upstream(UpstreamProblem),
    /// A rollout policy (from `ROLLOUT_POLICY` or the KV namespace) that cannot be used: the
    /// last good one stays in force.
    Policy(PolicyProblem),
    /// The flag service could not be used for this request.
    Ofrep(OfrepProblem),
    /// The headers for the origin could not be prepared.
    Header {
        action: HeaderAction,
        /// What the runtime said (the thrown value's debug form).
        message: String,
    },
}

/// What is wrong with a configuration variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// Not a usable origin base URL (`why`); requests go to their own URL.
    NotOrigin { value: String, why: &'static str },
    /// Not a valid header name; `default` is used.
    NotHeaderName {
        value: String,
        default: &'static str,
    },
    /// The routing signing keys cannot be used (core's description); nothing is signed.
    SigningKeys { message: String },
    /// The signing key id names no key in `ROUTING_SIGNING_KEYS`; nothing is signed.
    UnknownSigningKid { kid: String },
    /// Not a whole number of seconds; `default` is used.
    NotSeconds { value: String, default: u64 },
    /// Not a whole number; `default` is used.
    NotWholeNumber { value: String, default: u64 },
    /// Not an http(s) URL; the variable is ignored.
    NotHttpUrl { value: String },
    /// A key left out of the key set.
    SkippedKey(SkippedKey),
    /// An algorithm name core does not know.
    UnsupportedAlgorithm { name: String },
    /// The key set cannot be used at all.
    Keys(KeyError),
    /// No keys are configured (and no remote keys either).
    NoKeys,
    /// The prefix would be `/`, shadowing the origin; the default is used.
    ShadowsOrigin,
    /// The inline rollout policy cannot be used (core's located description).
    Policy { message: String },
    /// Not a usable flag service base URL (`why`); the flag service is not asked.
    NotOfrep { value: String, why: &'static str },
    /// Not an origin path for the tester console's compare panel; the panel is off.
    NotConsolePath { value: String },
}

/// Why a rollout policy is not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// The policy text is not a valid policy (core's located description).
    Invalid {
        source: &'static str,
        message: String,
    },
    /// A mapped header is one the edge sets itself (the beta, label or signature header).
    ReservedHeader {
        source: &'static str,
        header: String,
    },
    /// Reading the KV namespace failed (what the runtime said).
    KvFailed { message: String },
}

/// Why the flag service's answer is not used (the policy and the token decide instead).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfrepProblem {
    /// No answer within the timeout.
    Timeout { timeout_ms: u64 },
    /// The request failed (what the runtime said).
    Failed { message: String },
    /// An answer other than 200, with the service's error code when it sent one.
    Status { status: u16, code: Option<String> },
    /// A 200 whose body is not an evaluation with a boolean `value`.
    Garbage { why: &'static str },
}

/// How a WebCrypto call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoFailure {
    /// There is no `crypto` global to call.
    Unavailable,
    /// The call threw before returning a promise.
    Threw { op: CryptoOp, message: String },
    /// The call's promise was rejected.
    Rejected { op: CryptoOp, message: String },
}

/// A WebCrypto operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoOp {
    /// `importKey`
    Import,
    /// `verify`
    Verify,
}

/// Why remote keys could not be had or used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksProblem {
    /// The request's headers could not be made.
    NoHeaders,
    /// The request could not be made (the runtime's debug form of the error).
    BadRequest { message: String },
    /// No response within the timeout.
    NoAnswer { timeout_ms: u64 },
    /// The fetch failed (what the runtime said).
    FetchFailed { message: String },
    /// The endpoint answered with a status other than 200.
    Status { status: u16 },
    /// The response has no body to read.
    NoBody,
    /// The body was not read within the timeout.
    BodyTimedOut { timeout_ms: u64 },
    /// Reading the body failed (what the runtime said).
    BodyFailed { message: String },
    /// The body is not a usable key set.
    Keys(KeyError),
    /// No keys held yet: the fetch failed or is rate-limited.
    NoKeysYet,
    /// A key left out of a fetched key set.
    SkippedKey(SkippedKey),
    /// Storing the key set in the Cache API failed (what the runtime said).
    CachePut { message: String },
}

/// Why the origin fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamProblem {
    /// `fetch(url)` threw before returning a promise.
    Threw { url: String, message: String },
    /// The fetch's promise was rejected (what the runtime said).
    Rejected { message: String },
}

/// A header operation on the request for the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderAction {
    /// Copying the client's headers.
    Copy,
    /// Removing a routing header, `name` as logged.
    Remove { name: String },
    /// Setting a header the decision adds.
    Set { name: String },
    /// Setting the routing signature.
    SetSignature,
}

impl From<JwksProblem> for EdgeError {
    fn from(p: JwksProblem) -> EdgeError {
        EdgeError::Jwks(p)
    }
}

impl From<PolicyProblem> for EdgeError {
    fn from(p: PolicyProblem) -> EdgeError {
        EdgeError::Policy(p)
    }
}

impl From<UpstreamProblem> for EdgeError {
    fn from(p: UpstreamProblem) -> EdgeError {
        EdgeError::Upstream(p)
    }
}

impl fmt::Display for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeError::Config { var, problem } => problem.describe(var, f),
            EdgeError::WebCrypto { failure, .. } => failure.fmt(f),
            EdgeError::Jwks(p) => p.fmt(f),
            EdgeError::Upstream(p) => p.fmt(f),
            EdgeError::Policy(p) => p.fmt(f),
            EdgeError::Ofrep(p) => p.fmt(f),
            EdgeError::Header { action, message } => match action {
                HeaderAction::Copy => write!(f, "copying the headers: {message}"),
                HeaderAction::Remove { name } => write!(f, "removing {name}: {message}"),
                HeaderAction::Set { name } => write!(f, "setting {name}: {message}"),
                HeaderAction::SetSignature => write!(f, "setting the signature: {message}"),
            },
        }
    }
}

impl std::error::Error for EdgeError {}

impl ConfigProblem {
    fn describe(&self, var: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNSIGNED: &str = "routing decisions are not signed";
        match self {
            ConfigProblem::NotOrigin { value, why } => write!(
                f,
                "{var} {value:?} ignored ({why}): forwarding to the request's own URL"
            ),
            ConfigProblem::NotHeaderName { value, default } => write!(
                f,
                "{var} {value:?} is not a valid header name; using {default}"
            ),
            ConfigProblem::SigningKeys { message } => write!(f, "{var}: {message}: {UNSIGNED}"),
            ConfigProblem::UnknownSigningKid { kid } => write!(
                f,
                "{var} {kid:?} is not in ROUTING_SIGNING_KEYS: {UNSIGNED}"
            ),
            ConfigProblem::NotSeconds { value, default } => write!(
                f,
                "{var} {value:?} is not a whole number of seconds; using {default}"
            ),
            ConfigProblem::NotWholeNumber { value, default } => {
                write!(f, "{var} {value:?} is not a whole number; using {default}")
            }
            ConfigProblem::NotHttpUrl { value } => {
                write!(f, "{var} {value:?} is not an http(s) URL: ignored")
            }
            ConfigProblem::SkippedKey(s) => write!(f, "{var}: ignoring {s}"),
            ConfigProblem::UnsupportedAlgorithm { name } => {
                write!(f, "{var}: {name:?} is not a supported algorithm")
            }
            ConfigProblem::Keys(e) => write!(f, "{var}: {e}"),
            ConfigProblem::NoKeys => write!(f, "{var} is not set: no token can be verified"),
            ConfigProblem::ShadowsOrigin => {
                write!(f, "{var} must not be \"/\": it would shadow the origin")
            }
            ConfigProblem::NotOfrep { value, why } => write!(
                f,
                "{var} {value:?} ignored ({why}): the flag service is not asked"
            ),
            ConfigProblem::NotConsolePath { value } => write!(
                f,
                "{var} {value:?} ignored (not a path starting with / outside the reserved prefix): the console's compare panel is off"
            ),
            ConfigProblem::Policy { message } => {
                write!(f, "{var}: {message}: not in force (the token's claim alone decides unless a KV policy is read)")
            }
        }
    }
}

impl fmt::Display for CryptoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CryptoOp::{Import, Verify};
        match self {
            CryptoFailure::Unavailable => f.write_str("no crypto global"),
            CryptoFailure::Threw {
                op: Import,
                message,
            } => write!(f, "importKey threw: {message}"),
            CryptoFailure::Threw {
                op: Verify,
                message,
            } => write!(f, "verify threw: {message}"),
            CryptoFailure::Rejected {
                op: Import,
                message,
            } => {
                write!(f, "importKey rejected the key: {message}")
            }
            CryptoFailure::Rejected {
                op: Verify,
                message,
            } => {
                write!(f, "verify rejected: {message}")
            }
        }
    }
}

impl fmt::Display for JwksProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksProblem::NoHeaders => f.write_str("headers"),
            JwksProblem::BadRequest { message } => write!(f, "bad JWKS request: {message}"),
            JwksProblem::NoAnswer { timeout_ms } => write!(f, "no answer within {timeout_ms} ms"),
            JwksProblem::FetchFailed { message } => write!(f, "fetch failed: {message}"),
            JwksProblem::Status { status } => write!(f, "JWKS endpoint answered {status}"),
            JwksProblem::NoBody => f.write_str("no body"),
            JwksProblem::BodyTimedOut { timeout_ms } => {
                write!(f, "body not read within {timeout_ms} ms")
            }
            JwksProblem::BodyFailed { message } => f.write_str(message),
            JwksProblem::Keys(e) => write!(f, "JWKS: {e}"),
            JwksProblem::NoKeysYet => {
                f.write_str("no JWKS keys yet (fetch failed or rate-limited)")
            }
            JwksProblem::SkippedKey(s) => write!(f, "ignoring {s}"),
            JwksProblem::CachePut { message } => write!(f, "Cache API put failed: {message}"),
        }
    }
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KEPT: &str = "the last good policy stays in force";
        match self {
            PolicyProblem::Invalid { source, message } => {
                write!(f, "rollout policy from {source}: {message}: {KEPT}")
            }
            PolicyProblem::ReservedHeader { source, header } => write!(
                f,
                "rollout policy from {source}: headers maps a claim to {header}, which the edge sets itself: {KEPT}"
            ),
            PolicyProblem::KvFailed { message } => {
                write!(f, "reading the rollout policy from KV failed: {message}: {KEPT}")
            }
        }
    }
}

impl fmt::Display for OfrepProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flag service: ")?;
        match self {
            OfrepProblem::Timeout { timeout_ms } => write!(f, "no answer within {timeout_ms} ms"),
            OfrepProblem::Failed { message } => write!(f, "request failed: {message}"),
            OfrepProblem::Status {
                status,
                code: Some(c),
            } => write!(f, "answered {status} ({c})"),
            OfrepProblem::Status { status, code: None } => write!(f, "answered {status}"),
            OfrepProblem::Garbage { why } => write!(f, "unusable answer: {why}"),
        }?;
        f.write_str("; the policy and the token decide")
    }
}

impl From<OfrepProblem> for EdgeError {
    fn from(p: OfrepProblem) -> EdgeError {
        EdgeError::Ofrep(p)
    }
}

impl fmt::Display for UpstreamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamProblem::Threw { url, message } => write!(f, "fetch {url} failed: {message}"),
            UpstreamProblem::Rejected { message } => write!(f, "fetch failed: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped() -> SkippedKey {
        SkippedKey {
            index: 1,
            kid: Some("k".into()),
            reason: "why".into(),
        }
    }

    fn config(var: &'static str, problem: ConfigProblem) -> EdgeError {
        EdgeError::Config { var, problem }
    }

    fn crypto(failure: CryptoFailure) -> EdgeError {
        EdgeError::WebCrypto { index: 0, failure }
    }

    fn header(action: HeaderAction) -> EdgeError {
        EdgeError::Header {
            action,
            message: "m".into(),
        }
    }

    /// Every text as the edge logged it before the error type (configuration problems in their
    /// order are pinned in `config::tests` too).
    #[test]
    fn texts() {
        let m = || "m".to_string();
        let cases: Vec<(EdgeError, &str)> = vec![
            (
                config(
                    "ORIGIN_URL",
                    ConfigProblem::NotOrigin {
                        value: "x".into(),
                        why: "no host",
                    },
                ),
                "ORIGIN_URL \"x\" ignored (no host): forwarding to the request's own URL",
            ),
            (
                config(
                    "BETA_HEADER",
                    ConfigProblem::NotHeaderName {
                        value: "a b".into(),
                        default: "X-RiksTV-Beta",
                    },
                ),
                "BETA_HEADER \"a b\" is not a valid header name; using X-RiksTV-Beta",
            ),
            (
                config(
                    "ROUTING_SIGNING_KEYS",
                    ConfigProblem::SigningKeys {
                        message: "no keys".into(),
                    },
                ),
                "ROUTING_SIGNING_KEYS: no keys: routing decisions are not signed",
            ),
            (
                config(
                    "ROUTING_SIGNING_KID",
                    ConfigProblem::UnknownSigningKid { kid: "r2".into() },
                ),
                "ROUTING_SIGNING_KID \"r2\" is not in ROUTING_SIGNING_KEYS: routing decisions are not signed",
            ),
            (
                config(
                    "JWT_LEEWAY_SECONDS",
                    ConfigProblem::NotSeconds {
                        value: "-1".into(),
                        default: 60,
                    },
                ),
                "JWT_LEEWAY_SECONDS \"-1\" is not a whole number of seconds; using 60",
            ),
            (
                config(
                    "JWKS_FETCH_TIMEOUT_MS",
                    ConfigProblem::NotWholeNumber {
                        value: "1.5".into(),
                        default: 3000,
                    },
                ),
                "JWKS_FETCH_TIMEOUT_MS \"1.5\" is not a whole number; using 3000",
            ),
            (
                config(
                    "JWT_JWKS_URL",
                    ConfigProblem::NotHttpUrl {
                        value: "ftp://x".into(),
                    },
                ),
                "JWT_JWKS_URL \"ftp://x\" is not an http(s) URL: ignored",
            ),
            (
                config("JWT_KEYS", ConfigProblem::SkippedKey(skipped())),
                "JWT_KEYS: ignoring key #1 (kid \"k\"): why",
            ),
            (
                config(
                    "JWT_ALGORITHMS",
                    ConfigProblem::UnsupportedAlgorithm { name: "XX1".into() },
                ),
                "JWT_ALGORITHMS: \"XX1\" is not a supported algorithm",
            ),
            (
                config("JWT_KEYS", ConfigProblem::Keys(KeyError::NotAKeySet)),
                "JWT_KEYS: keys must be a JWKS object {\"keys\":[...]} or a single JWK object with \"kty\"",
            ),
            (
                config("JWT_KEYS", ConfigProblem::NoKeys),
                "JWT_KEYS is not set: no token can be verified",
            ),
            (
                config("BETAROUTE_PREFIX", ConfigProblem::ShadowsOrigin),
                "BETAROUTE_PREFIX must not be \"/\": it would shadow the origin",
            ),
            (
                crypto(CryptoFailure::Unavailable),
                "no crypto global",
            ),
            (
                crypto(CryptoFailure::Threw { op: CryptoOp::Import, message: m() }),
                "importKey threw: m",
            ),
            (
                crypto(CryptoFailure::Rejected { op: CryptoOp::Import, message: m() }),
                "importKey rejected the key: m",
            ),
            (
                crypto(CryptoFailure::Threw { op: CryptoOp::Verify, message: m() }),
                "verify threw: m",
            ),
            (
                crypto(CryptoFailure::Rejected { op: CryptoOp::Verify, message: m() }),
                "verify rejected: m",
            ),
            (JwksProblem::NoHeaders.into(), "headers"),
            (
                JwksProblem::BadRequest { message: m() }.into(),
                "bad JWKS request: m",
            ),
            (
                JwksProblem::NoAnswer { timeout_ms: 300 }.into(),
                "no answer within 300 ms",
            ),
            (
                JwksProblem::FetchFailed { message: m() }.into(),
                "fetch failed: m",
            ),
            (
                JwksProblem::Status { status: 500 }.into(),
                "JWKS endpoint answered 500",
            ),
            (JwksProblem::NoBody.into(), "no body"),
            (
                JwksProblem::BodyTimedOut { timeout_ms: 300 }.into(),
                "body not read within 300 ms",
            ),
            (JwksProblem::BodyFailed { message: m() }.into(), "m"),
            (
                JwksProblem::Keys(KeyError::NoUsableKey { skipped: vec![] }).into(),
                "JWKS: the key set holds no keys",
            ),
            (
                JwksProblem::NoKeysYet.into(),
                "no JWKS keys yet (fetch failed or rate-limited)",
            ),
            (
                JwksProblem::SkippedKey(skipped()).into(),
                "ignoring key #1 (kid \"k\"): why",
            ),
            (
                JwksProblem::CachePut { message: m() }.into(),
                "Cache API put failed: m",
            ),
            (
                UpstreamProblem::Threw {
                    url: "http://o/p".into(),
                    message: m(),
                }
                .into(),
                "fetch http://o/p failed: m",
            ),
            (
                UpstreamProblem::Rejected { message: m() }.into(),
                "fetch failed: m",
            ),
            (
                header(HeaderAction::Copy),
                "copying the headers: m",
            ),
            (
                header(HeaderAction::Remove { name: "x-a".into() }),
                "removing x-a: m",
            ),
            (
                header(HeaderAction::Set { name: "X-A".into() }),
                "setting X-A: m",
            ),
            (
                header(HeaderAction::SetSignature),
                "setting the signature: m",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text, "{error:?}");
        }
    }
}
