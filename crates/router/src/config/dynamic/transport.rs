//! Servers transports: how betaroute connects to a service's servers. Traefik's
//! `http.serversTransports.NAME` (referenced by `loadBalancer.serversTransport`) and the static
//! `serversTransport` (the default one, `default@internal`) are read by the same function:
//! TLS to `https://` servers (`serverName`, `rootCAs` or the system's roots,
//! `insecureSkipVerify`, a client certificate), the forwarding timeouts and the idle pool size.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use super::tls::{certificate_list, pair, pair_named, Certificate};
use crate::config::read::{Cx, Obj};
use crate::config::source::{Node, Value};

/// The name of the static configuration's transport, as Traefik names it.
pub const DEFAULT_TRANSPORT: &str = "default@internal";

/// A servers transport, validated (certificates loaded).
#[derive(Debug, Default, Clone)]
pub struct TransportSpec {
    /// Qualified (`mtls@file`, `default@internal`).
    pub name: String,
    /// The name to verify `https://` servers' certificates for (and send as SNI); none: the
    /// server URL's host.
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    /// CAs to verify servers with; empty: the system's roots.
    pub root_cas: Vec<CertificateDer<'static>>,
    /// The client certificate offered to servers that ask (mTLS to backends).
    pub client_certificate: Option<Arc<Certificate>>,
    /// Idle keep-alive connections kept per server and worker thread.
    pub max_idle_per_host: Option<usize>,
    pub dial_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub idle_conn_timeout: Option<Duration>,
    /// HTTP/1.1 only to https servers (else HTTP/2 when the server offers it by ALPN).
    pub disable_http2: bool,
}

impl PartialEq for TransportSpec {
    /// The same settings and the same client certificate (by its DER): a reload that changes
    /// nothing keeps the servers, and their health, as they are.
    fn eq(&self, o: &Self) -> bool {
        let cert = |c: &Option<Arc<Certificate>>| c.as_ref().map(|c| c.key.cert.clone());
        self.name == o.name
            && self.server_name == o.server_name
            && self.insecure_skip_verify == o.insecure_skip_verify
            && self.root_cas == o.root_cas
            && cert(&self.client_certificate) == cert(&o.client_certificate)
            && self.max_idle_per_host == o.max_idle_per_host
            && self.dial_timeout == o.dial_timeout
            && self.response_header_timeout == o.response_header_timeout
            && self.idle_conn_timeout == o.idle_conn_timeout
            && self.disable_http2 == o.disable_http2
    }
}

impl Eq for TransportSpec {}

/// What one file's `http.serversTransports.NAME` defines.
#[derive(Debug, Clone)]
pub struct TransportDraft {
    pub name: String,
    pub at: usize,
    /// `None`: invalid (reported) or refused.
    pub spec: Option<Arc<TransportSpec>>,
    /// Why it is refused (what of it betaroute does not implement).
    pub refused: Option<String>,
}

/// `http.serversTransports.NAME` of a file.
pub fn read_named(cx: &mut Cx, name: &str, at: usize, node: &Node) -> TransportDraft {
    let mut draft = TransportDraft {
        name: name.to_owned(),
        at,
        spec: None,
        refused: None,
    };
    let Some(o) = Obj::of(cx, node, format!("serversTransport {name}")) else {
        return draft;
    };
    let (spec, refused) = read(cx, o, true);
    draft.refused = refused;
    if draft.refused.is_none() {
        draft.spec = spec.map(Arc::new);
    }
    draft
}

