//! TLS termination as Traefik does it (`pkg/tls`, `pkg/server/router/tcp`): per entry point, the
//! SNI of a connection picks the TLS options of the routers serving that host (exact host, then
//! wildcard, then the default options); the default store's certificates are chosen by SNI
//! (exact name, then `*.` wildcard), else the default certificate, unless `sniStrict` refuses
//! the handshake. Built with the routing state, off the request path, and swapped with it: a
//! handshake uses the state current when it began, so a reload rotates certificates without
//! failing one.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use serde_json::json;

use crate::config::dynamic::tls::{ClientAuthType, Curve, TlsOptions, Version, DEFAULT_OPTIONS};
use crate::config::dynamic::{RouterSpec, TlsConfig};

/// The default store: certificates by the names they serve, and the default certificate.
#[derive(Debug)]
pub struct Store {
    /// Sorted by Traefik's key (the sorted names joined by commas), last first, as Traefik
    /// walks them.
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl Store {
    pub fn new(tls: &TlsConfig) -> Store {
        let mut keyed: BTreeMap<String, (Vec<String>, Arc<CertifiedKey>)> = BTreeMap::new();
        for c in &tls.certificates {
            let mut names = c.names.clone();
            names.sort();
            // Traefik keeps the first certificate for a set of names.
            keyed
                .entry(names.join(","))
                .or_insert((names, c.key.clone()));
        }
        let default = match &tls.default_certificate {
            Some(c) => c.key.clone(),
            None => generated_default(),
        };
        Store {
            certs: keyed.into_values().rev().collect(),
            default,
        }
    }

    /// The certificate for `name` (an SNI, or the local address when there is none): one that
    /// names it exactly, else one whose `*.` wildcard covers its first label.
    pub fn best(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        let exact = self
            .certs
            .iter()
            .find(|(names, _)| names.iter().any(|n| n.trim_end_matches('.') == name));
        if let Some((_, k)) = exact {
            return Some(k);
        }
        let wild = match name.split_once('.') {
            Some((_, rest)) => format!("*.{rest}"),
            None => "*".to_owned(),
        };
        self.certs
            .iter()
            .find(|(names, _)| names.iter().any(|n| n.trim_end_matches('.') == wild))
            .map(|(_, k)| k)
    }
}

/// Traefik's generated default certificate (`TRAEFIK DEFAULT CERT`, a random
/// `*.traefik.default` name), made once per process so that every reload serves the same one.
fn generated_default() -> Arc<CertifiedKey> {
    static CERT: OnceLock<Arc<CertifiedKey>> = OnceLock::new();
    CERT.get_or_init(|| {
        let random = ring::rand::SystemRandom::new();
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&random, &mut bytes).expect("the system's randomness");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let domain = format!("{}.{}.traefik.default", &hex[..32], &hex[32..]);
        let mut params =
            rcgen::CertificateParams::new(vec![domain]).expect("a valid generated name");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "TRAEFIK DEFAULT CERT");
        // About a year around now, as Traefik's (whose validity no client checks anyway: it is
        // self-signed).
        let year = 1970 + (crate::middleware::unix_now().as_secs() / 31_556_952) as i32;
        params.not_before = rcgen::date_time_ymd(year, 1, 1);
        params.not_after = rcgen::date_time_ymd(year + 1, 12, 31);
        let key = rcgen::KeyPair::generate().expect("a generated P-256 key");
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        let der =
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("a PKCS#8 key");
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(
            CertifiedKey::from_der(vec![cert.der().clone()], der, &provider)
                .expect("the generated key fits its certificate"),
        )
    })
    .clone()
}

/// Picks the certificate for a handshake with some options.
#[derive(Debug)]
struct Resolver {
    store: Arc<Store>,
    sni_strict: bool,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(k) = hello.server_name().and_then(|n| self.store.best(n)) {
            return Some(k.clone());
        }
        if self.sni_strict {
            // No certificate for this name: the handshake fails (an alert), as in Traefik.
            return None;
        }
        Some(self.store.default.clone())
    }
}

