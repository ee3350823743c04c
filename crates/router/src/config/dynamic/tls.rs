//! `tls`: Traefik's certificates, stores and options (`pkg/tls`), read with located errors.
//!
//! Certificates are loaded and checked here (PEM parsed, the key matched to its certificate),
//! not when the first client connects: a broken or missing file fails the load, so a reload
//! keeps the last good certificates, where Traefik logs the error and drops the certificate.
//! Options are validated into what rustls can do; what it cannot (TLS 1.0 and 1.1, CBC suites,
//! P-521) is refused by name.

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::read::{self, Cx, Obj};
use crate::config::source::{Node, Value};

/// The TLS options every TLS router uses unless it names others.
pub const DEFAULT_OPTIONS: &str = "default";

/// A certificate with its key, ready to serve.
#[derive(Debug)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    /// What it answers for, lower case: its common name, DNS names and IP addresses, as
    /// Traefik collects them (`*.example.com` covers one label).
    pub names: Vec<String>,
    /// Where it is configured (`dynamic.yaml:12`), for logs and the API.
    pub origin: String,
    /// Its leaf's common name, serial number (decimal) and expiry (Unix seconds), for the
    /// `betaroute_tls_certs_not_after` gauge (Traefik's `tls_certs_not_after`).
    pub common_name: String,
    pub serial: String,
    pub not_after: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Tls12,
    Tls13,
}

/// Go's `tls.ClientAuthType`, by Traefik's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthType {
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Verified when given.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// Key exchange groups rustls (on ring) offers, by Go's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

/// TLS 1.2 cipher suites rustls offers, by Go's names; TLS 1.3's are not configurable (as in Go).
pub const TLS12_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

const TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Go names rustls does not implement (CBC, RC4, 3DES, RSA key exchange): refused by name.
const GO_ONLY_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_FALLBACK_SCSV",
];

/// `tls.options.NAME`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    pub min_version: Version,
    pub max_version: Version,
    /// TLS 1.2 suites in the configured order (Go names from [`TLS12_SUITES`]); `None`: all.
    pub cipher_suites: Option<Vec<&'static str>>,
    /// `None`: rustls's default order (X25519, P-256, P-384).
    pub curves: Option<Vec<Curve>>,
    pub sni_strict: bool,
    /// ALPN protocols offered, in order (Traefik's default: h2, http/1.1).
    pub alpn: Vec<String>,
    pub client_auth: ClientAuthType,
    /// The CAs client certificates are verified against (`clientAuth.caFiles`).
    pub client_cas: Vec<CertificateDer<'static>>,
    pub disable_session_tickets: bool,
}

impl Default for TlsOptions {
    /// Traefik's `DefaultTLSOptions`: TLS 1.2 at least, h2 then http/1.1.
    fn default() -> Self {
        TlsOptions {
            min_version: Version::Tls12,
            max_version: Version::Tls13,
            cipher_suites: None,
            curves: None,
            sni_strict: false,
            alpn: vec!["h2".into(), "http/1.1".into()],
            client_auth: ClientAuthType::NoClientCert,
            client_cas: Vec::new(),
            disable_session_tickets: false,
        }
    }
}

/// What one file's `tls` section defines.
#[derive(Debug, Clone, Default)]
pub struct TlsPart {
    /// Certificates of the default store.
    pub certificates: Vec<Arc<Certificate>>,
    /// `tls.stores.default.defaultCertificate`, and where.
    pub default_certificate: Option<(Arc<Certificate>, usize)>,
    /// `tls.options`, by name, with where each is written.
    pub options: Vec<(String, usize, Arc<TlsOptions>)>,
}

pub fn read(cx: &mut Cx, mut tls: Obj) -> TlsPart {
    let mut part = TlsPart::default();
    if let Some(node) = tls.get(cx, "certificates") {
        certificates(cx, node, &mut part);
    }
    if let Some(mut stores) = tls.obj(cx, "stores") {
        for e in stores.named() {
            let Some(mut store) = Obj::of(cx, &e.value, format!("tls store {}", e.key)) else {
                continue;
            };
            if e.key != "default" {
                cx.warn(
                    e.at,
                    format!("tls store {}: only the default store is used by routers (as in Traefik): its settings change nothing", e.key),
                );
            }
            if let Some(mut d) = store.obj(cx, "defaultCertificate") {
                let what = format!("tls store {}: defaultCertificate", e.key);
                let at = d.at;
                if let Some(c) = pair(cx, &mut d, &what) {
                    if e.key == "default" {
                        part.default_certificate = Some((c, at));
                    }
                }
                d.finish(cx, &["certFile", "keyFile"]);
            }
            store.refuse(
                cx,
                "defaultGeneratedCert",
                "needs a certificate resolver (ACME), which cannot work offline; set defaultCertificate instead",
            );
            store.finish(cx, &["defaultCertificate", "defaultGeneratedCert"]);
        }
    }
    if let Some(mut options) = tls.obj(cx, "options") {
        for e in options.named() {
            if let Some(o) = Obj::of(cx, &e.value, format!("tls options {}", e.key)) {
                if let Some(opts) = tls_options(cx, o) {
                    part.options.push((e.key.clone(), e.at, Arc::new(opts)));
                }
            }
        }
    }
    tls.finish(cx, &["certificates", "stores", "options"]);
    part
}

