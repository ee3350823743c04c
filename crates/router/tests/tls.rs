//! TLS termination through the real router binary, with certificates the tests make (rcgen)
//! and real clients: `openssl s_client` for what a handshake settles (certificate, version,
//! refusal) and curl for requests (SNI, ALPN h2, client certificates, redirects). TLS and plain
//! HTTP share the `web` entry point's port, as in Traefik.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;

/// The CA of a test (`ca.pem`), and its certificates.
struct Pki(TestCa);

impl Pki {
    fn new(dir: &Path) -> Pki {
        Pki(TestCa::new(dir, "ca"))
    }

    /// `FILE.pem` and `FILE.key`: a certificate for `names`, common name `cn`.
    fn leaf(&self, file: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let l = self.0.leaf(file, cn, names);
        (l.cert_file, l.key_file)
    }

    fn ca_file(&self) -> String {
        self.0.file.display().to_string()
    }
}

/// What `openssl s_client` got: the server certificate's subject line, the protocol, or why
/// the handshake failed.
#[derive(Debug)]
struct Handshake {
    ok: bool,
    subject: String,
    protocol: String,
    out: String,
}

fn s_client(addr: SocketAddr, sni: Option<&str>, extra: &[&str]) -> Handshake {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()]);
    match sni {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|s| s.trim().to_owned()))
            .unwrap_or_default()
    };
    Handshake {
        ok: out.status.success()
            && text.contains("Cipher is")
            && !text.contains("Cipher is (NONE)"),
        subject: field("subject="),
        // `New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384`
        protocol: field("New, ")
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned(),
        out: text,
    }
}

/// The common name of the certificate served for this SNI.
fn served_cn(addr: SocketAddr, sni: Option<&str>) -> String {
    let h = s_client(addr, sni, &[]);
    assert!(h.ok, "handshake for {sni:?}: {}", h.out);
    h.subject
}

