//! Fixtures for the router's integration tests: real backends on loopback and the real
//! `betaroute serve` binary, talking over sockets.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A backend answering `{"server": NAME, ...}`; `/health` answers 500 while `healthy` is false;
/// `/slow` waits `slow_ms` before answering.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub healthy: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
    pub slow_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Backend::start_on(name, "127.0.0.1:0").await
    }

    /// A backend on a given address (to bring one back where it was).
    pub async fn start_on(name: &str, addr: &str) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let healthy = Arc::new(AtomicBool::new(true));
        let hits = Arc::new(AtomicUsize::new(0));
        let slow_ms = Arc::new(AtomicU64::new(0));
        let (n, h, c, s) = (
            name.to_owned(),
            healthy.clone(),
            hits.clone(),
            slow_ms.clone(),
        );
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let tracked = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (n, h, c, s) = (n.clone(), h.clone(), c.clone(), s.clone());
                let conn = tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (n, h, c, s) = (n.clone(), h.clone(), c.clone(), s.clone());
                        async move {
                            if req.uri().path() == "/health" {
                                let ok = h.load(Ordering::SeqCst);
                                let mut r = Response::new(Full::new(Bytes::from(if ok {
                                    "ok"
                                } else {
                                    "sick"
                                })));
                                *r.status_mut() = if ok {
                                    hyper::StatusCode::OK
                                } else {
                                    hyper::StatusCode::INTERNAL_SERVER_ERROR
                                };
                                return Ok::<_, Infallible>(r);
                            }
                            c.fetch_add(1, Ordering::SeqCst);
                            if req.uri().path() == "/slow" {
                                tokio::time::sleep(Duration::from_millis(s.load(Ordering::SeqCst)))
                                    .await;
                            }
                            let headers: serde_json::Map<String, serde_json::Value> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.to_string(),
                                        serde_json::Value::String(
                                            v.to_str().unwrap_or("").to_owned(),
                                        ),
                                    )
                                })
                                .collect();
                            let uri = req.uri().to_string();
                            let method = req.method().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let out = serde_json::json!({"server": n, "uri": uri, "method": method, "headers": headers, "body_len": body.len()});
                            Ok(Response::new(Full::new(Bytes::from(out.to_string()))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                tracked.lock().unwrap().push(conn.abort_handle());
            }
        });
        Backend {
            name: name.to_owned(),
            addr,
            healthy,
            hits,
            slow_ms,
            task,
            conns,
        }
    }

    /// Dies as a process would: stops listening and drops every connection, requests in
    /// flight included.
    pub fn kill(&self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting: later connections are refused.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// An address nothing listens on (bound, then released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

pub struct Router {
    pub child: Child,
    pub web: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub stderr: Arc<std::sync::Mutex<String>>,
    /// What it printed after its listening lines (the judge's log, among others).
    pub stdout: Arc<std::sync::Mutex<String>>,
    /// Every entry point's address, by name.
    pub entry_points: std::collections::HashMap<String, SocketAddr>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "betaroute-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub const STATIC: &str = r#"
[entryPoints.web]
address = "127.0.0.1:0"
[admin]
address = "127.0.0.1:0"
[providers.file]
filename = "dynamic.yaml"
watch = true
[accessLog]
format = "json"
filePath = "access.log"
[serversTransport.forwardingTimeouts]
responseHeaderTimeout = "1s"
dialTimeout = "1s"
"#;

impl Router {
    /// Starts `betaroute serve` with the static configuration above and this dynamic one.
    pub fn start(dynamic_yaml: &str) -> Router {
        Router::start_with(STATIC, dynamic_yaml)
    }

    pub fn start_with(static_toml: &str, dynamic_yaml: &str) -> Router {
        Router::start_env(static_toml, dynamic_yaml, &[])
    }

    /// Starts the router with these environment variables set as well.
    pub fn start_env(static_toml: &str, dynamic_yaml: &str, env: &[(&str, &str)]) -> Router {
        let dir = temp_dir();
        std::fs::write(dir.join("betaroute.toml"), static_toml).unwrap();
        std::fs::write(dir.join("dynamic.yaml"), dynamic_yaml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_betaroute"))
            .args(["serve", "--config"])
            .arg(dir.join("betaroute.toml"))
            .args(["--threads", "2"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut web, mut admin) = (None, None);
        let mut entry_points = std::collections::HashMap::new();
        while web.is_none() || admin.is_none() {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("betaroute exited: {}", stderr.lock().unwrap());
            }
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let addr: SocketAddr = v["address"].as_str().unwrap().parse().unwrap();
            let name = v["entrypoint"].as_str().unwrap_or_default().to_owned();
            match name.as_str() {
                "web" => web = Some(addr),
                "admin" => admin = Some(addr),
                _ => {}
            }
            entry_points.insert(name, addr);
        }
        let stdout = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Router {
            child,
            web: web.unwrap(),
            admin: admin.unwrap(),
            dir,
            stderr,
            stdout,
            entry_points,
        }
    }

    /// Rewrites the dynamic configuration (atomically, as editors and config managers do).
    pub fn write_dynamic(&self, yaml: &str) {
        let tmp = self.dir.join(".dynamic.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.dir.join("dynamic.yaml")).unwrap();
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub async fn admin_get(&self, path: &str) -> String {
        let (status, body) = get(self.admin, "admin", path, &[]).await;
        assert_eq!(status, 200, "{path}");
        body
    }

    /// Waits until `cond` holds on the admin endpoint's `path`, or panics after `secs`.
    pub async fn wait_admin(&self, path: &str, secs: u64, cond: impl Fn(&str) -> bool) {
        for _ in 0..secs * 20 {
            if cond(&self.admin_get(path).await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "condition on {path} not met in {secs}s: {}\nstderr:\n{}",
            self.admin_get(path).await,
            self.stderr()
        );
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET `path` on `addr` with a Host header; returns status and body.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    request(&client(), addr, "GET", host, path, headers, Bytes::new()).await
}

pub async fn request(
    c: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = c.request(req.body(Full::new(body)).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The backend name in a response body.
pub fn server_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["server"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("<{body}>"))
}

/// Two pools for one host: main for everyone, beta for the beta header (the longer rule).
pub fn beta_main_config(main: &str, beta: &str) -> String {
    format!(
        r#"
http:
  routers:
    api-main:
      rule: "Host(`api.example.com`)"
      service: main
    api-beta:
      rule: "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)"
      service: beta
  services:
    main:
      loadBalancer:
        servers:
          - url: "{main}"
    beta:
      loadBalancer:
        servers:
          - url: "{beta}"
"#
    )
}

/// A CA made by the test (rcgen), and the certificates it signs, as PEM files in `dir`.
pub struct TestCa {
    pub issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    /// Its certificate, `NAME.pem`.
    pub file: PathBuf,
    dir: PathBuf,
}

/// A certificate a [`TestCa`] signed: DER and key for the test's own servers, PEM files for
/// the router's configuration.
pub struct Leaf {
    pub der: rustls::pki_types::CertificateDer<'static>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    pub fn new(dir: &std::path::Path, name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let issuer = rcgen::CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, issuer.pem()).unwrap();
        TestCa {
            issuer,
            file,
            dir: dir.to_owned(),
        }
    }

    /// `FILE.pem` and `FILE.key`: a certificate for `names` (DNS names or IP addresses),
    /// common name `cn`.
    pub fn leaf(&self, file: &str, cn: &str, names: &[&str]) -> Leaf {
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
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        Leaf {
            der: cert.der().clone(),
            key: rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            cert_file: c,
            key_file: k,
        }
    }
}

/// Test PKI: a CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
pub fn pki(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "betaroute test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, san) in [("server", true), ("client", false)] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        // Not the CA's name: OpenSSL takes a certificate named as its issuer for self-signed.
        p.distinguished_name
            .push(DnType::CommonName, format!("betaroute test {name}"));
        if san {
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        let cert = p.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// What a [`Scripted`] backend answers: status, headers, and the body in these chunks (more
/// than one chunk and no Content-Length header: chunked).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Bytes>,
}

impl Reply {
    pub fn new(status: u16, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            chunks: chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect(),
        }
    }
}

/// A body sent in the given chunks, one frame each.
pub struct Chunks(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

/// A backend whose answers a test scripts: `reply` gets each request's head and the number of
/// requests before it. Returns its URL and the heads of the requests it got (each with its
/// body as a `Bytes` extension).
pub async fn scripted<F>(reply: F) -> (String, Arc<std::sync::Mutex<Vec<http::request::Parts>>>)
where
    F: Fn(&http::request::Parts, usize) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<std::sync::Mutex<Vec<http::request::Parts>>> = Default::default();
    let (sink, reply) = (seen.clone(), Arc::new(reply));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (sink, reply) = (sink.clone(), reply.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (sink, reply) = (sink.clone(), reply.clone());
                    async move {
                        let (mut parts, body) = req.into_parts();
                        // The body, for the test to see, as an extension of the head.
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        parts.extensions.insert(body);
                        let n = {
                            let mut s = sink.lock().unwrap();
                            s.push(parts.clone());
                            s.len() - 1
                        };
                        let r = reply(&parts, n);
                        let mut resp = hyper::Response::new(Chunks(r.chunks.into()));
                        *resp.status_mut() = http::StatusCode::from_u16(r.status).unwrap();
                        for (k, v) in r.headers {
                            resp.headers_mut().append(
                                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                http::HeaderValue::from_str(&v).unwrap(),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, seen)
}

/// curl's answer: status, headers (lower-case names) and body, with these arguments.
pub fn curl(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let dir = temp_dir();
    let head = dir.join("head");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D"])
        .arg(&head)
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&head).unwrap();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, out.stdout)
}

/// An HTTP/2 connection with prior knowledge (hyper's client), driven in the background.
pub async fn h2_connect(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

/// Runs the `betaroute` CLI: its exit code, stdout and stderr.
pub fn betaroute(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The suite's static configuration with a 30 s response header timeout, for tests whose
/// backends may take longer than 1 s on a loaded machine (many streams at once, Python's gRPC).
pub fn patient_static() -> String {
    let st = STATIC.replace(
        "responseHeaderTimeout = \"1s\"",
        "responseHeaderTimeout = \"30s\"",
    );
    assert_ne!(st, STATIC);
    st
}

/// The gRPC peer script (grpcio with raw-bytes methods): server and client of the gRPC suites.
pub const GRPC_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_peer.py");

/// A grpcio server on a port of its own, killed when dropped.
pub struct GrpcServer {
    child: Child,
    pub port: u16,
}

impl GrpcServer {
    pub fn start(name: &str) -> GrpcServer {
        let mut child = Command::new("python3")
            .args([GRPC_PEER, "server", name])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("port: {line:?}"));
        GrpcServer { child, port }
    }

    /// Its `h2c://` URL.
    pub fn url(&self) -> String {
        format!("h2c://127.0.0.1:{}", self.port)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
