//! `http.middlewares.NAME`: each is one of Traefik's middleware kinds. None is implemented yet,
//! so the routers that use one are refused (see `validate`).

use super::drafts::MiddlewareDraft;
use crate::config::read::Cx;
use crate::config::source::{Entry, Value};

/// Traefik's middleware kinds (v3.7), all refused until betaroute implements them.
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
        [(kind, _)] => Some(MiddlewareDraft {
            name: name.clone(),
            at: e.at,
            kind: (*kind).to_owned(),
            config: e.value.canonical(),
        }),
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