fn certificates(cx: &mut Cx, node: &Node, part: &mut TlsPart) {
    let items: &[Node] = match &node.value {
        Value::List(items) => items,
        Value::Null => &[],
        _ => {
            cx.error(
                node.at,
                format!("tls: certificates: expected a list, found {}", node.kind()),
            );
            return;
        }
    };
    for (i, item) in items.iter().enumerate() {
        let what = format!("tls: certificates[{i}]");
        let Some(mut o) = Obj::of(cx, item, what.clone()) else {
            continue;
        };
        let cert = pair(cx, &mut o, &what);
        let stores = o.strings(cx, "stores");
        o.finish(cx, &["certFile", "keyFile", "stores"]);
        let Some(cert) = cert else { continue };
        match stores {
            Some(s) if !s.is_empty() && !s.iter().any(|(n, _)| n == "default") => {
                let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
                cx.warn(
                    item.at,
                    format!("{what}: only in stores {names:?}, which no router uses (routers use the default store, as in Traefik): it is never served"),
                );
            }
            _ => part.certificates.push(cert),
        }
    }
}

/// `certFile` and `keyFile`, each a path or the PEM itself (Traefik's `FileOrContent`), loaded
/// into a certificate whose key is checked against it.
pub(super) fn pair(cx: &mut Cx, o: &mut Obj, what: &str) -> Option<Arc<Certificate>> {
    pair_named(cx, o, what, ("certFile", "keyFile"))
}

/// [`pair`] with other key names (a `forwardAuth` `tls` block says `cert` and `key`).
pub(super) fn pair_named(
    cx: &mut Cx,
    o: &mut Obj,
    what: &str,
    (cert_key, key_key): (&str, &str),
) -> Option<Arc<Certificate>> {
    let cert_at = o.at_key(cert_key);
    let key_at = o.at_key(key_key);
    let cert = o.get(cx, cert_key);
    let key = o.get(cx, key_key);
    let (Some(cert), Some(key)) = (cert, key) else {
        cx.error(o.at, format!("{what}: needs both {cert_key} and {key_key}"));
        return None;
    };
    let cert_pem = file_or_content(cx, cert, &format!("{what}: {cert_key}"))?;
    let key_pem = file_or_content(cx, key, &format!("{what}: {key_key}"))?;
    let chain: Vec<CertificateDer<'static>> =
        match CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>() {
            Ok(c) => c,
            Err(e) => {
                cx.error(cert_at, format!("{what}: {cert_key}: bad PEM: {e}"));
                return None;
            }
        };
    if chain.is_empty() {
        cx.error(
            cert_at,
            format!("{what}: {cert_key}: no CERTIFICATE block in its PEM"),
        );
        return None;
    }
    // The key's own text never goes into a message.
    let key_der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(_) => {
            cx.error(
                key_at,
                format!("{what}: {key_key}: no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in its PEM"),
            );
            return None;
        }
    };
    let provider = rustls::crypto::ring::default_provider();
    let key = match CertifiedKey::from_der(chain.clone(), key_der, &provider) {
        Ok(k) => k,
        Err(rustls::Error::InconsistentKeys(_)) => {
            cx.error(
                key_at,
                format!(
                    "{what}: {key_key}: the key does not belong to the certificate in {cert_key}"
                ),
            );
            return None;
        }
        Err(e) => {
            cx.error(
                key_at,
                format!("{what}: {key_key}: cannot use the key: {e}"),
            );
            return None;
        }
    };
    let (names, (common_name, serial, not_after)) = match parse_leaf(&chain[0]) {
        Ok(n) => n,
        Err(e) => {
            cx.error(
                cert_at,
                format!("{what}: {cert_key}: cannot read the certificate: {e}"),
            );
            return None;
        }
    };
    let (line, _) = cx.src.position(o.at);
    Some(Arc::new(Certificate {
        key: Arc::new(key),
        names,
        origin: format!("{}:{line}", cx.src.file),
        common_name,
        serial,
        not_after,
    }))
}

