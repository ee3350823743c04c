//! `betaroute serve` end to end: real binary, real backends, real sockets.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;

const API: &str = "api.example.com";

#[tokio::test(flavor = "multi_thread")]
async fn beta_header_goes_to_beta_pool_and_everything_else_to_main() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    for (headers, want) in [
        (vec![("X-RiksTV-Beta", "true")], "beta"),
        (vec![("x-rikstv-beta", "true")], "beta"),
        (vec![("X-RiksTV-Beta", "TRUE")], "main"),
        (vec![("X-RiksTV-Beta", "false")], "main"),
        (vec![], "main"),
    ] {
        let (status, body) = get(r.web, API, "/v1/items?x=1", &headers).await;
        assert_eq!(status, 200);
        assert_eq!(server_of(&body), want, "{headers:?}");
    }
    // Port in the Host header and letter case do not matter.
    let (_, body) = get(
        r.web,
        "API.Example.com:8080",
        "/",
        &[("X-RiksTV-Beta", "true")],
    )
    .await;
    assert_eq!(server_of(&body), "beta");
    // Another host matches no router.
    let (status, body) = get(r.web, "other.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_host_and_path_are_passed_on() {
    let main = Backend::start("main").await;
    let r = Router::start(&beta_main_config(&main.url(), &dead_url()));
    let (_, body) = get(
        r.web,
        API,
        "/a%2Fb/%E2%9C%93?q=%20x&y",
        &[
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uri"], "/a%2Fb/%E2%9C%93?q=%20x&y");
    assert_eq!(v["headers"]["host"], API);
    // An untrusted peer's X-Forwarded-For is replaced, as Traefik does by default.
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-host"], API);
    assert_eq!(v["headers"]["x-forwarded-proto"], "http");
    assert_eq!(v["headers"]["x-real-ip"], "127.0.0.1");
    assert!(
        v["headers"].get("x-hop").is_none(),
        "headers named in Connection are hop-by-hop"
    );

    // A 1 MiB body streams through intact.
    let payload = Bytes::from(vec![7u8; 1 << 20]);
    let (status, body) = request(&client(), r.web, "POST", API, "/upload", &[], payload).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["body_len"],
        1 << 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn priority_by_length_and_explicit() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let config = |prio: &str| {
        format!(
            r#"
http:
  routers:
    short:
      rule: "PathPrefix(`/`)"
      service: a
      {prio}
    long:
      rule: "PathPrefix(`/api`)"
      service: b
  services:
    a: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
    b: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
            a.url(),
            b.url()
        )
    };
    let r = Router::start(&config(""));
    assert_eq!(server_of(&get(r.web, "h", "/api/x", &[]).await.1), "b");
    assert_eq!(server_of(&get(r.web, "h", "/other", &[]).await.1), "a");
    r.write_dynamic(&config("priority: 1000"));
    r.wait_admin("/api/http/routers", 10, |s| s.contains("\"priority\":1000"))
        .await;
    assert_eq!(server_of(&get(r.web, "h", "/api/x", &[]).await.1), "a");
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_distribute_requests() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = Router::start(&format!(
        r#"
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: pool}}
  services:
    pool:
      loadBalancer:
        servers:
          - {{url: "{}", weight: 3}}
          - {{url: "{}", weight: 1}}
"#,
        a.url(),
        b.url()
    ));
    for _ in 0..400 {
        get(r.web, "h", "/", &[]).await;
    }
    let (ha, hb) = (
        a.hits.load(std::sync::atomic::Ordering::SeqCst),
        b.hits.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert_eq!(ha + hb, 400);
    assert!((285..=315).contains(&ha), "3:1 weights gave {ha}:{hb}");
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_services_split_traffic() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = Router::start(&format!(
        r#"
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: canary}}
  services:
    canary:
      weighted:
        services:
          - {{name: stable, weight: 9}}
          - {{name: next, weight: 1}}
    stable: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
    next: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        a.url(),
        b.url()
    ));
    for _ in 0..200 {
        get(r.web, "h", "/", &[]).await;
    }
    let hb = b.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (15..=25).contains(&hb),
        "9:1 gave {hb} of 200 to the light side"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_check_removes_and_restores_a_server() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let r = Router::start(&format!(
        r#"
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: pool}}
  services:
    pool:
      loadBalancer:
        healthCheck: {{path: /health, interval: 100ms, timeout: 500ms}}
        servers:
          - url: "{}"
          - url: "{}"
