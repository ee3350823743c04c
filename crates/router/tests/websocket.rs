//! WebSocket (RFC 6455) through the real router binary, with a real WebSocket library
//! (tokio-tungstenite) on both ends: the handshake routed like any request (a beta user's
//! connection lands on beta), messages both ways, 1 MiB frames, close codes passed through,
//! upgraded connections in metrics by cohort, and 200 connections held 30 s across reloads.

// tungstenite's handshake callback returns a whole HTTP response as its error.
#![allow(clippy::result_large_err)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn seen_beta(req: &Request, resp: Response, beta: &mut String) -> Result<Response, ErrorResponse> {
    *beta = req
        .headers()
        .get("x-rikstv-beta")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok(resp)
}

/// A WebSocket echo backend: greets with its name (and the beta header it got), then echoes
/// every message; a close is answered with the same code, as RFC 6455 5.5.1 asks.
async fn echo(name: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut beta = String::new();
                let seen = |req: &Request, resp: Response| seen_beta(req, resp, &mut beta);
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, seen).await else {
                    return;
                };
                let hello = format!("{name} beta={beta}");
                if ws.send(Message::text(hello)).await.is_err() {
                    return;
                }
                // tungstenite answers a close itself, with the peer's code.
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn config(main: &str, beta: &str) -> String {
    format!(
        r#"
http:
  routers:
    live-main: {{rule: "Host(`live.example.com`)", service: main}}
    live-beta: {{rule: "Host(`live.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: beta}}
  services:
    main: {{loadBalancer: {{servers: [{{url: "{main}"}}]}}}}
    beta: {{loadBalancer: {{servers: [{{url: "{beta}"}}]}}}}
"#
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(r: &Router, beta: bool) -> (Ws, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/updates", r.web)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("host", "live.example.com".parse().unwrap());
    if beta {
        req.headers_mut()
            .insert("x-rikstv-beta", "true".parse().unwrap());
    }
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    let hello = match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => t.to_string(),
        m => panic!("greeting: {m:?}"),
    };
    (ws, hello)
}

#[tokio::test]
async fn a_websocket_is_routed_by_cohort_and_carries_messages_both_ways() {
    let (main, beta) = (echo("main").await, echo("beta").await);
    let r = Router::start(&config(&main, &beta));
    let (mut ws, hello) = connect(&r, false).await;
    assert_eq!(hello, "main beta=");
    let (mut bws, hello) = connect(&r, true).await;
    assert_eq!(
        hello, "beta beta=true",
        "a beta user's connection lands on beta"
    );

    ws.send(Message::text("ping?")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping?"));
    // 1 MiB both ways, binary and text.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    bws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(
        bws.next().await.unwrap().unwrap(),
        Message::binary(big.clone())
    );
    let text = "ø".repeat(1 << 19);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));

    // Metrics: each cohort's upgraded connection, open.
    let m = r.admin_get("/metrics").await;
    for l in [
        "betaroute_upgraded_connections_total{router=\"live-main@file\",cohort=\"main\"} 1",
        "betaroute_upgraded_connections_open{router=\"live-beta@file\",cohort=\"beta\"} 1",
    ] {
        assert!(m.contains(l), "{l} in\n{m}");
    }

    // A close code the application chose reaches the backend and comes back.
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Library(4001),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!((u16::from(f.code), f.reason.as_str()), (4001, "bye"))
        }
        m => panic!("close: {m:?}"),
    }
    drop(ws);
    drop(bws);
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_upgraded_connections_open{router=\"live-main@file\",cohort=\"main\"} 0")
            && m.contains("betaroute_upgraded_connections_open{router=\"live-beta@file\",cohort=\"beta\"} 0")
            && m.contains("betaroute_upgraded_connection_seconds_count{router=\"live-main@file\",cohort=\"main\"} 1")
    })
    .await;
}

#[tokio::test]
async fn without_an_upgrade_asked_the_upgrade_header_is_not_passed() {
    // The backend would switch if it saw Upgrade: only a request whose Connection names
    // upgrade carries it, so a stray Upgrade header gets a plain answer.
    let (url, seen) = scripted(|_, _| Reply::new(200, &[], &[b"plain"])).await;
    let r = Router::start(&format!(
        "http:\n  routers:\n    a: {{rule: \"Host(`a`)\", service: s}}\n  services:\n    s: {{loadBalancer: {{servers: [{{url: \"{url}\"}}]}}}}\n"
    ));
    let (status, body) = get(r.web, "a", "/", &[("upgrade", "websocket")]).await;
    assert_eq!((status, body.as_str()), (200, "plain"));
    assert!(!seen.lock().unwrap()[0].headers.contains_key("upgrade"));
}