/// What a leaf certificate says, read once: the names it serves, as Traefik's
/// `parseCertificate` collects them (the common name, then DNS names and IP addresses other
/// than it, lower case), and its common name, decimal serial number and `notAfter` (Unix
/// seconds).
type Leaf = (Vec<String>, (String, String, i64));

fn parse_leaf(der: &CertificateDer<'_>) -> Result<Leaf, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut names = Vec::new();
    if !cn.is_empty() {
        names.push(cn.to_ascii_lowercase());
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            let name = match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string(),
                    16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string(),
                    _ => continue,
                },
                _ => continue,
            };
            if name != cn {
                names.push(name.to_ascii_lowercase());
            }
        }
    }
    let identity = (
        cn,
        cert.serial.to_string(),
        cert.validity().not_after.timestamp(),
    );
    Ok((names, identity))
}

/// A list of CA files (or PEM contents), each with at least one certificate: `caFiles`,
/// `rootCAs`. A mistake is reported at its item, and clears `ok`.
pub(super) fn certificate_list(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    ok: &mut bool,
) -> Vec<CertificateDer<'static>> {
    let items: Vec<&Node> = match &node.value {
        Value::List(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("{what}[{i}]");
        let Some(pem) = file_or_content(cx, item, &what) else {
            *ok = false;
            continue;
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            cx.error(item.at, format!("{what}: no CERTIFICATE block in its PEM"));
            *ok = false;
        }
        out.extend(certs);
    }
    out
}

/// A path when such a file exists, else the content itself (Traefik's `FileOrContent`).
pub(super) fn file_or_content(cx: &mut Cx, node: &Node, what: &str) -> Option<Vec<u8>> {
    let s = read::string(cx, node, what)?;
    if Path::new(&s).is_file() {
        return match std::fs::read(&s) {
            Ok(b) => Some(b),
            Err(e) => {
                cx.error(node.at, format!("{what}: cannot read {s}: {e}"));
                None
            }
        };
    }
    if s.contains("-----BEGIN") {
        return Some(s.into_bytes());
    }
    // A short single line is a path that is not there; anything else is not shown, in case it
    // is key material.
    let shown = if s.len() < 256 && !s.contains('\n') {
        format!("{s:?}")
    } else {
        "the value".to_owned()
    };
    cx.error(
        node.at,
        format!("{what}: {shown} is no readable file, nor PEM content"),
    );
    None
}

fn version(cx: &mut Cx, o: &mut Obj, key: &str, name: &str) -> Option<(String, usize)> {
    let at = o.at_key(key);
    let v = o.string(cx, key)?;
    match v.as_str() {
        "VersionTLS10" | "VersionTLS11" | "VersionTLS12" | "VersionTLS13" => Some((v, at)),
        _ => {
            cx.error(
                at,
                format!("tls options {name}: {key} {v:?} is not VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13"),
            );
            None
        }
    }
}