/// A transport's settings; `dynamic`: the keys only `http.serversTransports` has are read
/// (`serverName`, `certificates`, `disableHTTP2`, `peerCertURI`). Returns the settings, and
/// why they are refused if they are.
pub fn read(cx: &mut Cx, mut o: Obj, dynamic: bool) -> (Option<TransportSpec>, Option<String>) {
    let what = o.what().to_owned();
    let mut out = TransportSpec::default();
    let mut ok = true;
    let mut refused = None;
    if let Some(mut ft) = o.obj(cx, "forwardingTimeouts") {
        for (key, slot) in [
            ("dialTimeout", &mut out.dial_timeout),
            ("responseHeaderTimeout", &mut out.response_header_timeout),
            ("idleConnTimeout", &mut out.idle_conn_timeout),
        ] {
            // Zero is Traefik's "no timeout": betaroute keeps its default instead.
            *slot = ft.duration(cx, key).filter(|d| !d.is_zero());
        }
        for key in ["readIdleTimeout", "pingTimeout"] {
            ft.ignore(
                cx,
                key,
                "HTTP/2 pings to backends are not sent (h2c backends' connections are made again when they close)",
            );
        }
        ft.finish(
            cx,
            &[
                "dialTimeout",
                "responseHeaderTimeout",
                "idleConnTimeout",
                "readIdleTimeout",
                "pingTimeout",
            ],
        );
    }
    out.insecure_skip_verify = o.boolean(cx, "insecureSkipVerify").unwrap_or(false);
    if out.insecure_skip_verify {
        cx.warn(
            o.at_key("insecureSkipVerify"),
            format!("{what}: insecureSkipVerify: https servers' certificates are not verified (anyone on the path can impersonate them)"),
        );
    }
    if let Some(node) = o.get(cx, "rootCAs") {
        out.root_cas = certificate_list(cx, node, &format!("{what}: rootCAs"), &mut ok);
    }
    if let Some(n) = o.number::<i64>(cx, "maxIdleConnsPerHost") {
        // Traefik's default is 200; 0 is Go's own default (2), and a negative value keeps none.
        out.max_idle_per_host = Some(match n {
            0 => 2,
            n if n < 0 => 0,
            n => n as usize,
        });
    }
    let mut known = vec![
        "forwardingTimeouts",
        "insecureSkipVerify",
        "rootCAs",
        "maxIdleConnsPerHost",
        "spiffe",
    ];
    if dynamic {
        known.extend(["serverName", "certificates", "disableHTTP2", "peerCertURI"]);
        out.server_name = o.string(cx, "serverName").filter(|s| !s.is_empty());
        if let Some(node) = o.get(cx, "certificates") {
            let items: &[Node] = match &node.value {
                Value::List(items) => items,
                _ => std::slice::from_ref(node),
            };
            for (i, item) in items.iter().enumerate() {
                let w = format!("{what}: certificates[{i}]");
                let Some(mut c) = Obj::of(cx, item, w.clone()) else {
                    ok = false;
                    continue;
                };
                match pair(cx, &mut c, &w) {
                    Some(cert) if out.client_certificate.is_none() => {
                        out.client_certificate = Some(cert)
                    }
                    Some(_) => cx.warn(
                        item.at,
                        format!("{w}: only the first client certificate is offered to servers"),
                    ),
                    None => ok = false,
                }
                c.finish(cx, &["certFile", "keyFile"]);
            }
        }
        out.disable_http2 = o.boolean(cx, "disableHTTP2").unwrap_or(false);
        if let Some(e) = o.refuse(
            cx,
            "peerCertURI",
            "(a SPIFFE-style URI SAN check of the server's certificate) is not supported yet",
        ) {
            refused = Some(e.message);
        }
    }
    if let Some(e) = o.refuse(cx, "spiffe", "is not supported") {
        refused = Some(e.message);
    }
    o.finish(cx, &known);
    (ok.then_some(out), refused)
}

/// A `tls` block of Traefik's `ClientTLS` shape (`forwardAuth`'s): `ca`, `cert` and `key` (files
/// or PEM), `insecureSkipVerify`; `caOptional` is deprecated and does nothing, as in Traefik.
pub fn client_tls(cx: &mut Cx, mut o: Obj) -> Option<TransportSpec> {
    let what = o.what().to_owned();
    let mut ok = true;
    let mut out = TransportSpec::default();
    if let Some(node) = o.get(cx, "ca") {
        out.root_cas = certificate_list(cx, node, &format!("{what}: ca"), &mut ok);
    }
    if o.entry("cert").is_some() || o.entry("key").is_some() {
        out.client_certificate = pair_named(cx, &mut o, &what, ("cert", "key"));
        ok &= out.client_certificate.is_some();
    }
    out.insecure_skip_verify = o.boolean(cx, "insecureSkipVerify").unwrap_or(false);
    if out.insecure_skip_verify {
        cx.warn(
            o.at_key("insecureSkipVerify"),
            format!("{what}: insecureSkipVerify: the server's certificate is not verified"),
        );
    }
    o.ignore(
        cx,
        "caOptional",
        "it is deprecated and does nothing, as in Traefik",
    );
    o.finish(
        cx,
        &["ca", "cert", "key", "insecureSkipVerify", "caOptional"],
    );
    ok.then_some(out)
}
