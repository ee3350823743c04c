//! `grpcWeb` through the real router binary, in front of a real grpcio server over `h2c://`
//! (`tests/grpc_peer.py`, the server of grpc.rs): a real gRPC-Web client (PyPI's sonora,
//! `tests/grpc_web_client.py`, binary gRPC-Web over HTTP/1.1, installed by `scripts/install.sh`)
//! for unary, server streaming and error statuses; hand-built frames over hyper for what
//! sonora does not speak or hides (`application/grpc-web-text` both ways, the exact trailer
//! frame and headers, a trailers-only answer, CORS preflights); and plain requests through the
//! same middleware, untouched.

mod common;

use std::process::Command;

use base64ct::Encoding;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};

use common::*;

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_web_client.py");

const APP: &str = "https://app.example.com";

/// `web` (any host, lowest priority): gRPC-Web for app.example.com; `open`: any origin;
/// `closed`: grpcWeb without allowOrigins; `plain`: an HTTP/1.1 JSON backend behind grpcWeb.
fn config(grpc: &GrpcServer, plain: &Backend) -> String {
    format!(
        r#"
http:
  routers:
    web: {{rule: "PathPrefix(`/`)", priority: 1, service: grpc, middlewares: [web]}}
    open: {{rule: "Host(`open.example.com`)", service: grpc, middlewares: [open]}}
    closed: {{rule: "Host(`closed.example.com`)", service: grpc, middlewares: [closed]}}
    plain: {{rule: "Host(`plain.example.com`)", service: plain, middlewares: [web]}}
  middlewares:
    web: {{grpcWeb: {{allowOrigins: ["{APP}"]}}}}
    open: {{grpcWeb: {{allowOrigins: ["*"]}}}}
    closed: {{grpcWeb: {{}}}}
  services:
    grpc: {{loadBalancer: {{servers: [{{url: "h2c://127.0.0.1:{}"}}]}}}}
    plain: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        grpc.port,
        plain.url()
    )
}

struct Setup {
    _grpc: GrpcServer,
    plain: Backend,
    router: Router,
}

async fn setup() -> Setup {
    let grpc = GrpcServer::start("main");
    let plain = Backend::start("plain").await;
    let router = Router::start_with(&patient_static(), &config(&grpc, &plain));
    Setup {
        _grpc: grpc,
        plain,
        router,
    }
}

/// One HTTP/1.1 request (as browsers' gRPC-Web goes); status, headers and the whole body.
async fn call(
    r: &Router,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, HeaderMap, Bytes) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", r.web))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client()
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (status, parts.headers, body)
}

/// A gRPC message frame.
fn message(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A gRPC-Web trailer frame of these lines.
fn trailer(lines: &str) -> Vec<u8> {
    let mut f = vec![0x80];
    f.extend_from_slice(&(lines.len() as u32).to_be_bytes());
    f.extend_from_slice(lines.as_bytes());
    f
}

/// Frames as (flag byte, payload); the body must be whole frames.
fn frames(mut body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "a partial frame header: {body:?}");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((
            body[0],
            String::from_utf8_lossy(&body[5..5 + len]).into_owned(),
        ));
        body = &body[5 + len..];
    }
    out
}

/// A `-text` body: padded base64 pieces, one after another (each 4-character group stands
/// alone).
fn unbase64(text: &[u8]) -> Vec<u8> {
    assert_eq!(text.len() % 4, 0, "{}", String::from_utf8_lossy(text));
    text.chunks(4)
        .flat_map(|g| base64ct::Base64::decode_vec(std::str::from_utf8(g).unwrap()).unwrap())
        .collect()
}

fn b64(data: &[u8]) -> String {
    base64ct::Base64::encode_string(data)
}

fn exposed(h: &HeaderMap) -> Vec<String> {
    h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect()
}

