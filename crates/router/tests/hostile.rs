//! Hostile HTTP/1.1 at the router, over raw sockets: request smuggling shapes are refused and never
//! reach a backend; oversized header sections get 431; slow clients are cut off.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

fn config(url: &str) -> String {
    format!("http:\n  routers:\n    r: {{rule: \"PathPrefix(`/`)\", service: s}}\n  services:\n    s: {{loadBalancer: {{servers: [{{url: \"{url}\"}}]}}}}\n")
}

/// A router whose entry point gives clients 1 s to send their request headers.
fn router_with_short_header_timeout(backend: &Backend) -> Router {
    let static_toml = STATIC.replace(
        "address = \"127.0.0.1:0\"\n[admin]",
        "address = \"127.0.0.1:0\"\nheaderTimeout = \"1s\"\n[admin]",
    );
    Router::start_with(&static_toml, &config(&backend.url()))
}

/// Sends raw bytes, returns everything the router answers until it closes or goes quiet.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn smuggling_shapes_are_refused_and_never_forwarded() {
    let backend = Backend::start("b").await;
    let r = router_with_short_header_timeout(&backend);
    let web = r.web;
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "two different Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            "400",
        ),
        (
            "Content-Length list",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde",
            "400",
        ),
        (
            "obsolete line folding",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n",
            "400",
        ),
        (
            "Transfer-Encoding without chunked last",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            "400",
        ),
        (
            "space before the colon",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n",
            "400",
        ),
        (
            "negative Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "400",
        ),
    ];
    for (name, bytes, want) in cases {
        let before = backend.hits.load(Ordering::SeqCst);
        let answer = tokio::task::spawn_blocking(move || raw(web, bytes))
            .await
            .unwrap();
        assert!(
            status(&answer).contains(want),
            "{name}: {:?}",
            status(&answer)
        );
        assert_eq!(
            backend.hits.load(Ordering::SeqCst),
            before,
            "{name} reached the backend"
        );
    }
    // Content-Length and Transfer-Encoding together: hyper does what RFC 9112 6.1 prescribes for an
    // intermediary (chunked wins, Content-Length is dropped, the connection closes after this
    // request), so a request smuggled behind it, under either framing, never reaches a backend.
    for order in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
    ] {
        let attack = format!("POST /front HTTP/1.1\r\nHost: a\r\n{order}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
        let before = backend.hits.load(Ordering::SeqCst);
        let answer = tokio::task::spawn_blocking(move || raw(web, attack.as_bytes()))
            .await
            .unwrap();
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "one answer, for the front request only: {answer}"
        );
        assert!(!answer.contains("/smuggled"), "{answer}");
        assert!(backend.hits.load(Ordering::SeqCst) <= before + 1);
    }

    // A well-formed request on a fresh connection still works.
    let answer = tokio::task::spawn_blocking(move || {
        raw(
            web,
            b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(status(&answer).contains("200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_header_sections_get_431() {
    let backend = Backend::start("b").await;
    let r = Router::start(&config(&backend.url()));
    let web = r.web;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let answer = tokio::task::spawn_blocking(move || raw(web, req.as_bytes()))
        .await
        .unwrap();
    assert!(
        status(&answer).contains("431"),
        "too many headers: {:?}",
        status(&answer)
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    let answer = tokio::task::spawn_blocking(move || raw(web, big.as_bytes()))
        .await
        .unwrap();
    assert!(
        status(&answer).contains("431"),
        "huge header: {:?}",
        status(&answer)
    );
    assert_eq!(backend.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_is_cut_off() {
    let backend = Backend::start("b").await;
    let r = router_with_short_header_timeout(&backend);
    let web = r.web;
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(web).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf); // returns when the router closes the connection (or answers 408)
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the connection stayed open {took:?}"
    );
    assert_eq!(backend.hits.load(Ordering::SeqCst), 0);
}