/// A certificate fixed for one connection (no SNI, a certificate for the local address).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Some TLS options, ready for handshakes.
#[derive(Debug)]
pub struct Served {
    /// The options' qualified name (`default`, `modern@file`).
    pub name: String,
    /// `None`: the options could not be built (said in the log); handshakes are closed, as
    /// Traefik closes connections to routers with broken TLS options.
    pub config: Option<Arc<ServerConfig>>,
}

impl Served {
    /// The configuration for a connection that sent no SNI: Traefik then matches certificates
    /// against the address the client connected to.
    pub fn for_local(&self, store: &Store, local: IpAddr) -> Option<Arc<ServerConfig>> {
        let config = self.config.as_ref()?;
        match store.best(&local.to_string()) {
            Some(k) => {
                let mut c = (**config).clone();
                c.cert_resolver = Arc::new(Fixed(k.clone()));
                Some(Arc::new(c))
            }
            None => Some(config.clone()),
        }
    }
}

/// One entry point's TLS: the options each SNI host gets.
#[derive(Debug)]
struct EntryPointTls {
    exact: HashMap<String, Arc<Served>>,
    /// `Host(`*.example.com`)` and `**.` hosts, longest first.
    wildcard: Vec<(String, Arc<Served>)>,
    default: Arc<Served>,
}

/// Every entry point's TLS, for the current routing state.
#[derive(Debug)]
pub struct TlsState {
    pub store: Arc<Store>,
    entry_points: HashMap<String, EntryPointTls>,
    default: Arc<Served>,
}

impl TlsState {
    /// The options a handshake on `entry_point` with this SNI uses.
    pub fn pick(&self, entry_point: &str, sni: Option<&str>) -> &Arc<Served> {
        let Some(ep) = self.entry_points.get(entry_point) else {
            return &self.default;
        };
        let Some(sni) = sni else {
            return &ep.default;
        };
        let sni = sni.to_ascii_lowercase();
        if let Some(s) = ep.exact.get(sni.trim_end_matches('.')) {
            return s;
        }
        ep.wildcard
            .iter()
            .find(|(pattern, _)| betaroute_core::rules::host_matches(&sni, pattern))
            .map_or(&ep.default, |(_, s)| s)
    }

    /// Built from the configuration and the routers on each entry point (each router's
    /// effective options there: its own, or the default where they conflict).
    pub fn build(tls: &TlsConfig, routers: &[RouterSpec], entry_points: &[String]) -> TlsState {
        let store = Arc::new(Store::new(tls));
        let served: BTreeMap<String, Arc<Served>> = tls
            .options
            .iter()
            .map(|(name, o)| {
                let config = match server_config(o, &store) {
                    Ok(c) => Some(Arc::new(c)),
                    Err(e) => {
                        eprintln!(
                            "{}",
                            json!({"betaroute": "tls", "level": "error", "options": name, "message": format!("cannot build the TLS options: {e}; their handshakes are closed")})
                        );
                        None
                    }
                };
                (
                    name.clone(),
                    Arc::new(Served {
                        name: name.clone(),
                        config,
                    }),
                )
            })
            .collect();
        let default = served
            .get(DEFAULT_OPTIONS)
            .cloned()
            .expect("the default options are always there");
        let mut eps = HashMap::new();
        for ep in entry_points {
            let mut exact = HashMap::new();
            let mut wildcard = Vec::new();
            for r in routers {
                let Some(options) = effective_options(r, ep) else {
                    continue;
                };
                let Some(s) = served.get(options) else {
                    continue;
                };
                for host in r.rule.host_domains() {
                    if host.contains('*') {
                        wildcard.push((host, s.clone()));
                    } else {
                        exact.insert(host.trim_end_matches('.').to_owned(), s.clone());
                    }
                }
            }
            wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
            eps.insert(
                ep.clone(),
                EntryPointTls {
                    exact,
                    wildcard,
                    default: default.clone(),
                },
            );
        }
        TlsState {
            store,
            entry_points: eps,
            default,
        }
    }
}

