//! HTTP/2 from clients (h2c with prior knowledge, RFC 9113) on the same port as HTTP/1.1,
//! through the real router binary to HTTP/1.1 backends, with real clients: curl, h2load and
//! nghttp (Debian's nghttp2-client) and hyper's own HTTP/2 client for a stream reset.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?}: {all}");
    all
}

/// curl to api.example.com at `url` with `mode` (`--http2-prior-knowledge`, `--http2`), as a
/// beta request or not: its output, then a last line with the HTTP version and status.
async fn curl_api(url: &str, mode: &'static str, beta: bool) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut a = vec![
            "-s",
            mode,
            "-H",
            "Host: api.example.com",
            "-w",
            "\n%{http_version} %{http_code}",
        ];
        if beta {
            a.extend(["-H", "X-RiksTV-Beta: true"]);
        }
        a.push(&url);
        run("curl", &a)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn curl_with_prior_knowledge_is_routed_by_cohort_and_http1_still_works() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    let url = format!("http://{}/hello?x=1", r.web);
    let curl = |beta: bool| curl_api(&url, "--http2-prior-knowledge", beta);
    let out = curl(false).await;
    let (body, tail) = out.rsplit_once('\n').unwrap();
    assert_eq!(tail, "2 200", "{out}");
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(seen["server"], "main");
    assert_eq!(
        seen["uri"], "/hello?x=1",
        "origin-form to the HTTP/1.1 backend"
    );
    assert_eq!(
        seen["headers"]["host"], "api.example.com",
        ":authority as Host"
    );
    assert_eq!(seen["headers"]["x-forwarded-host"], "api.example.com");
    let out = curl(true).await;
    assert!(out.contains("\"server\":\"beta\""), "{out}");
    // The same port still speaks HTTP/1.1.
    assert_eq!(
        server_of(&get(r.web, "api.example.com", "/", &[]).await.1),
        "main"
    );
    // And the access log and metrics count the HTTP/2 requests like any other.
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains(
            "router=\"api-beta@file\",service=\"beta@file\",cohort=\"beta\",code=\"2xx\"} 1"
        ),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2load_many_streams_on_few_connections_all_succeed() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    // 400 streams at once reach the test's own backend as 400 HTTP/1.1 requests: on two
    // cores its answers can take longer than the suite's usual 1 s header timeout.
    let st = patient_static();
    let r = Router::start_with(&st, &beta_main_config(&main.url(), &beta.url()));
    let url = format!("http://{}/", r.web);
    let out = tokio::task::spawn_blocking(move || {
        run(
            "h2load",
            &[
                "-n",
                "4000",
                "-c",
                "4",
                "-m",
                "100",
                "-H",
                ":authority: api.example.com",
                &url,
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        out.contains("requests: 4000 total, 4000 started, 4000 done, 4000 succeeded"),
        "{out}"
    );
    assert!(out.contains("status codes: 4000 2xx"), "{out}");
    assert_eq!(main.hits.load(Ordering::SeqCst), 4000);
}

#[tokio::test]
async fn the_entry_points_http2_settings_are_what_the_client_is_told() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    let st = STATIC.replace(
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"",
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.http2]\nmaxConcurrentStreams = 7\nmaxHeaderListSize = 20000\ninitialStreamWindowSize = 131072",
    );
    assert_ne!(st, STATIC);
    let r = Router::start_with(&st, &beta_main_config(&main.url(), &beta.url()));
    let url = format!("http://{}/", r.web);
    let out = tokio::task::spawn_blocking(move || {
        run(
            "nghttp",
            &["-nv", "-H", ":authority: api.example.com", &url],
        )
    })
    .await
    .unwrap();
    for s in [
        "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7",
        "SETTINGS_MAX_HEADER_LIST_SIZE(0x06):20000",
        "SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072",
    ] {
        assert!(out.contains(s), "{s} in\n{out}");
    }
    assert!(out.contains(":status: 200"), "{out}");
}

#[test]
fn an_http2_setting_betaroute_lacks_is_refused_by_name() {
    let dir = temp_dir();
    let f = dir.join("betaroute.toml");
    std::fs::write(
        &f,
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.http2]\nmaxEncoderHeaderTableSize = 8192\n",
    )
    .unwrap();
    let (code, _, err) = betaroute(&["check", "--config", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("maxEncoderHeaderTableSize"), "{err}");
    assert!(err.contains("betaroute.toml:4:"), "{err}");
}

