//! `https://` servers and servers transports through the real router binary: a rustls backend
//! with certificates the test makes, reached with a transport's `rootCAs`, `serverName`,
//! `insecureSkipVerify` and client certificate (mTLS to the backend), or the static
//! `serversTransport`; the transport's response header timeout; an https health check.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A TLS backend: answers with the SNI it got and the common name of the client's
/// certificate, if any; requires one verified by `client_ca` when given.
struct TlsBackend {
    addr: SocketAddr,
    handshakes_failed: Arc<AtomicUsize>,
    /// Health check requests (`/health`) answered.
    health_checks: Arc<AtomicUsize>,
}

async fn tls_backend(leaf: Leaf, client_ca: Option<&TestCa>, delay: Duration) -> TlsBackend {
    tls_backend_alpn(leaf, client_ca, delay, false).await
}

/// `h2`: the backend offers HTTP/2 by ALPN too, as most https servers do.
async fn tls_backend_alpn(
    leaf: Leaf,
    client_ca: Option<&TestCa>,
    delay: Duration,
    h2: bool,
) -> TlsBackend {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap(),
            )
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(vec![leaf.der], leaf.key).unwrap();
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let f = failed.clone();
    let checks = Arc::new(AtomicUsize::new(0));
    let checked = checks.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, f, checked) = (acceptor.clone(), f.clone(), checked.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(_) => {
                        f.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                let (_, session) = tls.get_ref();
                let sni = session.server_name().unwrap_or("").to_owned();
                let client = session.peer_certificates().map(|c| c.len()).unwrap_or(0);
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (sni, checked) = (sni.clone(), checked.clone());
                    async move {
                        if req.uri().path() == "/health" {
                            checked.fetch_add(1, Ordering::SeqCst);
                        } else {
                            tokio::time::sleep(delay).await;
                        }
                        let body = serde_json::json!({
                            "version": format!("{:?}", req.version()),
                            "te": req.headers().get("te").and_then(|h| h.to_str().ok()),
                            "sni": sni,
                            "client_certs": client,
                            // HTTP/2's :authority, or HTTP/1.1's Host.
                            "host": req.uri().authority().map(|a| a.as_str().to_owned())
                                .or_else(|| req.headers().get("host").and_then(|h| h.to_str().ok()).map(str::to_owned)),
                            "path": req.uri().path(),
                        });
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
                    }
                });
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                }
            });
        }
    });
    TlsBackend {
        addr,
        handshakes_failed: failed,
        health_checks: checks,
    }
}

fn config(services: &str, transports: &str) -> String {
    format!(
        r#"
http:
  routers:
    verified: {{rule: "Host(`verified`)", service: verified}}
    system: {{rule: "Host(`system`)", service: system}}
    named: {{rule: "Host(`named`)", service: named}}
    unnamed: {{rule: "Host(`unnamed`)", service: unnamed}}
    insecure: {{rule: "Host(`insecure`)", service: insecure}}
    mtls: {{rule: "Host(`mtls`)", service: mtls}}
    nocert: {{rule: "Host(`nocert`)", service: nocert}}
  services:
{services}
  serversTransports:
{transports}
"#
    )
}

