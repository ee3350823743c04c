//! `http.middlewares.NAME`: each is one of Traefik's middleware kinds. The kinds betaroute
//! implements are read option by option here (unknown options are errors at their line) into
//! [`Middleware`]; a router using any other kind is refused (see `validate`).

use std::sync::Arc;

use super::drafts::{MiddlewareDraft, Ref};
use crate::config::read::{Cx, Obj};
use crate::config::source::{Entry, Value};
use crate::middleware::pass_tls_client_cert::{CertInfo, DnFields};
use crate::middleware::{
    AddPrefix, BasicAuth, Checker, DigestAuth, ForwardAuth, InFlight, IpAllowList, Limits,
    Middleware, PassTlsClientCert, RateLimit, Redirect, ReplacePath, ReplacePathRegex, Source,
    Strategy, StripPrefix, StripPrefixRegex,
};

/// Traefik's middleware kinds (v3.7); those not in [`IMPLEMENTED`] are refused.
pub const MIDDLEWARE_KINDS: &[&str] = &[
    "addPrefix",
    "basicAuth",
    "buffering",
    "chain",
    "circuitBreaker",
    "compress",
    "contentType",
    "digestAuth",
    "encodedCharacters",
    "errors",
    "forwardAuth",
    "grpcWeb",
    "headers",
    "inFlightReq",
    "ipAllowList",
    "ipWhiteList",
    "passTLSClientCert",
    "plugin",
    "rateLimit",
    "redirectRegex",
    "redirectScheme",
    "replacePath",
    "replacePathRegex",
    "retry",
    "stripPrefix",
    "stripPrefixRegex",
    // Kinds Traefik's Kubernetes Gateway and ingress-nginx providers generate.
    "requestHeaderModifier",
    "responseHeaderModifier",
    "requestRedirect",
    "URLRewrite",
    "authTLSPassCertificateToUpstream",
    "snippet",
    "rewriteTarget",
    "upstreamVHost",
    "appRoot",
];

/// The kinds betaroute runs.
pub const IMPLEMENTED: &[&str] = &[
    "addPrefix",
    "basicAuth",
    "buffering",
    "chain",
    "circuitBreaker",
    "compress",
    "contentType",
    "digestAuth",
    "encodedCharacters",
    "errors",
    "forwardAuth",
    "grpcWeb",
    "headers",
    "inFlightReq",
    "ipAllowList",
    "ipWhiteList",
    "passTLSClientCert",
    "rateLimit",
    "redirectRegex",
    "redirectScheme",
    "replacePath",
    "replacePathRegex",
    "retry",
    "stripPrefix",
    "stripPrefixRegex",
];

/// A middleware definition: its name and its one kind (validated against Traefik's kinds).
pub fn read(cx: &mut Cx, e: &Entry) -> Option<MiddlewareDraft> {
    let name = &e.key;
    let what = format!("middleware {name}");
    let Value::Map(entries) = &e.value.value else {
        cx.error(
            e.at,
            format!("{what}: expected a table with its type (e.g. basicAuth)"),
        );
        return None;
    };
    let mut kinds = Vec::new();
    for k in entries {
        match MIDDLEWARE_KINDS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(&k.key))
        {
            Some(kind) => kinds.push((*kind, k.at)),
            None => cx.error(k.at, format!("{what}: unknown middleware type {:?}", k.key)),
        }
    }
    match kinds.as_slice() {
        [(kind, _)] => {
            let options = entries
                .iter()
                .find(|k| k.key.eq_ignore_ascii_case(kind))
                .expect("the kind was found among the entries");
            let (spec, chain, refusal) = if IMPLEMENTED.contains(kind) {
                read_options(cx, kind, options, name)?
            } else if *kind == "plugin" {
                (None, Vec::new(), Some(plugin_refusal(&options.value)))
            } else {
                (None, Vec::new(), None)
            };
            Some(MiddlewareDraft {
                name: name.clone(),
                at: e.at,
                kind: (*kind).to_owned(),
                config: e.value.canonical(),
                spec,
                chain,
                refusal,
            })
        }
        [] => {
            cx.error(e.at, format!("{what}: no middleware type (e.g. basicAuth)"));
            None
        }
        [_, (_, at), ..] => {
            cx.error(*at, format!("{what}: one middleware type per middleware"));
            None
        }
    }
}

/// The middleware, a chain's references, and why the kind is refused after all (an option
/// betaroute does not implement).
type Options = (Option<Arc<Middleware>>, Vec<Ref>, Option<String>);

