//! The options of the `headers` middleware, as Traefik v3's reference page lists them. The
//! options Traefik v3 parses and ignores (`sslRedirect` and the rest of v2's redirects,
//! `featurePolicy`) are accepted with a warning that says so.

use http::header::{HeaderName, HeaderValue};

use crate::config::read::{self, Cx, Obj};
use crate::middleware::{Cors, Custom, Headers, Secure};

pub const KEYS: &[&str] = &[
    "customRequestHeaders",
    "customResponseHeaders",
    "accessControlAllowCredentials",
    "accessControlAllowHeaders",
    "accessControlAllowMethods",
    "accessControlAllowOriginList",
    "accessControlAllowOriginListRegex",
    "accessControlExposeHeaders",
    "accessControlMaxAge",
    "addVaryHeader",
    "allowedHosts",
    "hostsProxyHeaders",
    "sslProxyHeaders",
    "stsSeconds",
    "stsIncludeSubdomains",
    "stsPreload",
    "forceSTSHeader",
    "frameDeny",
    "customFrameOptionsValue",
    "contentTypeNosniff",
    "browserXssFilter",
    "customBrowserXSSValue",
    "contentSecurityPolicy",
    "contentSecurityPolicyReportOnly",
    "publicKey",
    "referrerPolicy",
    "permissionsPolicy",
    "isDevelopment",
    "featurePolicy",
    "sslRedirect",
    "sslTemporaryRedirect",
    "sslHost",
    "sslForceHost",
];

/// v2 options Traefik v3 still parses and ignores.
const IGNORED_IN_V3: &[(&str, &str)] = &[
    ("featurePolicy", "use permissionsPolicy"),
    (
        "sslRedirect",
        "use redirectScheme or an entry point redirection",
    ),
    (
        "sslTemporaryRedirect",
        "use redirectScheme or an entry point redirection",
    ),
    ("sslHost", "use redirectRegex"),
    ("sslForceHost", "use redirectRegex"),
];