fn tls_options(cx: &mut Cx, mut o: Obj) -> Option<TlsOptions> {
    let name = o
        .what()
        .strip_prefix("tls options ")
        .unwrap_or("")
        .to_owned();
    let mut out = TlsOptions::default();
    let mut ok = true;
    if let Some((v, at)) = version(cx, &mut o, "minVersion", &name) {
        out.min_version = match v.as_str() {
            "VersionTLS13" => Version::Tls13,
            "VersionTLS12" => Version::Tls12,
            _ => {
                cx.refuse(at, format!("tls options {name}: minVersion {v}: TLS 1.0 and 1.1 are not offered (rustls implements TLS 1.2 and 1.3); the minimum is TLS 1.2"));
                Version::Tls12
            }
        };
    }
    if let Some((v, at)) = version(cx, &mut o, "maxVersion", &name) {
        out.max_version = match v.as_str() {
            "VersionTLS13" => Version::Tls13,
            "VersionTLS12" => Version::Tls12,
            _ => {
                cx.error(at, format!("tls options {name}: maxVersion {v} cannot be served: TLS 1.0 and 1.1 are not offered (rustls implements TLS 1.2 and 1.3)"));
                ok = false;
                Version::Tls13
            }
        };
    }
    if out.min_version > out.max_version {
        cx.error(
            o.at_key("minVersion"),
            format!("tls options {name}: minVersion is above maxVersion"),
        );
        ok = false;
    }
    if let Some(list) = o.strings(cx, "cipherSuites") {
        let mut suites = Vec::new();
        for (s, at) in list {
            // Go spells the two CHACHA20 suites with and without their hash.
            let canonical = match s.as_str() {
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
                    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
                }
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
                }
                other => other,
            };
            if let Some(known) = TLS12_SUITES.iter().find(|k| **k == canonical) {
                suites.push(*known);
            } else if TLS13_SUITES.contains(&canonical) {
                // As in Go: TLS 1.3's suites are always all offered.
            } else if GO_ONLY_SUITES.contains(&canonical) {
                cx.refuse(at, format!("tls options {name}: cipher suite {s} is not offered (rustls implements only AEAD suites with forward secrecy); the others listed are"));
            } else {
                cx.error(
                    at,
                    format!("tls options {name}: {s:?} is not a cipher suite"),
                );
                ok = false;
            }
        }
        if suites.is_empty() && out.min_version == Version::Tls12 {
            if out.max_version == Version::Tls12 {
                cx.error(
                    o.at_key("cipherSuites"),
                    format!("tls options {name}: no TLS 1.2 cipher suite listed can be offered, and maxVersion is TLS 1.2"),
                );
                ok = false;
            } else {
                cx.refuse(
                    o.at_key("cipherSuites"),
                    format!("tls options {name}: no TLS 1.2 cipher suite listed can be offered: only TLS 1.3 is"),
                );
                out.min_version = Version::Tls13;
            }
        }
        out.cipher_suites = Some(suites);
    }
    if let Some(list) = o.strings(cx, "curvePreferences") {
        let mut curves = Vec::new();
        for (c, at) in list {
            match c.as_str() {
                "X25519" | "x25519" => curves.push(Curve::X25519),
                "CurveP256" | "secp256r1" => curves.push(Curve::P256),
                "CurveP384" | "secp384r1" => curves.push(Curve::P384),
                "CurveP521" | "secp521r1" | "X25519MLKEM768" => {
                    cx.refuse(at, format!("tls options {name}: curve {c} is not offered (betaroute's TLS on ring has X25519, P-256 and P-384); the others listed are"));
                }
                _ => {
                    cx.error(
                        at,
                        format!("tls options {name}: {c:?} is not a curve (CurveP256, CurveP384, CurveP521, X25519)"),
                    );
                    ok = false;
                }
            }
        }
        if curves.is_empty() {
            cx.error(
                o.at_key("curvePreferences"),
                format!("tls options {name}: no curve listed can be offered"),
            );
            ok = false;
        }
        out.curves = Some(curves);
    }
    out.sni_strict = o.boolean(cx, "sniStrict").unwrap_or(false);
    if let Some(list) = o.strings(cx, "alpnProtocols") {
        // `acme-tls/1` is for ACME's TLS-ALPN challenge, which needs a certificate resolver:
        // offering it would only let a client pick a protocol nothing here speaks.
        out.alpn = list
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p != "acme-tls/1")
            .collect();
    }
    out.disable_session_tickets = o.boolean(cx, "disableSessionTickets").unwrap_or(false);
    o.ignore(
        cx,
        "preferServerCipherSuites",
        "it is deprecated and ineffective, as in Traefik",
    );
    if let Some(mut ca) = o.obj(cx, "clientAuth") {
        if let Some(node) = ca.get(cx, "caFiles") {
            let what = format!("tls options {name}: clientAuth.caFiles");
            out.client_cas = certificate_list(cx, node, &what, &mut ok);
        }
        let at = ca.at_key("clientAuthType");
        let kind = ca.string(cx, "clientAuthType");
        // Traefik: CAs without a type require and verify a client certificate.
        out.client_auth = if out.client_cas.is_empty() {
            ClientAuthType::NoClientCert
        } else {
            ClientAuthType::RequireAndVerifyClientCert
        };
        if let Some(kind) = kind.filter(|k| !k.is_empty()) {
            out.client_auth = match kind.as_str() {
                "NoClientCert" => ClientAuthType::NoClientCert,
                "RequestClientCert" => ClientAuthType::RequestClientCert,
                "RequireAnyClientCert" => ClientAuthType::RequireAnyClientCert,
                "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
                "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
                _ => {
                    cx.error(at, format!("tls options {name}: clientAuthType {kind:?} is not NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"));
                    ok = false;
                    ClientAuthType::NoClientCert
                }
            };
            let verifies = matches!(
                out.client_auth,
                ClientAuthType::VerifyClientCertIfGiven
                    | ClientAuthType::RequireAndVerifyClientCert
            );
            if verifies && out.client_cas.is_empty() {
                cx.error(
                    at,
                    format!("tls options {name}: clientAuthType {kind} needs clientAuth.caFiles"),
                );
                ok = false;
            }
        }
        ca.finish(cx, &["caFiles", "clientAuthType"]);
    }
    o.finish(
        cx,
        &[
            "minVersion",
            "maxVersion",
            "cipherSuites",
            "curvePreferences",
            "clientAuth",
            "sniStrict",
            "alpnProtocols",
            "disableSessionTickets",
            "preferServerCipherSuites",
        ],
    );
    ok.then_some(out)
}