/// The options of an implemented kind, as Traefik's reference page lists them.
fn read_options(cx: &mut Cx, kind: &str, e: &Entry, name: &str) -> Option<Options> {
    let what = format!("middleware {name}: {kind}");
    let mut o = Obj::of(cx, &e.value, what.clone())?;
    let regex =
        |cx: &mut Cx, pattern: &str, at: usize| match crate::config::template::go_regex(pattern) {
            Ok(r) => Some(r),
            Err(why) => {
                cx.error(at, format!("{what}: {why}"));
                None
            }
        };
    let required = |cx: &mut Cx, o: &mut Obj, key: &str| {
        let v = o.string(cx, key);
        if v.as_deref().is_none_or(str::is_empty) {
            cx.error(o.at, format!("{what}: {key} is required"));
        }
        v
    };
    let m = match kind {
        "stripPrefix" => {
            let prefixes = o.strings(cx, "prefixes").unwrap_or_default();
            let force_slash = o.boolean(cx, "forceSlash").unwrap_or(false);
            o.finish(cx, &["prefixes", "forceSlash"]);
            Middleware::StripPrefix(StripPrefix {
                prefixes: prefixes
                    .into_iter()
                    .map(|(p, _)| p.trim().to_owned())
                    .collect(),
                force_slash,
            })
        }
        "stripPrefixRegex" => {
            let list = o.strings(cx, "regex").unwrap_or_default();
            o.finish(cx, &["regex"]);
            let regex = list
                .iter()
                .map(|(p, at)| regex(cx, p.trim(), *at))
                .collect::<Option<Vec<_>>>()?;
            Middleware::StripPrefixRegex(StripPrefixRegex { regex })
        }
        "addPrefix" => {
            let prefix = required(cx, &mut o, "prefix");
            o.finish(cx, &["prefix"]);
            Middleware::AddPrefix(AddPrefix { prefix: prefix? })
        }
        "replacePath" => {
            let path = o.string(cx, "path").unwrap_or_default();
            o.finish(cx, &["path"]);
            Middleware::ReplacePath(ReplacePath { path })
        }
        "replacePathRegex" => {
            let pattern = o.string(cx, "regex").unwrap_or_default();
            let at = o.at_key("regex");
            let replacement = o.string(cx, "replacement").unwrap_or_default();
            o.finish(cx, &["regex", "replacement"]);
            Middleware::ReplacePathRegex(ReplacePathRegex {
                regex: regex(cx, pattern.trim(), at)?,
                replacement: replacement.trim().to_owned(),
            })
        }
        "redirectRegex" => {
            let pattern = required(cx, &mut o, "regex");
            let at = o.at_key("regex");
            let replacement = o.string(cx, "replacement").unwrap_or_default();
            let permanent = o.boolean(cx, "permanent").unwrap_or(false);
            o.finish(cx, &["regex", "replacement", "permanent"]);
            let re = regex(cx, &pattern?, at)?;
            Middleware::Redirect(Redirect::regex(re, replacement, permanent, None))
        }
        "redirectScheme" => {
            let scheme = required(cx, &mut o, "scheme");
            let port = o.string(cx, "port");
            let permanent = o.boolean(cx, "permanent").unwrap_or(false);
            o.finish(cx, &["scheme", "port", "permanent"]);
            Middleware::Redirect(Redirect::scheme(
                &scheme?,
                port.as_deref(),
                permanent,
                false,
            ))
        }
        "basicAuth" | "digestAuth" => {
            let users = o.strings(cx, "users").unwrap_or_default();
            let file = o.string(cx, "usersFile").unwrap_or_default();
            let file_at = o.at_key("usersFile");
            let realm = o.string(cx, "realm");
            let field = o.string(cx, "headerField").filter(|f| !f.is_empty());
            let field_at = o.at_key("headerField");
            let remove = o.boolean(cx, "removeHeader").unwrap_or(false);
            let at = o.at;
            o.finish(
                cx,
                &["users", "usersFile", "realm", "headerField", "removeHeader"],
            );
            let mut entries = Vec::new();
            if !file.is_empty() {
                // Traefik reads the file when it builds the middleware, relative to its working
                // directory; so does betaroute, on every (re)load.
                match std::fs::read_to_string(&file) {
                    Ok(text) => entries.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_owned),
                    ),
                    Err(e) => {
                        cx.error(file_at, format!("{what}: usersFile {file}: {e}"));
                        return None;
                    }
                }
            }
            entries.extend(users.into_iter().map(|(u, _)| u));
            let header_field = match field {
                Some(f) => match http::HeaderName::from_bytes(f.as_bytes()) {
                    Ok(h) => Some(h),
                    Err(_) => {
                        cx.error(
                            field_at,
                            format!("{what}: headerField {f:?} is not a header name"),
                        );
                        return None;
                    }
                },
                None => None,
            };
            let built = if kind == "basicAuth" {
                BasicAuth::new(&entries, &file, realm, header_field, remove)
                    .map(|b| Middleware::BasicAuth(Box::new(b)))
            } else {
                DigestAuth::new(&entries, realm, header_field, remove)
                    .map(|d| Middleware::DigestAuth(Box::new(d)))
            };
            match built {
                Ok(m) => m,
                Err(why) => {
                    cx.error(at, format!("{what}: {why}"));
                    return None;
                }
            }
        }
        "ipAllowList" | "ipWhiteList" => {
            let ranges = o.strings(cx, "sourceRange").unwrap_or_default();
            let ranges_at = o.at_key("sourceRange");
            let code = o.number::<u16>(cx, "rejectStatusCode");
            let code_at = o.at_key("rejectStatusCode");
            let strategy = o.obj(cx, "ipStrategy").map(|s| ip_strategy(cx, s, &what));
            o.finish(cx, &["sourceRange", "ipStrategy", "rejectStatusCode"]);
            let reject = match code {
                None | Some(0) => http::StatusCode::FORBIDDEN,
                Some(c) => match http::StatusCode::from_u16(c)
                    .ok()
                    .filter(|s| s.canonical_reason().is_some())
                {
                    Some(s) => s,
                    None => {
                        cx.error(code_at, format!("{what}: invalid HTTP status code {c}"));
                        return None;
                    }
                },
            };
            if ranges.is_empty() {
                cx.error(ranges_at, format!("{what}: sourceRange is empty"));
                return None;
            }
            let list: Vec<String> = ranges.into_iter().map(|(r, _)| r).collect();
            let allowed = match Checker::new(&list) {
                Ok(c) => c,
                Err(why) => {
                    cx.error(ranges_at, format!("{what}: sourceRange: {why}"));
                    return None;
                }
            };
            Middleware::IpAllowList(IpAllowList {
                allowed,
                strategy: strategy.unwrap_or(Strategy::RemoteAddr { ipv6_subnet: None }),
                reject,
            })
        }
        "forwardAuth" => {
            let address = required(cx, &mut o, "address");
            let address_at = o.at_key("address");
            let trust = o.boolean(cx, "trustForwardHeader");
            let names = |cx: &mut Cx, o: &mut Obj, key: &str| -> Vec<http::HeaderName> {
                let list = o.strings(cx, key).unwrap_or_default();
                list.into_iter()
                    .filter_map(|(n, at)| match http::HeaderName::from_bytes(n.as_bytes()) {
                        Ok(h) => Some(h),
                        Err(_) => {
                            cx.error(at, format!("{what}: {key}: {n:?} is not a header name"));
                            None
                        }
                    })
                    .collect()
            };
            let response_headers = names(cx, &mut o, "authResponseHeaders");
            let request_headers = names(cx, &mut o, "authRequestHeaders");
            let regex_text = o
                .string(cx, "authResponseHeadersRegex")
                .filter(|r| !r.is_empty());
            let regex_at = o.at_key("authResponseHeadersRegex");
            let cookies = o
                .strings(cx, "addAuthCookiesToResponse")
                .unwrap_or_default();
            let preserve_location = o.boolean(cx, "preserveLocationHeader").unwrap_or(false);
            let preserve_method = o.boolean(cx, "preserveRequestMethod").unwrap_or(false);
            let signin = o.string(cx, "authSigninURL").filter(|u| !u.is_empty());
            let max_response = o.number::<i64>(cx, "maxResponseBodySize");
            // Only with forwardBody, which is refused below.
            let _max_body = o.number::<i64>(cx, "maxBodySize");
            if let Some(node) = o.get(cx, "headerField") {
                cx.warn(node.at, format!("{what}: headerField names the user in Traefik's access log; betaroute's access log has no user field"));
            }
            let mut refusal = None;
            if o.boolean(cx, "forwardBody") == Some(true) {
                let why = "forwardBody is not supported yet (the request body is not sent to the auth server)";
                cx.refuse(o.at_key("forwardBody"), format!("{what}: {why}"));
                refusal = Some(why.to_owned());
            }
            let tls = o
                .obj(cx, "tls")
                .and_then(|t| crate::config::dynamic::transport::client_tls(cx, t))
                .map(|t| std::sync::Arc::new(crate::proxy::outbound::TlsClient::new(&t)));
            o.finish(
                cx,
                &[
                    "address",
                    "trustForwardHeader",
                    "authResponseHeaders",
                    "authRequestHeaders",
                    "authResponseHeadersRegex",
                    "addAuthCookiesToResponse",
                    "preserveLocationHeader",
                    "preserveRequestMethod",
                    "authSigninURL",
                    "maxResponseBodySize",
                    "maxBodySize",
                    "headerField",
                    "forwardBody",
                    "tls",
                ],
            );
            let address = address?;
            let uri = match address.parse::<http::Uri>() {
                Ok(u)
                    if matches!(u.scheme_str(), Some("http" | "https"))
                        && u.authority().is_some() =>
                {
                    u
                }
                _ => {
                    cx.error(
                        address_at,
                        format!("{what}: address {address:?} is not an http:// or https:// URL"),
                    );
                    return None;
                }
            };
            let regex = match regex_text {
                Some(r) => Some(regex(cx, &r, regex_at)?),
                None => None,
            };
            if let Some(why) = refusal {
                return Some((None, Vec::new(), Some(why)));
            }
            Middleware::ForwardAuth(Box::new(ForwardAuth {
                address: uri,
                trust_forward_header: trust,
                auth_response_headers: response_headers,
                auth_response_headers_regex: regex,
                auth_request_headers: request_headers,
                add_auth_cookies_to_response: cookies.into_iter().map(|(c, _)| c).collect(),
                preserve_location_header: preserve_location,
                preserve_request_method: preserve_method,
                auth_signin_url: signin,
                max_response_body_size: max_response.filter(|m| *m >= 0).map(|m| m as u64),
                tls,
            }))
        }
        "compress" => {
            use crate::middleware::compress::{self, Encoding, MediaType};
            let media = |cx: &mut Cx, o: &mut Obj, key: &str| -> Option<Vec<MediaType>> {
                let list = o.strings(cx, key).unwrap_or_default();
                list.into_iter()
                    .map(|(t, at)| {
                        let parsed = MediaType::parse(&t);
                        if parsed.is_none() {
                            cx.error(at, format!("{what}: {key}: {t:?} is not a media type"));
                        }
                        parsed
                    })
                    .collect()
            };
            let excluded = media(cx, &mut o, "excludedContentTypes");
            let excluded_at = o.at_key("excludedContentTypes");
            let included = media(cx, &mut o, "includedContentTypes");
            let min = o.number::<i64>(cx, "minResponseBodyBytes").unwrap_or(0);
            let encodings_at = o.at_key("encodings");
            let encodings = o.strings(cx, "encodings");
            let default = o.string(cx, "defaultEncoding").filter(|d| !d.is_empty());
            let default_at = o.at_key("defaultEncoding");
            o.finish(
                cx,
                &[
                    "excludedContentTypes",
                    "includedContentTypes",
                    "minResponseBodyBytes",
                    "encodings",
                    "defaultEncoding",
                ],
            );
            let (excluded, included) = (excluded?, included?);
            if !excluded.is_empty() && !included.is_empty() {
                cx.error(excluded_at, format!("{what}: excludedContentTypes and includedContentTypes options are mutually exclusive"));
                return None;
            }
            let encodings = match encodings {
                None => compress::DEFAULT_ENCODINGS.to_vec(),
                Some(list) => {
                    let mut out = Vec::new();
                    for (e, at) in list {
                        match Encoding::parse(&e) {
                            Some(e) => out.push(e),
                            None => {
                                cx.error(at, format!("{what}: unsupported encoding: {e}"));
                                return None;
                            }
                        }
                    }
                    if out.is_empty() {
                        cx.error(
                            encodings_at,
                            format!("{what}: at least one encoding must be specified"),
                        );
                        return None;
                    }
                    out
                }
            };
            let default_encoding = match default {
                None => None,
                Some(d) => match Encoding::parse(&d).filter(|e| encodings.contains(e)) {
                    Some(e) => Some(e),
                    None => {
                        cx.error(
                            default_at,
                            format!("{what}: unsupported default encoding: {d}"),
                        );
                        return None;
                    }
                },
            };
            // Traefik never compresses gRPC, and keeps only the media type of an exclusion.
            let mut excludes = vec![MediaType::parse("application/grpc").expect("a media type")];
            excludes.extend(excluded.into_iter().map(|m| MediaType {
                essence: m.essence,
                params: Vec::new(),
            }));
            let includes = included
                .into_iter()
                .map(|m| MediaType {
                    essence: m.essence,
                    params: Vec::new(),
                })
                .collect();
            Middleware::Compress(Arc::new(compress::Compress {
                excludes,
                includes,
                min_size: if min > 0 {
                    min as usize
                } else {
                    compress::DEFAULT_MIN_SIZE
                },
                encodings,
                default_encoding,
            }))
        }
        "retry" => {
            use crate::middleware::codes::CodeRanges;
            use crate::middleware::retry::{self, Retry};
            let attempts = o.number::<i64>(cx, "attempts").unwrap_or(0);
            let attempts_at = o.at_key("attempts");
            let initial = o.duration(cx, "initialInterval").unwrap_or_default();
            let timeout = o.duration(cx, "timeout").unwrap_or_default();
            let max_body = o
                .number::<i64>(cx, "maxRequestBodyBytes")
                .unwrap_or(retry::DEFAULT_MAX_REQUEST_BODY_BYTES);
            let status = o.strings(cx, "status").unwrap_or_default();
            let status_at = o.at_key("status");
            let no_network = o.boolean(cx, "disableRetryOnNetworkError").unwrap_or(false);
            let non_idempotent = o.boolean(cx, "retryNonIdempotentMethod").unwrap_or(false);
            o.finish(
                cx,
                &[
                    "attempts",
                    "initialInterval",
                    "timeout",
                    "maxRequestBodyBytes",
                    "status",
                    "disableRetryOnNetworkError",
                    "retryNonIdempotentMethod",
                ],
            );
            if status.is_empty() && no_network {
                cx.error(status_at, format!("{what}: retry middleware requires at least HTTP status codes or retry on TCP"));
                return None;
            }
            if attempts <= 0 {
                cx.error(
                    attempts_at,
                    format!("{what}: incorrect (or empty) value for attempt ({attempts})"),
                );
                return None;
            }
            let codes: Vec<String> = status.into_iter().map(|(c, _)| c).collect();
            let status = match CodeRanges::parse(&codes) {
                Ok(r) => r,
                Err(why) => {
                    cx.error(status_at, format!("{what}: {why}"));
                    return None;
                }
            };
            Middleware::Retry(Arc::new(Retry {
                attempts: attempts.min(i64::from(u32::MAX)) as u32,
                initial_interval: initial,
                timeout,
                status,
                max_request_body_bytes: max_body,
                disable_retry_on_network_error: no_network,
                retry_non_idempotent_method: non_idempotent,
            }))
        }
        "circuitBreaker" => {
            use crate::middleware::circuit_breaker::{CircuitBreaker, Expr};
            let text = o.string(cx, "expression").unwrap_or_default();
            let text_at = o.at_key("expression");
            let positive = |d: Option<std::time::Duration>, default: u64| {
                d.filter(|d| !d.is_zero())
                    .unwrap_or(std::time::Duration::from_millis(default))
            };
            let check = o.duration(cx, "checkPeriod");
            let fallback = o.duration(cx, "fallbackDuration");
            let recovery = o.duration(cx, "recoveryDuration");
            let code = o.number::<u16>(cx, "responseCode").unwrap_or(503);
            let code_at = o.at_key("responseCode");
            o.finish(
                cx,
                &[
                    "expression",
                    "checkPeriod",
                    "fallbackDuration",
                    "recoveryDuration",
                    "responseCode",
                ],
            );
            let expression = match Expr::parse(&text) {
                Ok(e) => e,
                Err(why) => {
                    cx.error(text_at, format!("{what}: expression {text:?}: {why}"));
                    return None;
                }
            };
            let Some(code) = http::StatusCode::from_u16(code).ok() else {
                cx.error(code_at, format!("{what}: invalid HTTP status code {code}"));
                return None;
            };
            Middleware::CircuitBreaker(Arc::new(CircuitBreaker::new(
                expression,
                text,
                positive(check, 100),
                positive(fallback, 10_000),
                positive(recovery, 10_000),
                code,
            )))
        }
        "errors" => {
            use crate::middleware::codes::CodeRanges;
            use crate::middleware::errors::Errors;
            let status = o.strings(cx, "status").unwrap_or_default();
            let status_at = o.at_key("status");
            let mut rewrites = Vec::new();
            if let Some(mut m) = o.obj(cx, "statusRewrites") {
                for e in m.named() {
                    let to = crate::config::read::number::<u16>(
                        cx,
                        &e.value,
                        &format!("{what}: statusRewrites.{}", e.key),
                    );
                    match (CodeRanges::parse(&[e.key.as_str()]), to) {
                        (Ok(r), Some(to)) => rewrites.push((r, to)),
                        (Err(why), _) => cx.error(e.at, format!("{what}: statusRewrites: {why}")),
                        _ => {}
                    }
                }
            }
            let service = required(cx, &mut o, "service");
            let query = o.string(cx, "query").unwrap_or_default();
            let headers = o.get(cx, "errorRequestHeaders").map(|_| ());
            let header_list = o.strings(cx, "errorRequestHeaders");
            o.finish(
                cx,
                &[
                    "status",
                    "statusRewrites",
                    "service",
                    "query",
                    "errorRequestHeaders",
                ],
            );
            let codes: Vec<String> = status.into_iter().map(|(c, _)| c).collect();
            let status = match CodeRanges::parse(&codes) {
                Ok(r) => r,
                Err(why) => {
                    cx.error(status_at, format!("{what}: {why}"));
                    return None;
                }
            };
            let request_headers = headers.map(|()| {
                header_list
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(n, _)| http::HeaderName::from_bytes(n.as_bytes()).ok())
                    .collect()
            });
            // The service is qualified and checked when the configuration is combined.
            Middleware::Errors(Arc::new(Errors {
                status,
                rewrites,
                service: service?,
                query,
                request_headers,
            }))
        }
        "buffering" => {
            let mut sizes = Vec::new();
            for key in [
                "maxRequestBodyBytes",
                "memRequestBodyBytes",
                "maxResponseBodyBytes",
                "memResponseBodyBytes",
            ] {
                let n = o.number::<i64>(cx, key).unwrap_or(0);
                if n < 0 {
                    let kind = if key.starts_with("max") { "max" } else { "mem" };
                    cx.error(
                        o.at_key(key),
                        format!("{what}: {key}: {kind} bytes should be >= 0 got {n}"),
                    );
                    return None;
                }
                sizes.push(n as u64);
            }
            let text = o.string(cx, "retryExpression").unwrap_or_default();
            let text_at = o.at_key("retryExpression");
            o.finish(
                cx,
                &[
                    "maxRequestBodyBytes",
                    "memRequestBodyBytes",
                    "maxResponseBodyBytes",
                    "memResponseBodyBytes",
                    "retryExpression",
                ],
            );
            use crate::middleware::buffering::{Buffering, RetryExpr};
            // oxy: an empty expression is no retry.
            let retry = match text.as_str() {
                "" => None,
                t => match RetryExpr::parse(t) {
                    Ok(e) => Some(e),
                    Err(why) => {
                        cx.error(text_at, format!("{what}: retryExpression {t:?}: {why}"));
                        return None;
                    }
                },
            };
            Middleware::Buffering(Arc::new(Buffering {
                max_request_body_bytes: sizes[0],
                max_response_body_bytes: sizes[2],
                retry,
            }))
        }
        "contentType" => {
            let auto = o.boolean(cx, "autoDetect");
            if auto.is_some() {
                cx.warn(
                    o.at_key("autoDetect"),
                    format!("{what}: autoDetect is deprecated (Traefik v3): remove it, the middleware alone turns detection on"),
                );
            }
            o.finish(cx, &["autoDetect"]);
            // `autoDetect: false`: Traefik builds no middleware at all; this one does nothing.
            Middleware::ContentType(auto != Some(false))
        }
        "encodedCharacters" => {
            let mut flag = |key: &str| o.boolean(cx, key).unwrap_or(false);
            let m = crate::middleware::EncodedCharacters {
                allow_slash: flag("allowEncodedSlash"),
                allow_back_slash: flag("allowEncodedBackSlash"),
                allow_null: flag("allowEncodedNullCharacter"),
                allow_semicolon: flag("allowEncodedSemicolon"),
                allow_percent: flag("allowEncodedPercent"),
                allow_question_mark: flag("allowEncodedQuestionMark"),
                allow_hash: flag("allowEncodedHash"),
            };
            o.finish(
                cx,
                &[
                    "allowEncodedSlash",
                    "allowEncodedBackSlash",
                    "allowEncodedNullCharacter",
                    "allowEncodedSemicolon",
                    "allowEncodedPercent",
                    "allowEncodedQuestionMark",
                    "allowEncodedHash",
                ],
            );
            Middleware::EncodedCharacters(m)
        }
        "passTLSClientCert" => {
            let pem = o.boolean(cx, "pem").unwrap_or(false);
            let info = o.obj(cx, "info").map(|i| tls_cert_info(cx, i));
            o.finish(cx, &["pem", "info"]);
            Middleware::PassTlsClientCert(Box::new(PassTlsClientCert { pem, info }))
        }
        "inFlightReq" => {
            let amount = o.number::<u64>(cx, "amount").unwrap_or(0);
            let amount_at = o.at_key("amount");
            let source = o
                .obj(cx, "sourceCriterion")
                .map(|c| source_criterion(cx, c, &what));
            o.finish(cx, &["amount", "sourceCriterion"]);
            if amount == 0 {
                cx.error(amount_at, format!("{what}: amount must be at least 1"));
                return None;
            }
            Middleware::InFlight(Box::new(InFlight::new(
                amount,
                source.flatten().unwrap_or(Source::Host),
            )))
        }
        "rateLimit" => {
            let average = o.number::<i64>(cx, "average").unwrap_or(0);
            let period = o
                .duration(cx, "period")
                .unwrap_or(std::time::Duration::from_secs(1));
            let burst = o.number::<i64>(cx, "burst").unwrap_or(1);
            let source = o
                .obj(cx, "sourceCriterion")
                .map(|c| source_criterion(cx, c, &what));
            let why =
                "redis is not supported yet (betaroute's rate limit is in memory, per replica)";
            if o.refuse(cx, "redis", why).is_some() {
                o.finish(
                    cx,
                    &["average", "period", "burst", "sourceCriterion", "redis"],
                );
                return Some((None, Vec::new(), Some(why.to_owned())));
            }
            o.finish(
                cx,
                &["average", "period", "burst", "sourceCriterion", "redis"],
            );
            Middleware::RateLimit(Box::new(RateLimit::new(
                Limits::new(average, period, burst),
                source
                    .flatten()
                    .unwrap_or(Source::Ip(Strategy::RemoteAddr { ipv6_subnet: None })),
            )))
        }
        "headers" => {
            let h = super::headers::read(cx, &mut o, &what);
            o.finish(cx, super::headers::KEYS);
            Middleware::Headers(Box::new(h?))
        }
        "grpcWeb" => {
            // Traefik compares each origin as written (no trimming, case kept); `*` allows all.
            let origins = o.strings(cx, "allowOrigins").unwrap_or_default();
            o.finish(cx, &["allowOrigins"]);
            Middleware::GrpcWeb(Arc::new(crate::middleware::grpc_web::GrpcWeb::new(
                origins.into_iter().map(|(origin, _)| origin).collect(),
            )))
        }
        "chain" => {
            let refs = o.strings(cx, "middlewares").unwrap_or_default();
            o.finish(cx, &["middlewares"]);
            let refs = refs
                .into_iter()
                .map(|(name, at)| Ref { name, at })
                .collect();
            return Some((None, refs, None));
        }
        other => unreachable!("{other} is not an implemented kind"),
    };
    Some((Some(Arc::new(m)), Vec::new(), None))
}