fn all(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

const OK_TRAILERS: &str = "grpc-message: \r\ngrpc-status: 0\r\nx-served-by: main\r\n";

#[tokio::test]
async fn a_grpc_web_client_calls_unary_and_streaming_methods_with_their_statuses() {
    let s = setup().await;
    let url = format!("http://{}", s.router.web);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([CLIENT, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client: {stdout}{}\nrouter: {}",
        String::from_utf8_lossy(&out.stderr),
        s.router.stderr()
    );
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["unary"]["reply"], "main:hi:beta=", "{out}");
    assert_eq!(out["unary"]["content_type"], "application/grpc-web");
    assert_eq!(out["unary"]["trailing"]["grpc-status"], "0", "{out}");
    assert_eq!(out["unary"]["trailing"]["x-served-by"], "main", "{out}");
    assert_eq!(out["deny"]["code"], "PERMISSION_DENIED", "{out}");
    assert_eq!(out["deny"]["details"], "not you", "{out}");
    assert_eq!(
        out["server_stream"]["messages"],
        serde_json::json!(["main:0", "main:1", "main:2", "main:3", "main:4"])
    );
    assert_eq!(out["server_stream"]["trailing"]["grpc-status"], "0");
    assert_eq!(
        out["stream_error"],
        serde_json::json!({"messages": ["main:0", "main:1", "main:2"], "code": "ABORTED", "details": "stopped after 3"}),
        "the status comes in the trailer frame, after the messages"
    );
}

#[tokio::test]
async fn binary_frames_trailers_and_headers_are_the_wrappers() {
    let s = setup().await;
    let r = &s.router;
    let web = [
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("origin", APP),
    ];
    let (status, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &web,
        message(b"hi"),
    )
    .await;
    assert_eq!(status, 200, "{}", r.stderr());
    assert_eq!(h["content-type"], "application/grpc-web");
    assert_eq!(all(&h, "vary"), ["Origin"]);
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let mut names = exposed(&h);
    assert_eq!(
        names.split_off(names.len() - 2),
        ["grpc-status", "grpc-message"]
    );
    names.sort();
    assert_eq!(
        names,
        [
            "Access-Control-Allow-Credentials",
            "Access-Control-Allow-Origin",
            "Content-Type",
            "Grpc-Accept-Encoding",
            "Vary"
        ]
    );
    let mut want = message(b"main:hi:beta=");
    want.extend(trailer(OK_TRAILERS));
    assert_eq!(body.as_ref(), want.as_slice(), "{:?}", frames(&body));

    // Server streaming: the messages as they came, then the trailer frame.
    let (status, _, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/ServerStream",
        &web,
        message(b"3"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        frames(&body),
        [
            (0, "main:0".into()),
            (0, "main:1".into()),
            (0, "main:2".into()),
            (0x80, "grpc-message: \r\ngrpc-status: 0\r\n".into())
        ]
    );

    // Trailers-only (an abort before any message): the status in the head, exposed, and an
    // empty trailer frame, as the wrapper leaves it.
    let (status, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &web,
        message(b"deny"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["grpc-status"], "7");
    assert_eq!(h["grpc-message"], "not you");
    assert_eq!(h["x-why"], "denied-by-main");
    for n in ["Grpc-Status", "Grpc-Message", "X-Why"] {
        assert!(exposed(&h).contains(&n.to_owned()), "{n}: {h:?}");
    }
    assert_eq!(body.as_ref(), [0x80, 0, 0, 0, 0]);

    // A status after messages: in the trailer frame.
    let (_, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/ServerStream",
        &web,
        message(b"1!"),
    )
    .await;
    assert!(!h.contains_key("grpc-status"));
    assert_eq!(
        frames(&body),
        [
            (0, "main:0".into()),
            (
                0x80,
                "grpc-message: stopped after 1\r\ngrpc-status: 10\r\n".into()
            )
        ]
    );

    // A refused origin is still converted, without CORS headers but Vary.
    let refused = [
        ("content-type", "application/grpc-web+proto"),
        ("origin", "https://evil.example.com"),
    ];
    let (status, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &refused,
        message(b"hi"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!h.contains_key("access-control-allow-origin"), "{h:?}");
    assert!(!h.contains_key("access-control-allow-credentials"));
    assert_eq!(all(&h, "vary"), ["Origin"]);
    assert_eq!(frames(&body)[0], (0, "main:hi:beta=".into()));

    // Over HTTP/2 too (a client that speaks it: the same conversion, trailers in the body).
    let (status, h, body) = curl_web(
        r,
        &[
            "-H",
            "content-type: application/grpc-web",
            "--http2-prior-knowledge",
        ],
        &message(b"hi"),
    );
    assert_eq!(status, 200);
    assert!(h
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/grpc-web"));
    let mut want = message(b"main:hi:beta=");
    want.extend(trailer(OK_TRAILERS));
    assert_eq!(body, want);
}

/// curl POSTing `body` to the Unary method, for HTTP/2 from the client.
fn curl_web(r: &Router, args: &[&str], body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let file = temp_dir().join("body");
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let url = format!("http://{}/test.Echo/Unary", r.web);
    let mut all = args.to_vec();
    all.extend(["-H", "host: grpc.example.com", "--data-binary", &data, &url]);
    curl(&all)
}

#[tokio::test]
async fn text_bodies_are_base64_both_ways_as_they_stream() {
    let s = setup().await;
    let r = &s.router;
    let text = [
        ("content-type", "application/grpc-web-text"),
        ("accept", "application/grpc-web-text"),
        ("origin", APP),
    ];
    let (status, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &text,
        b64(&message(b"hi")).into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", r.stderr());
    assert_eq!(h["content-type"], "application/grpc-web-text");
    let mut want = message(b"main:hi:beta=");
    want.extend(trailer(OK_TRAILERS));
    assert_eq!(unbase64(&body), want);
    // The trailer frame is a padded piece of its own (the wrapper flushes after it).
    assert!(body.ends_with(b64(&trailer(OK_TRAILERS)).as_bytes()));

    // Server streaming: every message, then the trailers, each piece padded base64.
    let (_, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/ServerStream",
        &text,
        b64(&message(b"4")).into_bytes(),
    )
    .await;
    assert_eq!(h["content-type"], "application/grpc-web-text");
    assert_eq!(
        frames(&unbase64(&body)),
        [
            (0, "main:0".into()),
            (0, "main:1".into()),
            (0, "main:2".into()),
            (0, "main:3".into()),
            (0x80, "grpc-message: \r\ngrpc-status: 0\r\n".into())
        ]
    );

    // A request of many messages (client streaming), its base64 broken across lines: decoded
    // whole before it reached grpcio.
    let mut many = Vec::new();
    for i in 0..20 {
        many.extend(message(
            format!("message {i} {}", "x".repeat(i * 100)).as_bytes(),
        ));
    }
    let encoded = b64(&many);
    let wrapped: Vec<u8> = encoded
        .as_bytes()
        .chunks(76)
        .flat_map(|l| [l, b"\r\n"].concat())
        .collect();
    let (status, _, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/ClientStream",
        &[("content-type", "application/grpc-web-text+proto")],
        wrapped,
    )
    .await;
    assert_eq!(status, 200);
    let got = frames(&unbase64(&body));
    let total: usize = (0..20)
        .map(|i| format!("message {i} ").len() + i * 100)
        .sum();
    assert_eq!(
        got[0],
        (
            0,
            format!(r#"{{"server": "main", "messages": 20, "bytes": {total}}}"#)
        )
    );
    assert_eq!(
        got[1],
        (0x80, "grpc-message: \r\ngrpc-status: 0\r\n".into())
    );

    // Trailers-only, in text: the empty trailer frame, encoded.
    let (_, h, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &text,
        b64(&message(b"deny")).into_bytes(),
    )
    .await;
    assert_eq!(h["grpc-status"], "7");
    assert_eq!(body.as_ref(), b"gAAAAAA=");

    // Not base64: the backend's request fails, the client gets the proxy's 502 (gRPC-Web
    // framed, as the wrapper frames Traefik's).
    let (status, _, body) = call(
        r,
        "POST",
        "grpc.example.com",
        "/test.Echo/Unary",
        &text,
        b"AAAA*not base64*".to_vec(),
    )
    .await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins_and_plain_requests_go_untouched() {
    let s = setup().await;
    let r = &s.router;
    let preflight = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            ),
        ]
    };
    let vary = [
        "Origin",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
    ];
    let (status, h, body) = call(
        r,
        "OPTIONS",
        "grpc.example.com",
        "/test.Echo/Unary",
        &preflight(APP),
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(all(&h, "vary"), vary);
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "Content-Type, X-Grpc-Web, X-User-Agent"
    );
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "600");

    // A refused origin, or a grpcWeb without allowOrigins: 200 with only Vary.
    for (host, origin) in [
        ("grpc.example.com", "https://evil.example.com"),
        ("closed.example.com", APP),
    ] {
        let (status, h, _) = call(
            r,
            "OPTIONS",
            host,
            "/test.Echo/Unary",
            &preflight(origin),
            vec![],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(all(&h, "vary"), vary);
        for n in [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-allow-credentials",
            "access-control-max-age",
        ] {
            assert!(!h.contains_key(n), "{host} {origin}: {n}");
        }
    }
    // `*`: any origin, echoed.
    let (_, h, _) = call(
        r,
        "OPTIONS",
        "open.example.com",
        "/test.Echo/Unary",
        &preflight("https://any.example"),
        vec![],
    )
    .await;
    assert_eq!(h["access-control-allow-origin"], "https://any.example");

    // A preflight never reaches the backend; one that does not ask for x-grpc-web does.
    let hits = || s.plain.hits.load(std::sync::atomic::Ordering::SeqCst);
    let (status, _, _) = call(
        r,
        "OPTIONS",
        "plain.example.com",
        "/x",
        &preflight(APP),
        vec![],
    )
    .await;
    assert_eq!((status, hits()), (200, 0));
    let (status, _, body) = call(
        r,
        "OPTIONS",
        "plain.example.com",
        "/x",
        &[
            ("origin", APP),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        vec![],
    )
    .await;
    assert_eq!((status, hits()), (200, 1));
    assert_eq!(server_of(&String::from_utf8_lossy(&body)), "plain");

    // Plain requests go through untouched, both ways.
    for (method, ct) in [
        ("POST", "application/json"),
        ("GET", "application/grpc-web"),
        ("PUT", "application/grpc-web-text"),
        ("POST", "application/grpc"),
    ] {
        let (status, h, body) = call(
            r,
            method,
            "plain.example.com",
            "/echo",
            &[("content-type", ct), ("origin", APP)],
            b"{\"a\":1}".to_vec(),
        )
        .await;
        assert_eq!(status, 200);
        for n in [
            "vary",
            "access-control-allow-origin",
            "access-control-expose-headers",
        ] {
            assert!(!h.contains_key(n), "{method} {ct}: {n}: {h:?}");
        }
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["method"], method);
        assert_eq!(seen["headers"]["content-type"], ct, "{seen}");
        assert_eq!(seen["headers"]["content-length"], "7", "{seen}");
        assert_eq!(seen["body_len"], 7);
        assert!(seen["headers"].get("te").is_none(), "{seen}");
    }
}