/// The TLS options a router uses on an entry point, if it is a TLS router there.
pub fn effective_options<'a>(r: &'a RouterSpec, ep: &str) -> Option<&'a str> {
    let t = r.tls.as_ref()?;
    if let Some(eps) = &r.entry_points {
        if !eps.iter().any(|e| e == ep) {
            return None;
        }
    }
    Some(if t.default_on.iter().any(|e| e == ep) {
        DEFAULT_OPTIONS
    } else {
        t.options.as_str()
    })
}

/// The session ticket keys, one set for the process: tickets survive reloads.
fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    static T: OnceLock<Arc<dyn rustls::server::ProducesTickets>> = OnceLock::new();
    if let Some(t) = T.get() {
        return Ok(t.clone());
    }
    let t = rustls::crypto::ring::Ticketer::new()?;
    Ok(T.get_or_init(|| t).clone())
}

/// rustls's configuration for some TLS options.
fn server_config(o: &TlsOptions, store: &Arc<Store>) -> Result<ServerConfig, rustls::Error> {
    use rustls::crypto::ring::{cipher_suite, kx_group};
    let base = rustls::crypto::ring::default_provider();
    let mut suites = vec![
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    let tls12 = |name: &str| match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            Some(cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Some(cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        _ => None,
    };
    match &o.cipher_suites {
        Some(list) => suites.extend(list.iter().filter_map(|n| tls12(n))),
        None => suites.extend(
            base.cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS12)
                .copied(),
        ),
    }
    let kx = match &o.curves {
        None => base.kx_groups.clone(),
        Some(curves) => curves
            .iter()
            .map(|c| match c {
                Curve::X25519 => kx_group::X25519,
                Curve::P256 => kx_group::SECP256R1,
                Curve::P384 => kx_group::SECP384R1,
            })
            .collect(),
    };
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        kx_groups: kx,
        ..base
    });
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (Version::Tls12, &rustls::version::TLS12),
        (Version::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| *v >= o.min_version && *v <= o.max_version)
    .map(|(_, p)| p)
    .collect();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let verifier = client_verifier(o, &provider)?;
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(Resolver {
            store: store.clone(),
            sni_strict: o.sni_strict,
        }));
    config.alpn_protocols = o.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if o.disable_session_tickets {
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    } else {
        config.ticketer = ticketer()?;
    }
    Ok(config)
}

fn client_verifier(
    o: &TlsOptions,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
    let roots = || {
        let mut r = rustls::RootCertStore::empty();
        r.add_parsable_certificates(o.client_cas.iter().cloned());
        Arc::new(r)
    };
    let webpki = |optional: bool| {
        let b = WebPkiClientVerifier::builder_with_provider(roots(), provider.clone());
        let b = if optional {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build()
            .map_err(|e| rustls::Error::General(format!("clientAuth.caFiles: {e}")))
    };
    Ok(match o.client_auth {
        ClientAuthType::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuthType::VerifyClientCertIfGiven => webpki(true)?,
        ClientAuthType::RequireAndVerifyClientCert => webpki(false)?,
        ClientAuthType::RequestClientCert => Arc::new(AnyClientCert {
            mandatory: false,
            algorithms: provider.signature_verification_algorithms,
        }),
        ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert {
            mandatory: true,
            algorithms: provider.signature_verification_algorithms,
        }),
    })
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken without
/// checking who issued it, but the client must still prove it holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A negotiated version as Traefik's access log writes it.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        _ => "unknown",
    }
}

/// A negotiated cipher suite by Go's name.
pub fn cipher_name(s: Option<rustls::SupportedCipherSuite>) -> &'static str {
    use rustls::CipherSuite as C;
    match s.map(|s| s.suite()) {
        Some(C::TLS13_AES_128_GCM_SHA256) => "TLS_AES_128_GCM_SHA256",
        Some(C::TLS13_AES_256_GCM_SHA384) => "TLS_AES_256_GCM_SHA384",
        Some(C::TLS13_CHACHA20_POLY1305_SHA256) => "TLS_CHACHA20_POLY1305_SHA256",
        Some(C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) => {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        }
        Some(C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384) => {
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        }
        Some(C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256) => {
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        }
        Some(C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256) => {
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        }
        _ => "unknown",
    }
}