pub fn read(cx: &mut Cx, o: &mut Obj, what: &str) -> Option<Headers> {
    let mut configured = false;
    let mut custom = |cx: &mut Cx, o: &mut Obj, key: &str| -> Custom {
        let Some(mut m) = o.obj(cx, key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in m.named() {
            let Ok(name) = HeaderName::from_bytes(e.key.as_bytes()) else {
                cx.error(
                    e.at,
                    format!("{what}: {key}: {:?} is not a header name", e.key),
                );
                continue;
            };
            let value =
                read::string(cx, &e.value, &format!("{what}: {key}.{}", e.key)).unwrap_or_default();
            if value.is_empty() {
                out.push((name, None));
            } else {
                match HeaderValue::from_str(&value) {
                    Ok(v) => out.push((name, Some(v))),
                    Err(_) => cx.error(
                        e.value.at,
                        format!("{what}: {key}.{}: not a header value", e.key),
                    ),
                }
            }
        }
        configured |= !out.is_empty();
        out
    };
    let custom_request = custom(cx, o, "customRequestHeaders");
    let custom_response = custom(cx, o, "customResponseHeaders");
    let list = |cx: &mut Cx, o: &mut Obj, key: &str| -> Vec<String> {
        o.strings(cx, key)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    let mut cors = Cors {
        allow_credentials: o
            .boolean(cx, "accessControlAllowCredentials")
            .unwrap_or(false),
        allow_headers: list(cx, o, "accessControlAllowHeaders"),
        allow_methods: list(cx, o, "accessControlAllowMethods"),
        allow_origins: list(cx, o, "accessControlAllowOriginList"),
        allow_origin_regex: Vec::new(),
        expose_headers: list(cx, o, "accessControlExposeHeaders"),
        max_age: o.number::<i64>(cx, "accessControlMaxAge"),
        add_vary: o.boolean(cx, "addVaryHeader").unwrap_or(false),
    };
    let regexes = o
        .strings(cx, "accessControlAllowOriginListRegex")
        .unwrap_or_default();
    for (p, at) in &regexes {
        match crate::config::template::go_regex(p) {
            Ok(r) => cors.allow_origin_regex.push(r),
            Err(why) => cx.error(
                *at,
                format!("{what}: accessControlAllowOriginListRegex: {why}"),
            ),
        }
    }
    let cors_set = cors.allow_credentials
        || !cors.allow_headers.is_empty()
        || !cors.allow_methods.is_empty()
        || !cors.allow_origins.is_empty()
        || !regexes.is_empty()
        || !cors.expose_headers.is_empty()
        || cors.max_age.is_some()
        || cors.add_vary;
    let mut security_set = false;
    let mut flag = |cx: &mut Cx, o: &mut Obj, key: &str| {
        let v = o.boolean(cx, key);
        security_set |= v.is_some();
        v.unwrap_or(false)
    };
    let mut secure = Secure {
        sts_include_subdomains: flag(cx, o, "stsIncludeSubdomains"),
        sts_preload: flag(cx, o, "stsPreload"),
        force_sts: flag(cx, o, "forceSTSHeader"),
        frame_deny: flag(cx, o, "frameDeny"),
        content_type_nosniff: flag(cx, o, "contentTypeNosniff"),
        browser_xss_filter: flag(cx, o, "browserXssFilter"),
        is_development: flag(cx, o, "isDevelopment"),
        ..Secure::default()
    };
    let mut text = |cx: &mut Cx, o: &mut Obj, key: &str| {
        let v = o.string(cx, key).unwrap_or_default();
        security_set |= !v.is_empty();
        v
    };
    secure.custom_frame_options = text(cx, o, "customFrameOptionsValue");
    secure.custom_browser_xss = text(cx, o, "customBrowserXSSValue");
    secure.csp = text(cx, o, "contentSecurityPolicy");
    secure.csp_report_only = text(cx, o, "contentSecurityPolicyReportOnly");
    secure.public_key = text(cx, o, "publicKey");
    secure.referrer_policy = text(cx, o, "referrerPolicy");
    secure.permissions_policy = text(cx, o, "permissionsPolicy");
    if let Some(s) = o.number::<i64>(cx, "stsSeconds") {
        secure.sts_seconds = s;
        security_set = true;
    }
    secure.allowed_hosts = list(cx, o, "allowedHosts");
    for (h, at) in o.strings(cx, "hostsProxyHeaders").unwrap_or_default() {
        match HeaderName::from_bytes(h.as_bytes()) {
            Ok(n) => secure.hosts_proxy_headers.push(n),
            Err(_) => cx.error(
                at,
                format!("{what}: hostsProxyHeaders: {h:?} is not a header name"),
            ),
        }
    }
    if let Some(mut m) = o.obj(cx, "sslProxyHeaders") {
        for e in m.named() {
            let v = read::string(cx, &e.value, &format!("{what}: sslProxyHeaders.{}", e.key))
                .unwrap_or_default();
            match HeaderName::from_bytes(e.key.as_bytes()) {
                Ok(n) => secure.ssl_proxy_headers.push((n, v)),
                Err(_) => cx.error(
                    e.at,
                    format!("{what}: sslProxyHeaders: {:?} is not a header name", e.key),
                ),
            }
        }
    }
    security_set |= !secure.allowed_hosts.is_empty()
        || !secure.hosts_proxy_headers.is_empty()
        || !secure.ssl_proxy_headers.is_empty();
    for (key, instead) in IGNORED_IN_V3 {
        if let Some(node) = o.get(cx, key) {
            security_set = true;
            cx.warn(
                node.at,
                format!("{what}: {key} is ignored by Traefik v3 and by betaroute ({instead})"),
            );
        }
    }
    if !(configured || cors_set || security_set) {
        cx.error(
            o.at,
            format!("{what}: headers configuration not valid (no option set)"),
        );
        return None;
    }
    Some(Headers {
        custom_request,
        custom_response,
        cors: cors_set.then_some(cors),
        secure: security_set.then_some(secure),
    })
}