fn dynamic(tls: &str, backend: &str) -> String {
    format!(
        r#"
http:
  routers:
    secure:
      rule: "Host(`a.example.com`) || Host(`b.example.com`) || Host(`x.wild.example.com`)"
      service: app
      tls: {{}}
    plain:
      rule: "Host(`a.example.com`)"
      service: app
  services:
    app:
      loadBalancer:
        servers:
          - url: "{backend}"
{tls}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_exact_then_wildcard_then_the_default_certificate() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let (a, ak) = pki.leaf("a", "a.example.com", &["a.example.com"]);
    let (w, wk) = pki.leaf("wild", "wild", &["*.wild.example.com", "*.example.com"]);
    let (d, dk) = pki.leaf("dflt", "my default", &["default.test"]);
    let (ip, ipk) = pki.leaf("ip", "by address", &["127.0.0.1"]);
    let tls = format!(
        r#"
tls:
  certificates:
    - certFile: {a}
      keyFile: {ak}
    - certFile: {w}
      keyFile: {wk}
    - certFile: {ip}
      keyFile: {ipk}
  stores:
    default:
      defaultCertificate:
        certFile: {d}
        keyFile: {dk}
"#,
        a = a.display(),
        ak = ak.display(),
        w = w.display(),
        wk = wk.display(),
        d = d.display(),
        dk = dk.display(),
        ip = ip.display(),
        ipk = ipk.display(),
    );
    let r = Router::start(&dynamic(&tls, &backend.url()));
    assert_eq!(
        served_cn(r.web, Some("a.example.com")),
        "CN = a.example.com"
    );
    assert_eq!(
        served_cn(r.web, Some("A.Example.COM")),
        "CN = a.example.com"
    );
    // `*.example.com` covers one label, not two.
    assert_eq!(served_cn(r.web, Some("b.example.com")), "CN = wild");
    assert_eq!(served_cn(r.web, Some("x.wild.example.com")), "CN = wild");
    assert_eq!(served_cn(r.web, Some("y.x.example.com")), "CN = my default");
    assert_eq!(served_cn(r.web, Some("nothing.test")), "CN = my default");
    // No SNI: the certificate for the address the client connected to, as Traefik.
    assert_eq!(served_cn(r.web, None), "CN = by address");

    // A request over TLS verifies against the CA for its name, and goes to the TLS router.
    let port = r.web.port();
    let (status, _, body) = curl(&[
        "--cacert",
        &pki.ca_file(),
        "--resolve",
        &format!("b.example.com:{port}:127.0.0.1"),
        &format!("https://b.example.com:{port}/over-tls"),
    ]);
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https", "{seen}");
    // Plain HTTP on the same port still answers, by the plain router only.
    let (status, _) = get(r.web, "a.example.com", "/", &[]).await;
    assert_eq!(status, 200);
    let (status, _) = get(r.web, "b.example.com", "/", &[]).await;
    assert_eq!(status, 404, "b.example.com has only a TLS router");
    // Each configured certificate's expiry, as Traefik's tls_certs_not_after.
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains(
            "betaroute_tls_certs_not_after{cn=\"a.example.com\",sans=\"a.example.com\",serial=\""
        ),
        "{m}"
    );
    assert!(
        m.contains("cn=\"my default\""),
        "the default certificate too: {m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_certificates_the_generated_default_is_served() {
    let backend = Backend::start("app").await;
    let r = Router::start(&dynamic("", &backend.url()));
    assert_eq!(
        served_cn(r.web, Some("a.example.com")),
        "CN = TRAEFIK DEFAULT CERT"
    );
    let (status, _, _) = curl(&[
        "-k",
        "--resolve",
        &format!("a.example.com:{}:127.0.0.1", r.web.port()),
        &format!("https://a.example.com:{}/", r.web.port()),
    ]);
    assert_eq!(status, 200);
}

/// A file with two hosts under different TLS options, and the PKI for them.
fn options_config(pki: &Pki, backend: &str, options: &str, b_tls: &str) -> String {
    let (a, ak) = pki.leaf("a", "a.example.com", &["a.example.com"]);
    let (b, bk) = pki.leaf("b", "b.example.com", &["b.example.com"]);
    format!(
        r#"
http:
  routers:
    a:
      rule: "Host(`a.example.com`)"
      service: app
      tls: {{}}
      middlewares: [cert]
    b:
      rule: "Host(`b.example.com`)"
      service: app
      middlewares: [cert]
      tls:
{b_tls}
  middlewares:
    cert:
      passTLSClientCert:
        info:
          subject:
            commonName: true
  services:
    app:
      loadBalancer:
        servers:
          - url: "{backend}"
tls:
  certificates:
    - certFile: {a}
      keyFile: {ak}
    - certFile: {b}
      keyFile: {bk}
  options:
{options}
"#,
        a = a.display(),
        ak = ak.display(),
        b = b.display(),
        bk = bk.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_strict_and_version_limits_follow_the_options_of_the_host() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let options = r#"
    modern:
      minVersion: VersionTLS13
      sniStrict: true
    old:
      maxVersion: VersionTLS12
      cipherSuites:
        - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
"#;
    let r = Router::start(&options_config(
        &pki,
        &backend.url(),
        options,
        "        options: modern",
    ));
    // a.example.com: the default options, TLS 1.2 and 1.3.
    let h = s_client(r.web, Some("a.example.com"), &["-tls1_2"]);
    assert!(h.ok && h.protocol == "TLSv1.2", "{}", h.out);
    let h = s_client(r.web, Some("a.example.com"), &["-tls1_3"]);
    assert!(h.ok && h.protocol == "TLSv1.3", "{}", h.out);
    // b.example.com: modern (TLS 1.3 only).
    let h = s_client(r.web, Some("b.example.com"), &["-tls1_2"]);
    assert!(!h.ok, "TLS 1.2 to a TLS 1.3-only host: {}", h.out);
    let h = s_client(r.web, Some("b.example.com"), &["-tls1_3"]);
    assert!(h.ok, "{}", h.out);
    // The SNI picks the options: modern's sniStrict does not apply to a.example.com's, and the
    // default options serve an unknown name with the default certificate.
    assert!(s_client(r.web, Some("unknown.test"), &[]).ok);

    // 421 when the Host's router has other options than the SNI's handshake (default).
    let port = r.web.port();
    let (status, _, _) = curl(&[
        "--cacert",
        &pki.ca_file(),
        "--resolve",
        &format!("a.example.com:{port}:127.0.0.1"),
        "-H",
        "Host: b.example.com",
        &format!("https://a.example.com:{port}/"),
    ]);
    assert_eq!(status, 421);

    // Options for b: sniStrict on b's own options. Switch b to `old` by reload: TLS 1.3 is
    // refused, and only the configured TLS 1.2 suite is offered.
    r.write_dynamic(&options_config(
        &pki,
        &backend.url(),
        options,
        "        options: old",
    ));
    r.wait_admin("/api/http/routers", 10, |b| b.contains("old@file"))
        .await;
    let h = s_client(r.web, Some("b.example.com"), &["-tls1_3"]);
    assert!(!h.ok, "{}", h.out);
    let h = s_client(
        r.web,
        Some("b.example.com"),
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    assert!(!h.ok, "an unlisted suite: {}", h.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_strict_refuses_names_without_a_certificate() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let options = r#"
    default:
      sniStrict: true
"#;
    let r = Router::start(&options_config(
        &pki,
        &backend.url(),
        options,
        "        options: default",
    ));
    assert!(s_client(r.web, Some("a.example.com"), &[]).ok);
    let h = s_client(r.web, Some("unknown.test"), &[]);
    assert!(!h.ok, "{}", h.out);
    let h = s_client(r.web, None, &[]);
    assert!(!h.ok, "no SNI, no certificate for the address: {}", h.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_verified_and_passed_on() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let (client, client_key) = pki.leaf("client", "tester", &["client.test"]);
    // A certificate from another CA.
    let other = Pki::new(&temp_dir());
    let (rogue, rogue_key) = other.leaf("rogue", "rogue", &["client.test"]);
    let options = format!(
        r#"
    mtls:
      clientAuth:
        caFiles: [{ca}]
        clientAuthType: RequireAndVerifyClientCert
    optional:
      clientAuth:
        caFiles: [{ca}]
        clientAuthType: VerifyClientCertIfGiven
    any:
      clientAuth:
        clientAuthType: RequireAnyClientCert
"#,
        ca = pki.ca_file()
    );
    let r = Router::start(&options_config(
        &pki,
        &backend.url(),
        &options,
        "        options: mtls",
    ));
    let req = |r: &Router, cert: Option<(&Path, &Path)>| {
        let port = r.web.port();
        let mut args = vec![
            "-sS".to_owned(),
            "-o".to_owned(),
            "-".to_owned(),
            "-w".to_owned(),
            "\n%{http_code}".to_owned(),
            "--cacert".to_owned(),
            pki.ca_file(),
            "--resolve".to_owned(),
            format!("b.example.com:{port}:127.0.0.1"),
        ];
        if let Some((c, k)) = cert {
            args.extend(["--cert".to_owned(), c.display().to_string()]);
            args.extend(["--key".to_owned(), k.display().to_string()]);
        }
        args.push(format!("https://b.example.com:{port}/"));
        let out = Command::new("curl").args(&args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, _) = req(&r, None);
    assert!(!ok, "no client certificate");
    let (ok, _) = req(&r, Some((&rogue, &rogue_key)));
    assert!(!ok, "a certificate from another CA");
    let (ok, out) = req(&r, Some((&client, &client_key)));
    assert!(ok && out.ends_with("200"), "{out}");
    // passTLSClientCert gave the backend the verified certificate's subject.
    assert!(out.contains("CN%3Dtester"), "{out}");

    for (name, none, rogue_ok) in [("optional", true, false), ("any", false, true)] {
        r.write_dynamic(&options_config(
            &pki,
            &backend.url(),
            &options,
            &format!("        options: {name}"),
        ));
        r.wait_admin("/api/http/routers", 10, |b| {
            b.contains(&format!("{name}@file"))
        })
        .await;
        assert_eq!(req(&r, None).0, none, "{name}: no certificate");
        assert_eq!(
            req(&r, Some((&rogue, &rogue_key))).0,
            rogue_ok,
            "{name}: rogue"
        );
        assert!(req(&r, Some((&client, &client_key))).0, "{name}: client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_over_tls_and_an_entry_point_redirect_to_it() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let (c, k) = pki.leaf("api", "api.example.com", &["api.example.com"]);
    // Traefik's most common shape: web redirects to websecure, whose routers are all TLS.
    let st = STATIC.replace(
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"",
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.http.redirections.entryPoint]\nto = \"websecure\"\n[entryPoints.websecure]\naddress = \"127.0.0.1:0\"\n[entryPoints.websecure.http.tls]\n[entryPoints.websecure.http]\nmiddlewares = [\"hsts@file\"]",
    );
    assert_ne!(st, STATIC);
    let dynamic = format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`)"
      service: app
  middlewares:
    hsts:
      headers:
        stsSeconds: 31536000
  services:
    app:
      loadBalancer:
        servers:
          - url: "{}"
tls:
  certificates:
    - certFile: {}
      keyFile: {}
"#,
        backend.url(),
        c.display(),
        k.display()
    );
    let r = Router::start_with(&st, &dynamic);
    let secure = r.entry_points["websecure"];
    // Plain HTTP on web: redirected, permanently, to websecure's port.
    let (status, headers, _) = curl(&[
        "-H",
        "Host: api.example.com",
        &format!("http://{}/path?q=1", r.web),
    ]);
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone());
    assert_eq!(status, 301);
    assert_eq!(
        location.as_deref(),
        Some(format!("https://api.example.com:{}/path?q=1", secure.port()).as_str())
    );
    // Following it: HTTP/2 by ALPN, the router (on websecure, made TLS by the entry point)
    // and the entry point's middleware.
    let port = secure.port();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-L",
            "--http2",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--cacert",
            &pki.ca_file(),
            "--resolve",
            &format!("api.example.com:{port}:127.0.0.1"),
            "--resolve",
            &format!("api.example.com:{}:127.0.0.1", r.web.port()),
            &format!("http://api.example.com:{}/path", r.web.port()),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with('2'), "HTTP/2 over TLS: {text}");
    assert!(
        text.contains("strict-transport-security: max-age=31536000"),
        "{text}"
    );
    // The same router on plain websecure is not there: the entry point's routers are TLS.
    let (status, _) = get(secure, "api.example.com", "/", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_protocols_limit_what_is_offered() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let options = r#"
    default:
      alpnProtocols: [http/1.1]
"#;
    let r = Router::start(&options_config(
        &pki,
        &backend.url(),
        options,
        "        options: default",
    ));
    let port = r.web.port();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--cacert",
            &pki.ca_file(),
            "--resolve",
            &format!("a.example.com:{port}:127.0.0.1"),
            &format!("https://a.example.com:{port}/"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.1 200");
}

/// The certificate a rustls client is served, without verifying it (the test compares it).
async fn served_der(addr: SocketAddr, sni: &str) -> Result<Vec<u8>, String> {
    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    Ok(session.peer_certificates().unwrap()[0].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_handshake_and_a_broken_one_is_refused() {
    let backend = Backend::start("app").await;
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let config = |file: &str| {
        let (c, k) = pki.leaf(file, file, &["a.example.com"]);
        dynamic(
            &format!(
                "tls:\n  certificates:\n    - certFile: {}\n      keyFile: {}\n",
                c.display(),
                k.display()
            ),
            &backend.url(),
        )
    };
    let r = Router::start(&config("first"));
    let first = served_der(r.web, "a.example.com").await.unwrap();
    let addr = r.web;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Four clients handshaking back to back while the certificate changes three times.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut seen) = (0u32, std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match served_der(addr, "a.example.com").await {
                    Ok(der) => {
                        ok += 1;
                        seen.insert(der);
                    }
                    Err(e) => return Err(format!("handshake {} failed: {e}", ok + 1)),
                }
            }
            Ok((ok, seen))
        }));
    }
    let mut served = vec![first.clone()];
    for next in ["second", "third", "fourth"] {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        r.write_dynamic(&config(next));
        let mut now = served.last().unwrap().clone();
        for _ in 0..100 {
            now = served_der(r.web, "a.example.com").await.unwrap();
            if !served.contains(&now) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            !served.contains(&now),
            "{next} never served: {}",
            r.stderr()
        );
        served.push(now);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, seen) = c.await.unwrap().unwrap();
        total += ok;
        assert!(seen.iter().all(|d| served.contains(d)));
    }
    assert!(total > 40, "only {total} handshakes");
    // A broken certificate file: the reload fails and the last good certificate stays.
    std::fs::write(
        dir.join("fifth.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    std::fs::write(dir.join("fifth.key"), "").unwrap();
    r.write_dynamic(&dynamic(
        &format!(
            "tls:\n  certificates:\n    - certFile: {}\n      keyFile: {}\n",
            dir.join("fifth.pem").display(),
            dir.join("fifth.key").display()
        ),
        &backend.url(),
    ));
    for _ in 0..100 {
        if r.stderr().contains("\"result\":\"failure\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let err = r.stderr();
    assert!(err.contains("certificates[0]: certFile"), "{err}");
    assert_eq!(
        &served_der(r.web, "a.example.com").await.unwrap(),
        served.last().unwrap()
    );
}

#[test]
fn bad_tls_configuration_is_an_error_at_its_line() {
    let dir = temp_dir();
    let pki = Pki::new(&dir);
    let (c, _) = pki.leaf("one", "one", &["one.test"]);
    let (_, other_key) = pki.leaf("two", "two", &["two.test"]);
    let file = dir.join("dynamic.yaml");
    let check = |yaml: &str| {
        std::fs::write(&file, yaml).unwrap();
        betaroute(&["check", "--dynamic", file.to_str().unwrap()])
    };
    let (code, _, err) = check(&format!(
        "tls:\n  certificates:\n    - certFile: {}\n      keyFile: {}\n",
        c.display(),
        other_key.display()
    ));
    assert_ne!(code, 0);
    assert!(
        err.contains("dynamic.yaml:4")
            && err.contains("the key does not belong to the certificate"),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "tls:\n  certificates:\n    - certFile: /nonexistent/cert.pem\n      keyFile: {}\n",
        other_key.display()
    ));
    assert_ne!(code, 0);
    assert!(
        err.contains("\"/nonexistent/cert.pem\" is no readable file"),
        "{err}"
    );
    let (code, _, err) = check(
        "tls:\n  options:\n    o:\n      cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_NOT_A_SUITE]\n      minVersion: VersionTLS9\n",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("dynamic.yaml:4") && err.contains("\"TLS_NOT_A_SUITE\" is not a cipher suite"),
        "{err}"
    );
    assert!(
        err.contains("dynamic.yaml:5") && err.contains("minVersion \"VersionTLS9\""),
        "{err}"
    );
    // Refused by name, not an error: what rustls does not offer, and ACME.
    let (code, out, err) = check(
        "http:\n  routers:\n    r:\n      rule: Host(`x`)\n      service: noop@internal\n      tls:\n        certResolver: le\ntls:\n  options:\n    o:\n      cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n      minVersion: VersionTLS10\n",
    );
    let all = format!("{out}{err}");
    assert!(
        all.contains("certResolver (ACME) cannot work offline"),
        "{code} {all}"
    );
    assert!(
        all.contains("cipher suite TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not offered"),
        "{all}"
    );
    assert!(all.contains("TLS 1.0 and 1.1 are not offered"), "{all}");
}