/// A plugin is refused naming it: betaroute does not run Traefik's Yaegi (Go interpreter)
/// plugins, and will not.
fn plugin_refusal(options: &crate::config::source::Node) -> String {
    let names: Vec<&str> = match &options.value {
        Value::Map(entries) => entries.iter().map(|e| e.key.as_str()).collect(),
        _ => Vec::new(),
    };
    format!(
        "plugin {}: betaroute does not run Traefik plugins (they are Go code run by Yaegi)",
        if names.is_empty() {
            "(unnamed)".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// `passTLSClientCert.info`: present, even empty, it sets the info header (Traefik's non-nil
/// `Info`).
fn tls_cert_info(cx: &mut Cx, mut o: Obj) -> CertInfo {
    let mut flag = |o: &mut Obj, key: &str| o.boolean(cx, key).unwrap_or(false);
    let (not_after, not_before) = (flag(&mut o, "notAfter"), flag(&mut o, "notBefore"));
    let (sans, serial_number) = (flag(&mut o, "sans"), flag(&mut o, "serialNumber"));
    let subject = o.obj(cx, "subject").map(|s| dn_fields(cx, s, true));
    let issuer = o.obj(cx, "issuer").map(|s| dn_fields(cx, s, false));
    o.finish(
        cx,
        &[
            "notAfter",
            "notBefore",
            "sans",
            "serialNumber",
            "subject",
            "issuer",
        ],
    );
    CertInfo {
        not_after,
        not_before,
        sans,
        serial_number,
        subject: subject.unwrap_or_default(),
        issuer: issuer.unwrap_or_default(),
    }
}

/// `info.subject` or `info.issuer`; Traefik's issuer has no `organizationalUnit`, so there it
/// is an unknown key.
fn dn_fields(cx: &mut Cx, mut o: Obj, subject: bool) -> DnFields {
    let mut flag = |o: &mut Obj, key: &str| o.boolean(cx, key).unwrap_or(false);
    let f = DnFields {
        country: flag(&mut o, "country"),
        province: flag(&mut o, "province"),
        locality: flag(&mut o, "locality"),
        organization: flag(&mut o, "organization"),
        organizational_unit: subject && flag(&mut o, "organizationalUnit"),
        common_name: flag(&mut o, "commonName"),
        serial_number: flag(&mut o, "serialNumber"),
        domain_component: flag(&mut o, "domainComponent"),
    };
    let mut known = vec!["country", "province", "locality", "organization"];
    if subject {
        known.push("organizationalUnit");
    }
    known.extend(["commonName", "serialNumber", "domainComponent"]);
    o.finish(cx, &known);
    f
}

/// `ipStrategy {depth, excludedIPs, ipv6Subnet}` (ipAllowList's, rateLimit's and inFlightReq's
/// `sourceCriterion`): depth wins over excludedIPs, as in Traefik.
fn ip_strategy(cx: &mut Cx, mut s: Obj, what: &str) -> Strategy {
    let depth = s.number::<usize>(cx, "depth").unwrap_or(0);
    let excluded = s.strings(cx, "excludedIPs").unwrap_or_default();
    let excluded_at = s.at_key("excludedIPs");
    let subnet = s.number::<u32>(cx, "ipv6Subnet");
    let subnet_at = s.at_key("ipv6Subnet");
    s.finish(cx, &["depth", "excludedIPs", "ipv6Subnet"]);
    let ipv6_subnet = match subnet {
        Some(b) if b == 0 || b > 128 => {
            cx.error(
                subnet_at,
                format!("{what}: invalid IPv6 subnet {b} value, should be greater to 0 and lower or equal to 128"),
            );
            None
        }
        b => b.map(|b| b as u8),
    };
    if depth > 0 {
        return Strategy::Depth { depth, ipv6_subnet };
    }
    if excluded.is_empty() {
        return Strategy::RemoteAddr { ipv6_subnet };
    }
    let list: Vec<String> = excluded.into_iter().map(|(e, _)| e).collect();
    match Checker::new(&list) {
        Ok(c) => Strategy::Excluded(c),
        Err(why) => {
            cx.error(excluded_at, format!("{what}: excludedIPs: {why}"));
            Strategy::RemoteAddr { ipv6_subnet }
        }
    }
}

/// `sourceCriterion`: one of `ipStrategy`, `requestHeaderName`, `requestHost`.
fn source_criterion(cx: &mut Cx, mut c: Obj, what: &str) -> Option<Source> {
    let at = c.at;
    let ip = c.obj(cx, "ipStrategy").map(|s| ip_strategy(cx, s, what));
    let header = c.string(cx, "requestHeaderName").filter(|h| !h.is_empty());
    let host = c.boolean(cx, "requestHost").unwrap_or(false);
    c.finish(cx, &["ipStrategy", "requestHeaderName", "requestHost"]);
    match (ip, header, host) {
        (Some(_), Some(_), _) => cx.error(
            at,
            format!(
                "{what}: sourceCriterion: ipStrategy and requestHeaderName are mutually exclusive"
            ),
        ),
        (Some(_), _, true) => cx.error(
            at,
            format!("{what}: sourceCriterion: ipStrategy and requestHost are mutually exclusive"),
        ),
        (_, Some(_), true) => cx.error(
            at,
            format!(
                "{what}: sourceCriterion: requestHost and requestHeaderName are mutually exclusive"
            ),
        ),
        (Some(s), None, false) => return Some(Source::Ip(s)),
        (None, Some(h), false) => match http::HeaderName::from_bytes(h.as_bytes()) {
            Ok(h) => return Some(Source::Header(h)),
            Err(_) => cx.error(
                at,
                format!("{what}: sourceCriterion: requestHeaderName {h:?} is not a header name"),
            ),
        },
        (None, None, true) => return Some(Source::Host),
        (None, None, false) => {}
    }
    None
}

#[cfg(test)]
mod kinds {
    use super::*;

    #[test]
    fn each_kind_once_and_every_implemented_one_is_a_kind() {
        for list in [MIDDLEWARE_KINDS, IMPLEMENTED] {
            let mut seen = std::collections::BTreeSet::new();
            for k in list {
                assert!(seen.insert(k), "{k} twice");
            }
        }
        for k in IMPLEMENTED {
            assert!(MIDDLEWARE_KINDS.contains(k), "{k} is no Traefik kind");
        }
    }
}