/// A stream the client resets (RST_STREAM) while its backend is still answering leaves the
/// other streams of the connection alone.
#[tokio::test]
async fn a_reset_stream_does_not_affect_its_siblings() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    main.slow_ms.store(300, Ordering::SeqCst);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    let sender = h2_connect(r.web).await;
    let req = |path: &str| {
        hyper::Request::get(format!("http://api.example.com{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    // Start a slow request and reset it by dropping its future after 50 ms.
    let mut s = sender.clone();
    let reset = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_millis(50), s.send_request(req("/slow"))).await;
    });
    let mut siblings = Vec::new();
    for i in 0..20 {
        let mut s = sender.clone();
        let r = req(if i % 2 == 0 { "/slow" } else { "/" });
        siblings.push(tokio::spawn(async move {
            let resp = s.send_request(r).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }));
    }
    reset.await.unwrap();
    for s in siblings {
        let (status, body) = s.await.unwrap();
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains("\"server\":\"main\""));
    }
    // The connection is still good after the reset.
    let mut s = sender.clone();
    assert_eq!(s.send_request(req("/")).await.unwrap().status(), 200);
}

/// SIGTERM: the HTTP/2 connection gets a GOAWAY, its stream in flight finishes, a new stream on
/// it is refused, and the router exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_goaway_and_lets_streams_in_flight_finish() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    main.slow_ms.store(700, Ordering::SeqCst);
    let mut r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    let sender = h2_connect(r.web).await;
    let req = |path: &str| {
        hyper::Request::get(format!("http://api.example.com{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let mut s = sender.clone();
    let slow = tokio::spawn(async move {
        let resp = s.send_request(req("/slow")).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = r.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = sender.clone();
    assert!(
        s.send_request(req("/")).await.is_err(),
        "a new stream after the GOAWAY"
    );
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("\"server\":\"main\""));
    let exit = tokio::task::spawn_blocking(move || r.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_h2c_switches_and_answers_the_upgrading_request_on_stream_one() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    let url = format!("http://{}/up?x=1", r.web);
    // curl --http2 on an http:// URL asks with Upgrade: h2c (RFC 7540 3.2).
    let curl = |beta: bool| curl_api(&url, "--http2", beta);
    for beta in [false, true] {
        let out = curl(beta).await;
        let (body, tail) = out.rsplit_once('\n').unwrap();
        assert_eq!(tail, "2 200", "switched to HTTP/2: {out}");
        let seen: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(seen["server"], if beta { "beta" } else { "main" }, "{seen}");
        assert_eq!(seen["uri"], "/up?x=1");
        assert_eq!(seen["headers"]["host"], "api.example.com");
        assert!(seen["headers"].get("http2-settings").is_none(), "{seen}");
        assert!(seen["headers"].get("upgrade").is_none(), "{seen}");
    }
    // nghttp -u: the upgrade, then more streams on the same connection.
    let out = tokio::task::spawn_blocking({
        let (a, b) = (url.clone(), format!("http://{}/second", r.web));
        move || {
            run(
                "nghttp",
                &["-u", "-v", "-H", "host: api.example.com", &a, &b],
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.contains("HTTP Upgrade response") || out.contains("101"),
        "{out}"
    );
    assert!(out.contains("\"uri\":\"/up?x=1\""), "{out}");
    // The second stream carries :authority 127.0.0.1:port (nghttp takes it from the URL), which
    // no router serves: betaroute's 404, on the same, upgraded connection.
    assert!(out.contains("404 page not found"), "{out}");
    assert_eq!(out.matches("Connected").count(), 1, "one connection: {out}");
    // A request with a body is answered in HTTP/1.1, as RFC 7540 lets a server do.
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            run(
                "curl",
                &[
                    "-s",
                    "-H",
                    "Host: api.example.com",
                    "-H",
                    "Connection: Upgrade, HTTP2-Settings",
                    "-H",
                    "Upgrade: h2c",
                    "-H",
                    "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                    "-d",
                    "hello",
                    "-w",
                    "\n%{http_version} %{http_code}",
                    &url,
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(out.ends_with("1.1 200"), "{out}");
}