"#,
        a.url(),
        b.url()
    ));
    b.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    r.wait_admin("/api/http/services", 10, |s| s.contains(":\"DOWN\""))
        .await;
    let before = b.hits.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(server_of(&get(r.web, "h", "/", &[]).await.1), "a");
    }
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), before);
    assert!(r.admin_get("/metrics").await.contains(&format!(
        "betaroute_server_up{{service=\"pool@file\",url=\"{}/\"}} 0",
        b.url()
    )));
    b.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    r.wait_admin("/api/http/services", 10, |s| !s.contains("DOWN"))
        .await;
    let mut seen_b = false;
    for _ in 0..10 {
        seen_b |= server_of(&get(r.web, "h", "/", &[]).await.1) == "b";
    }
    assert!(seen_b, "restored server gets traffic again");
    assert!(r.stderr().contains("\"healthy\":false") && r.stderr().contains("\"healthy\":true"));
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_beta_pool_fails_over_to_main() {
    let main = Backend::start("main").await;
    let r = Router::start(&format!(
        r#"
http:
  routers:
    api-main: {{rule: "Host(`api.example.com`)", service: main}}
    api-beta: {{rule: "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: beta-or-main}}
  services:
    beta-or-main:
      failover: {{service: beta, fallback: main}}
    beta:
      loadBalancer:
        healthCheck: {{path: /health, interval: 100ms, timeout: 300ms}}
        servers: [{{url: "{}"}}]
    main:
      loadBalancer:
        servers: [{{url: "{}"}}]
"#,
        dead_url(),
        main.url()
    ));
    r.wait_admin("/api/http/services", 10, |s| s.contains("DOWN"))
        .await;
    for _ in 0..10 {
        let (status, body) = get(r.web, API, "/", &[("X-RiksTV-Beta", "true")]).await;
        assert_eq!((status, server_of(&body)), (200, "main".to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_connection_is_retried_on_another_server() {
    let a = Backend::start("a").await;
    let r = Router::start(&format!(
        r#"
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: pool}}
  services:
    pool:
      loadBalancer:
        servers: [{{url: "{}"}}, {{url: "{}"}}]
"#,
        dead_url(),
        a.url()
    ));
    for _ in 0..10 {
        let (status, body) = get(r.web, "h", "/", &[]).await;
        assert_eq!((status, server_of(&body)), (200, "a".to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clear_errors_when_backends_fail() {
    let slow = Backend::start("slow").await;
    slow.slow_ms
        .store(3000, std::sync::atomic::Ordering::SeqCst);
    let r = Router::start(&format!(
        r#"
http:
  routers:
    dead: {{rule: "Path(`/dead`)", service: dead}}
    slow: {{rule: "Path(`/slow`)", service: slow}}
  services:
    dead: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
    slow: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        dead_url(),
        slow.url()
    ));
    let (status, body) = get(r.web, "h", "/dead", &[]).await;
    assert_eq!(status, 502, "{body}");
    // The refused server is now out for a cooldown: no server is available.
    let (status, body) = get(r.web, "h", "/dead", &[]).await;
    assert_eq!((status, body.as_str()), (503, "no available server\n"));
    let (status, _) = get(r.web, "h", "/slow", &[]).await;
    assert_eq!(status, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_under_load_drops_nothing_and_a_broken_file_keeps_the_old_routes() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    let web = r.web;
    let load = tokio::spawn(async move {
        let c = client();
        let mut failures = Vec::new();
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < deadline {
            let (status, body) = request(
                &c,
                web,
                "GET",
                API,
                "/",
                &[("X-RiksTV-Beta", "true")],
                Bytes::new(),
            )
            .await;
            if status != 200 {
                failures.push(format!("{status} {body}"));
            }
            n += 1;
        }
        (n, failures)
    });
    // Swap between two configurations that both route the host, several times, under load.
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(550)).await;
        let extra =
            format!("\n    extra-{i}:\n      rule: \"Path(`/extra-{i}`)\"\n      service: main\n");
        let cfg = beta_main_config(&main.url(), &beta.url())
            .replace("  services:", &format!("{extra}  services:"));
        r.write_dynamic(&cfg);
    }
    let (n, failures) = load.await.unwrap();
    assert!(n > 100, "only {n} requests in 4 s");
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(r
        .admin_get("/metrics")
        .await
        .contains("betaroute_config_reloads_total{result=\"success\"}"));

    // A broken file: the error is logged with file, line and column; routing goes on unchanged.
    r.write_dynamic(
        "http:\n  routers:\n    x:\n      rule: \"Host(`a`) && Pth(`/`)\"\n      service: main\n",
    );
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_config_last_reload_failed 1")
    })
    .await;
    let mut err = r.stderr();
    for _ in 0..100 {
        if err.contains("\"failure\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        err = r.stderr();
    }
    assert!(err.contains("dynamic.yaml:4:"), "{err}");
    assert!(err.contains("unknown matcher"), "{err}");
    let (status, body) = get(r.web, API, "/", &[("X-RiksTV-Beta", "true")]).await;
    assert_eq!((status, server_of(&body)), (200, "beta".to_owned()));

    // Fixed again: the new configuration takes over.
    r.write_dynamic(&beta_main_config(&beta.url(), &main.url()));
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_config_last_reload_failed 0")
    })
    .await;
    assert_eq!(server_of(&get(r.web, API, "/", &[]).await.1), "beta");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_api_and_access_log() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = Router::start(&beta_main_config(&main.url(), &beta.url()));
    for _ in 0..3 {
        get(r.web, API, "/", &[("X-RiksTV-Beta", "true")]).await;
    }
    get(r.web, API, "/", &[]).await;
    let m = r.admin_get("/metrics").await;
    assert!(m.contains("betaroute_requests_total{entrypoint=\"web\",router=\"api-beta@file\",service=\"beta@file\",cohort=\"beta\",code=\"2xx\"} 3"), "{m}");
    assert!(m.contains("betaroute_requests_total{entrypoint=\"web\",router=\"api-main@file\",service=\"main@file\",cohort=\"main\",code=\"2xx\"} 1"), "{m}");
    assert!(m.contains("betaroute_request_duration_seconds_count{entrypoint=\"web\",router=\"api-beta@file\",service=\"beta@file\",cohort=\"beta\"} 3"), "{m}");
    assert!(m.contains("betaroute_request_duration_seconds_bucket{entrypoint=\"web\",router=\"api-beta@file\",service=\"beta@file\",cohort=\"beta\",le=\"+Inf\"} 3"));

    let routers: serde_json::Value =
        serde_json::from_str(&r.admin_get("/api/http/routers").await).unwrap();
    let beta_router = routers
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "api-beta@file")
        .unwrap();
    assert_eq!(beta_router["priority"], 58, "the rule's length in bytes");
    assert_eq!(
        beta_router["service"], "beta",
        "as configured, as Traefik shows it"
    );
    assert_eq!(beta_router["priorityStr"], "58");
    assert_eq!(beta_router["status"], "enabled");
    assert_eq!(beta_router["provider"], "file");
    assert_eq!(beta_router["entryPoints"], serde_json::json!(["web"]));
    let services: serde_json::Value =
        serde_json::from_str(&r.admin_get("/api/http/services").await).unwrap();
    assert_eq!(services.as_array().unwrap().len(), 2);
    let beta = &services[0];
    assert_eq!(beta["name"], "beta@file");
    assert_eq!(beta["type"], "loadbalancer");
    assert_eq!(beta["usedBy"], serde_json::json!(["api-beta@file"]));
    let url = beta["loadBalancer"]["servers"][0]["url"].as_str().unwrap();
    assert_eq!(beta["serverStatus"][url], "UP");
    let overview: serde_json::Value =
        serde_json::from_str(&r.admin_get("/api/overview").await).unwrap();
    assert_eq!(overview["http"]["routers"]["total"], 2);
    assert_eq!(overview["providers"], serde_json::json!(["File"]));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(r.dir.join("access.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["cohort"], "beta");
    assert_eq!(lines[0]["router"], "api-beta@file");
    assert_eq!(lines[0]["service"], "beta@file");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[3]["cohort"], "main");
    assert!(lines[0]["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["server"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_edge_forwarded_headers_and_forwarded_host_routing() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let static_toml = STATIC.replace(
        "[admin]",
        "[entryPoints.web.forwardedHeaders]\ntrustedIPs = [\"127.0.0.1/32\", \"::1\"]\nuseForwardedHost = true\n[admin]",
    );
    let r = Router::start_with(&static_toml, &beta_main_config(&main.url(), &beta.url()));
    // The edge addresses the router by IP and says which host the client called.
    let headers = [
        ("X-Forwarded-Host", API),
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-Proto", "https"),
        ("X-RiksTV-Beta", "true"),
    ];
    let (status, body) = get(r.web, "127.0.0.1:8080", "/", &headers).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["server"], "beta");
    assert_eq!(v["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert_eq!(
        v["headers"]["host"], API,
        "passHostHeader sends the routed host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish() {
    let slow = Backend::start("slow").await;
    slow.slow_ms.store(700, std::sync::atomic::Ordering::SeqCst);
    let mut r = Router::start(&format!(
        "http:\n  routers:\n    r: {{rule: \"PathPrefix(`/`)\", service: s}}\n  services:\n    s: {{loadBalancer: {{servers: [{{url: \"{}\"}}]}}}}\n",
        slow.url()
    ));
    let web = r.web;
    let pending = tokio::spawn(async move { get(web, "h", "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = r.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (status, body) = pending.await.unwrap();
    assert_eq!((status, server_of(&body)), (200, "slow".to_owned()));
    let exit = tokio::task::spawn_blocking(move || r.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// A raw HTTP/1.1 backend that counts the connections it accepts. Once `close_idle_ms` is set
/// (0: never), it closes a keep-alive connection idle for that long, as backends with short idle
/// timeouts do.
async fn counting_backend() -> (String, Arc<AtomicUsize>, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let close_idle_ms = Arc::new(AtomicU64::new(0));
    let (count, limit) = (accepted.clone(), close_idle_ms.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let limit = limit.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut idle_ms = 0;
                loop {
                    let read =
                        tokio::time::timeout(Duration::from_millis(10), s.read(&mut chunk)).await;
                    let n = match read {
                        Ok(Ok(0) | Err(_)) => return,
                        Ok(Ok(n)) => n,
                        Err(_) => {
                            idle_ms += 10;
                            let l = limit.load(Ordering::SeqCst);
                            if l > 0 && idle_ms >= l {
                                return; // idle too long: close
                            }
                            continue;
                        }
                    };
                    idle_ms = 0;
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted, close_idle_ms)
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_connections_are_reused_and_closed_ones_replaced() {
    let (url, accepted, close_idle_ms) = counting_backend().await;
    let r = Router::start(&format!(
        r#"
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: one}}
  services:
    one: {{loadBalancer: {{servers: [{{url: "{url}"}}]}}}}
"#
    ));
    // Back to back on one raw client connection (a pooled client may open a second one, which
    // could land on another worker thread): one worker thread, so one backend connection.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(r.web).await.unwrap();
        for i in 0..30 {
            conn.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok")) {
                let n = conn.read(&mut chunk).await.unwrap();
                assert!(n > 0, "request {i}: connection closed");
                got.extend_from_slice(&chunk[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"), "request {i}");
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "keep-alive reused");
    // Now the backend closes idle connections after 50 ms: the router notices and connects
    // again instead of failing the request.
    close_idle_ms.store(50, Ordering::SeqCst);
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body) = get(r.web, "h", "/", &[]).await;
        assert_eq!((status, body.as_str()), (200, "ok"), "round {round}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 6);
}

/// An instance leaving (killed mid-traffic, then back, then killed again) costs no failed
/// request: requests that got no response are sent to the other server, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_leaving_costs_no_failed_request() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: Host(`h`)\n      service: pool\n  services:\n    pool:\n      loadBalancer:\n        servers:\n          - url: {}\n          - url: {}\n",
        a.url(),
        b.url()
    );
    let r = Router::start(&dynamic);
    let web = r.web;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            // One keep-alive client per task, as a load generator's connections.
            let c = client();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, body) = request(&c, web, "GET", "h", "/", &[], Bytes::new()).await;
                if s == 200 {
                    ok += 1;
                } else {
                    failed.push((s, body));
                }
            }
            (ok, failed)
        }));
    }
    let b_addr = b.addr.to_string();
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let b2 = Backend::start_on("b", &b_addr).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    b2.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        let (o, f) = c.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(ok > 500, "{ok} requests");
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_retries_total{service=\"pool@file\""),
        "{m}"
    );
    eprintln!(
        "{ok} requests, none failed; {}",
        m.lines()
            .filter(|l| l.starts_with("betaroute_retries_total"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// A client that goes away before its answer is logged with Traefik's 499, so metrics and the
/// judge count it.
#[tokio::test]
async fn a_client_gone_before_its_answer_is_logged_499() {
    let slow = Backend::start("slow").await;
    slow.slow_ms.store(900, std::sync::atomic::Ordering::SeqCst);
    let r = Router::start(
        &format!(
            "http:\n  routers:\n    r: {{rule: \"PathPrefix(`/`)\", service: s}}\n  services:\n    s: {{loadBalancer: {{servers: [{{url: \"{}\"}}]}}}}\n",
            slow.url()
        ),
    );
    let web = r.web;
    let gone = tokio::spawn(async move { get(web, "h", "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gone.abort();
    let mut logged = false;
    for _ in 0..50 {
        let log = std::fs::read_to_string(r.dir.join("access.log")).unwrap_or_default();
        if log.contains("\"status\":499") {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        logged,
        "{:?}",
        std::fs::read_to_string(r.dir.join("access.log"))
    );
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_requests_total{entrypoint=\"web\",router=\"r@file\",service=\"s@file\",cohort=\"main\",code=\"4xx\"} 1"),
        "{m}"
    );
}