#[tokio::test]
async fn two_hundred_connections_stay_up_for_30_seconds_across_reloads() {
    let (main, beta) = (echo("main").await, echo("beta").await);
    let r = Router::start(&config(&main, &beta));
    let mut conns = Vec::new();
    for i in 0..200 {
        conns.push(connect(&r, i % 2 == 0).await.0);
    }
    // Held 30 s: six rounds of 5 s, each with a reload that changes the table (a new router,
    // then without it again) and a message on every connection.
    let held = tokio::time::Instant::now();
    for round in 0..6u64 {
        tokio::time::sleep_until(held + Duration::from_secs(5 * (round + 1))).await;
        let mut y = config(&main, &beta);
        if round % 2 == 0 {
            y = y.replace(
                "  services:",
                "    extra: {rule: \"Host(`extra.example.com`)\", service: main}\n  services:",
            );
        }
        let before = reloads_ok(&r).await;
        r.write_dynamic(&y);
        for _ in 0..200 {
            if reloads_ok(&r).await > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(reloads_ok(&r).await > before, "round {round}: no reload");
        for (i, ws) in conns.iter_mut().enumerate() {
            let m = Message::text(format!("{round}/{i}"));
            ws.send(m.clone()).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), m, "connection {i}");
        }
    }
    assert!(held.elapsed() >= Duration::from_secs(30));
    let m = r.admin_get("/metrics").await;
    assert!(m.contains(
        "betaroute_upgraded_connections_open{router=\"live-main@file\",cohort=\"main\"} 100"
    ));
}

async fn reloads_ok(r: &Router) -> u64 {
    let m = r.admin_get("/metrics").await;
    m.lines()
        .find_map(|l| l.strip_prefix("betaroute_config_reloads_total{result=\"success\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// RFC 8441: a WebSocket over HTTP/2 (extended CONNECT) reaches the HTTP/1.1 echo backend as
/// an RFC 6455 handshake; the client gets 200 and messages flow both ways over its stream.
/// Traefik answers this with 500 (traefik/traefik#7465).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_over_http2_reaches_an_http1_backend() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let (main, beta) = (echo("main").await, echo("beta").await);
    // Rules see the RFC 6455 GET, not the CONNECT: beta's rule asks for GET.
    let cfg = config(&main, &beta).replace(
        "Header(`X-RiksTV-Beta`, `true`)",
        "Header(`X-RiksTV-Beta`, `true`) && Method(`GET`)",
    );
    assert_ne!(cfg, config(&main, &beta));
    let r = Router::start(&cfg);
    let mut sender = h2_connect(r.web).await;
    // A first exchange so the server's SETTINGS (ENABLE_CONNECT_PROTOCOL) have arrived.
    let plain = hyper::Request::get("http://live.example.com/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let _ = sender.send_request(plain).await.unwrap();
    let mut req = hyper::Request::connect("http://live.example.com/updates")
        .header("sec-websocket-version", "13")
        .header("x-rikstv-beta", "true")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    assert!(!resp.headers().contains_key("sec-websocket-accept"));
    let upgraded = hyper::upgrade::on(&mut resp).await.unwrap();
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        hyper_util::rt::TokioIo::new(upgraded),
        Role::Client,
        None,
    )
    .await;
    match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => assert_eq!(t.as_str(), "beta beta=true", "on beta"),
        m => panic!("greeting: {m:?}"),
    }
    let big = Message::binary(vec![7u8; 1 << 20]);
    ws.send(big.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), big);
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    })))
    .await
    .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Normal),
        m => panic!("close: {m:?}"),
    }
}

#[tokio::test]
async fn the_entry_points_upgrade_idle_timeout_closes_quiet_websockets_only() {
    let (main, beta) = (echo("main").await, echo("beta").await);
    let st = STATIC.replace(
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"",
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.upgrades]\nidleTimeout = \"1s\"",
    );
    assert_ne!(st, STATIC);
    let r = Router::start_with(&st, &config(&main, &beta));
    let (mut quiet, _) = connect(&r, false).await;
    let (mut busy, _) = connect(&r, false).await;
    // A message every 150 ms for 1.5 s: never idle for 1 s, so never cut, though it outlives
    // the limit.
    for i in 0..10 {
        busy.send(Message::text(format!("{i}"))).await.unwrap();
        let m = busy.next().await.unwrap().unwrap();
        assert_eq!(m, Message::text(format!("{i}")));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The quiet one was closed after 1 s without a byte either way.
    let ended = tokio::time::timeout(Duration::from_secs(3), quiet.next())
        .await
        .expect("the quiet connection is closed, not still open");
    assert!(!matches!(ended, Some(Ok(Message::Text(_)))), "{ended:?}");
}
