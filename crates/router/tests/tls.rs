//! TLS termination through the real router binary, with certificates the tests make (rcgen)
//! and real clients: `openssl s_client` for what a handshake settles (certificate, version,
//! refusal) and curl for requests (SNI, ALPN h2, client certificates, redirects). TLS and plain
//! HTTP share the `web` entry point's port, as in Traefik.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A CA and the certificates it signs, as PEM files in `dir`.
struct Pki {
    dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "betaroute tls test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir: dir.to_owned(),
            ca,
        }
    }

    /// `NAME.pem` and `NAME.key`: a certificate for `names` (DNS names or IPs), common name
    /// `cn`, signed by the CA.
    fn leaf(&self, file: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        use rcgen::{CertificateParams, DnType, KeyPair, SanType};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        for n in names {
            p.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().unwrap()),
            });
        }
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
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
        protocol: field("Protocol  :").replace("Protocol  : ", ""),
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