fn service(name: &str, url: &str, transport: Option<&str>) -> String {
    let t = transport.map_or(String::new(), |t| format!(", serversTransport: {t}"));
    format!("    {name}: {{loadBalancer: {{servers: [{{url: \"{url}\"}}]{t}}}}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_are_verified_as_their_transport_says() {
    let dir = temp_dir();
    let ca = TestCa::new(&dir, "backend-ca");
    let client_ca = TestCa::new(&dir, "client-ca");
    // A backend whose certificate names 127.0.0.1; one that names only backend.internal; one
    // that wants a client certificate from client-ca.
    let by_ip = tls_backend(
        ca.leaf("by-ip", "by-ip", &["127.0.0.1"]),
        None,
        Duration::ZERO,
    )
    .await;
    let by_name = tls_backend(
        ca.leaf("by-name", "by-name", &["backend.internal"]),
        None,
        Duration::ZERO,
    )
    .await;
    let mtls = tls_backend(
        ca.leaf("mtls-server", "mtls-server", &["127.0.0.1"]),
        Some(&client_ca),
        Duration::ZERO,
    )
    .await;
    let client = client_ca.leaf("router-client", "router-client", &["router.internal"]);
    let u = |b: &TlsBackend| format!("https://{}", b.addr);
    let services = [
        service("verified", &u(&by_ip), Some("ca")),
        service("system", &u(&by_ip), None),
        service("named", &u(&by_name), Some("named")),
        service("unnamed", &u(&by_name), Some("ca")),
        service("insecure", &u(&by_name), Some("insecure")),
        service("mtls", &u(&mtls), Some("client")),
        service("nocert", &u(&mtls), Some("ca")),
    ]
    .concat();
    let ca_file = ca.file.display();
    let transports = format!(
        r#"    ca: {{rootCAs: ["{ca_file}"]}}
    named: {{rootCAs: ["{ca_file}"], serverName: backend.internal}}
    insecure: {{insecureSkipVerify: true}}
    client:
      rootCAs: ["{ca_file}"]
      certificates:
        - certFile: {}
          keyFile: {}
"#,
        client.cert_file.display(),
        client.key_file.display()
    );
    let r = Router::start(&config(&services, &transports));
    let ask = |host: &'static str| {
        let web = r.web;
        async move { get(web, host, "/x", &[]).await }
    };
    let (status, body) = ask("verified").await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["host"], "verified", "passHostHeader");
    assert_eq!(seen["path"], "/x");
    assert_eq!(seen["sni"], "", "no SNI to an IP address");
    assert_eq!(seen["client_certs"], 0);
    // Not in the system's roots: never reached.
    let (status, _) = ask("system").await;
    assert_eq!(status, 502);
    // serverName: verified for (and SNI) backend.internal, though dialled by address.
    let (status, body) = ask("named").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sni\":\"backend.internal\""), "{body}");
    let (status, _) = ask("unnamed").await;
    assert_eq!(status, 502, "the certificate does not name 127.0.0.1");
    let (status, _) = ask("insecure").await;
    assert_eq!(status, 200);
    // mTLS to the backend: with the transport's certificate, and refused without.
    let (status, body) = ask("mtls").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"client_certs\":1"), "{body}");
    let before = mtls.handshakes_failed.load(Ordering::SeqCst);
    let (status, _) = ask("nocert").await;
    assert_eq!(status, 502);
    assert!(mtls.handshakes_failed.load(Ordering::SeqCst) > before);
    // Keep-alive to https servers: many requests, few handshakes.
    for _ in 0..20 {
        assert_eq!(ask("verified").await.0, 200);
    }
    assert_eq!(
        by_ip.handshakes_failed.load(Ordering::SeqCst),
        1,
        "only `system`'s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_transport_is_the_default_and_a_named_one_has_its_own_timeout() {
    let dir = temp_dir();
    let ca = TestCa::new(&dir, "backend-ca");
    let slow = tls_backend(
        ca.leaf("slow", "slow", &["127.0.0.1"]),
        None,
        Duration::from_millis(400),
    )
    .await;
    let st = STATIC.replace(
        "[serversTransport.forwardingTimeouts]",
        &format!(
            "[serversTransport]\nrootCAs = [\"{}\"]\n[serversTransport.forwardingTimeouts]",
            ca.file.display()
        ),
    );
    assert_ne!(st, STATIC);
    let dynamic = format!(
        r#"
http:
  routers:
    patient: {{rule: "Host(`patient`)", service: patient}}
    hasty: {{rule: "Host(`hasty`)", service: hasty}}
  services:
    patient:
      loadBalancer:
        servers: [{{url: "https://{addr}"}}]
        healthCheck: {{path: /health, interval: 200ms, timeout: 1s}}
    hasty: {{loadBalancer: {{servers: [{{url: "https://{addr}"}}], serversTransport: hasty}}}}
  serversTransports:
    hasty:
      rootCAs: ["{ca}"]
      forwardingTimeouts: {{responseHeaderTimeout: 100ms}}
"#,
        addr = slow.addr,
        ca = ca.file.display()
    );
    let r = Router::start_with(&st, &dynamic);
    // The static transport's CA verifies the server; its 1 s allows the 400 ms answer.
    let (status, body) = get(r.web, "patient", "/", &[]).await;
    assert_eq!(status, 200, "{body}");
    // The named transport's 100 ms does not.
    let (status, _) = get(r.web, "hasty", "/", &[]).await;
    assert_eq!(status, 504);
    // The health check speaks TLS to the server too (checked every 200 ms): it stays in.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        slow.health_checks.load(Ordering::SeqCst) >= 2,
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("\"healthy\":false"), "{}", r.stderr());
    assert_eq!(get(r.web, "patient", "/", &[]).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_that_offer_h2_get_http2_unless_the_transport_disables_it() {
    let dir = temp_dir();
    let ca = TestCa::new(&dir, "backend-ca");
    let b = tls_backend_alpn(
        ca.leaf("h2", "h2", &["127.0.0.1"]),
        None,
        Duration::ZERO,
        true,
    )
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    h2: {{rule: "Host(`h2`)", service: h2}}
    h1: {{rule: "Host(`h1`)", service: h1}}
  services:
    h2: {{loadBalancer: {{servers: [{{url: "https://{a}"}}], serversTransport: ca}}}}
    h1: {{loadBalancer: {{servers: [{{url: "https://{a}"}}], serversTransport: ca-h1}}}}
  serversTransports:
    ca: {{rootCAs: ["{ca}"]}}
    ca-h1: {{rootCAs: ["{ca}"], disableHTTP2: true}}
"#,
        a = b.addr,
        ca = ca.file.display()
    );
    let r = Router::start(&dynamic);
    for _ in 0..3 {
        let (status, body) = get(r.web, "h2", "/", &[("te", "trailers")]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"version\":\"HTTP/2.0\""), "{body}");
        assert!(
            body.contains("\"host\":\"h2\""),
            "Host as :authority: {body}"
        );
        assert!(
            body.contains("\"te\":\"trailers\""),
            "TE: trailers passed on: {body}"
        );
        let (status, body) = get(r.web, "h1", "/", &[]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"version\":\"HTTP/1.1\""), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_reaches_an_mtls_auth_server_with_its_tls_block() {
    let dir = temp_dir();
    let ca = TestCa::new(&dir, "auth-ca");
    let client_ca = TestCa::new(&dir, "client-ca");
    let auth = tls_backend(
        ca.leaf("auth", "auth", &["127.0.0.1"]),
        Some(&client_ca),
        Duration::ZERO,
    )
    .await;
    let client = client_ca.leaf("router", "router", &["router.internal"]);
    let app = Backend::start("app").await;
    let dynamic = format!(
        r#"
http:
  routers:
    guarded: {{rule: "Host(`guarded`)", service: app, middlewares: [auth]}}
    nocert: {{rule: "Host(`nocert`)", service: app, middlewares: [auth-nocert]}}
  middlewares:
    auth:
      forwardAuth:
        address: "https://{a}/check"
        tls: {{ca: "{ca}", cert: "{c}", key: "{k}"}}
    auth-nocert:
      forwardAuth:
        address: "https://{a}/check"
        tls: {{ca: "{ca}"}}
  services:
    app: {{loadBalancer: {{servers: [{{url: "{app}"}}]}}}}
"#,
        a = auth.addr,
        ca = ca.file.display(),
        c = client.cert_file.display(),
        k = client.key_file.display(),
        app = app.url()
    );
    let r = Router::start(&dynamic);
    let (status, body) = get(r.web, "guarded", "/x", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server_of(&body), "app");
    // Without the client certificate the auth server refuses the handshake: 500, as Traefik
    // answers an auth server it cannot reach.
    let before = auth.handshakes_failed.load(Ordering::SeqCst);
    let (status, _) = get(r.web, "nocert", "/x", &[]).await;
    assert_eq!(status, 500);
    assert!(auth.handshakes_failed.load(Ordering::SeqCst) > before);
    assert_eq!(
        app.hits.load(Ordering::SeqCst),
        1,
        "only the guarded request got through"
    );
}

#[test]
fn transport_mistakes_are_located_and_a_missing_one_refuses_its_service() {
    let dir = temp_dir();
    let file = dir.join("dynamic.yaml");
    let check = |yaml: &str| {
        std::fs::write(&file, yaml).unwrap();
        betaroute(&["check", "--dynamic", file.to_str().unwrap()])
    };
    let (code, _, err) = check(
        "http:\n  serversTransports:\n    t:\n      rootCAs: [/nonexistent/ca.pem]\n      forwardingTimeouts: {dialTimeout: soon}\n      serverNme: x\n",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("dynamic.yaml:4")
            && err.contains("\"/nonexistent/ca.pem\" is no readable file"),
        "{err}"
    );
    assert!(
        err.contains("dynamic.yaml:5") && err.contains("dialTimeout"),
        "{err}"
    );
    assert!(
        err.contains("dynamic.yaml:6") && err.contains("unknown key \"serverNme\""),
        "{err}"
    );
    let (_, out, err) = check(
        "http:\n  routers:\n    r: {rule: Host(`x`), service: s}\n  services:\n    s: {loadBalancer: {servers: [{url: \"https://127.0.0.1:1\"}], serversTransport: nope}}\n  serversTransports:\n    spiffy: {spiffe: {ids: [x]}}\n",
    );
    let all = format!("{out}{err}");
    assert!(
        all.contains("serversTransport nope does not exist"),
        "{all}"
    );
    assert!(all.contains("spiffe is not supported"), "{all}");
}
