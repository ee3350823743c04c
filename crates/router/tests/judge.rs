//! The judge over real traffic: the real binary in front of two real backends, beta 30 % slower
//! (or not at all), `http.comparisons` judging every 500 ms over the last 2 s.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn config(main: &str, beta: &str, webhook: &str) -> String {
    format!(
        r#"{}
  comparisons:
    api:
      beta: api-beta
      baseline: api-main
      interval: 500ms
      window: 2s
      minSamples: 100
      failureThreshold: 2
      webhook: "{webhook}"
"#,
        beta_main_config(main, beta).trim_end()
    )
}

/// Polls the comparison until the judge has turned beta off (10 s at most).
async fn wait_tripped(r: &Router) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    loop {
        let c = comparison(r).await;
        if !c["tripped"].is_null() {
            return (c, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not tripped in 10 s: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook receiver: the bodies it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        sink.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok"))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, got)
}

/// Beta and main requests from 16 keep-alive clients until `stop`.
fn load(r: &Router, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u32>> {
    let web = r.web;
    (0..16)
        .map(|i| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let c = client();
                let mut failed = 0;
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let beta: &[(&str, &str)] = if (n + i).is_multiple_of(2) {
                        &[("x-rikstv-beta", "true")]
                    } else {
                        &[]
                    };
                    let (s, _) = request(
                        &c,
                        web,
                        "GET",
                        "api.example.com",
                        "/slow",
                        beta,
                        Bytes::new(),
                    )
                    .await;
                    failed += u32::from(s != 200);
                    n += 1;
                }
                failed
            })
        })
        .collect()
}

async fn comparison(r: &Router) -> serde_json::Value {
    serde_json::from_str(&r.admin_get("/api/comparisons/api@file").await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beta_30_percent_slower_is_turned_off_by_the_judge() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    main.slow_ms.store(10, Ordering::SeqCst);
    beta.slow_ms.store(13, Ordering::SeqCst);
    let (hook, hooked) = receiver().await;
    let r = Router::start(&config(&main.url(), &beta.url(), &hook));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&r, stop.clone());
    let (tripped, took) = wait_tripped(&r).await;
    eprintln!("tripped after {:?}: {}", took, tripped["tripped"]["reason"]);
    assert_eq!(tripped["latest"]["verdict"], "fail", "{tripped}");
    let shift = tripped["latest"]["shift_ms"].as_f64().unwrap();
    assert!((2.0..4.5).contains(&shift), "shift {shift}");
    // Beta traffic goes to main now: the kill switch is off, by the judge (the API says so).
    let (_, body) = get(r.web, "api.example.com", "/", &[("x-rikstv-beta", "true")]).await;
    assert_eq!(server_of(&body), "main");
    let switch = r.admin_get("/api/cohorts/beta").await;
    assert!(
        switch.contains("\"enabled\":false") && switch.contains("\"source\":\"api\""),
        "{switch}"
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.await.unwrap(), 0, "failed requests");
    }
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_judge_trips_total{comparison=\"api@file\"} 1"),
        "{m}"
    );
    assert!(m.contains("betaroute_beta_enabled 0"), "{m}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The same in the terminal.
    let cli = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
            .args(["compare", "--admin", &format!("http://{}", r.admin)])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = cli(&[]);
    assert!(table.starts_with("comparison"), "{table}");
    assert!(
        table.contains("api@file") && table.contains("fail") && table.contains("off (judge)"),
        "{table}"
    );
    assert!(
        table.contains("beta turned off by the judge: 2 consecutive failed verdicts"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&cli(&["--json"])).unwrap();
    assert_eq!(json[0]["name"], "api@file");
    // The dashboard is served, with its script and a strict content policy.
    let (status, page) = get(r.admin, "admin", "/dashboard", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/dashboard.js\">"), "{page}");
    let (status, js) = get(r.admin, "admin", "/dashboard.js", &[]).await;
    assert_eq!(status, 200);
    assert!(js.contains("/api/comparisons"));
    let bodies = hooked.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(
        bodies[0].contains("beta turned off") && bodies[0].contains("\"comparison\":\"api@file\""),
        "{}",
        bodies[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_pair_is_never_turned_off_and_low_traffic_is_inconclusive() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    main.slow_ms.store(10, Ordering::SeqCst);
    beta.slow_ms.store(10, Ordering::SeqCst);
    let r = Router::start(&config(&main.url(), &beta.url(), "http://127.0.0.1:9/none"));
    // A few requests only: inconclusive, never pass.
    for _ in 0..5 {
        get(
            r.web,
            "api.example.com",
            "/slow",
            &[("x-rikstv-beta", "true")],
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let c = comparison(&r).await;
    assert_eq!(c["latest"]["verdict"], "inconclusive", "{c}");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&r, stop.clone());
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.await.unwrap(), 0);
    }
    let c = comparison(&r).await;
    let verdicts: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["verdict"].as_str().unwrap())
        .collect();
    let fails = verdicts.iter().filter(|v| **v == "fail").count();
    eprintln!(
        "identical pair: {} verdicts, {fails} fail: {verdicts:?}",
        verdicts.len()
    );
    assert!(c["tripped"].is_null(), "{c}");
    assert!(
        verdicts.iter().filter(|v| **v == "pass").count() >= 5,
        "{verdicts:?}"
    );
    let (_, body) = get(r.web, "api.example.com", "/", &[("x-rikstv-beta", "true")]).await;
    assert_eq!(server_of(&body), "beta");
}

/// A backend answering 500 to every `every`-th request (and 200 to the others, after 2 ms).
async fn failing_backend(every: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let n = n.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                    let i = n.fetch_add(1, Ordering::Relaxed) + 1;
                    async move {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let mut r =
                            hyper::Response::new(Full::new(Bytes::from("{\"server\":\"beta\"}")));
                        if i.is_multiple_of(every) {
                            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beta_answering_2_percent_5xx_is_turned_off() {
    let main = Backend::start("main").await;
    main.slow_ms.store(2, Ordering::SeqCst);
    let beta = failing_backend(50).await;
    let r = Router::start(&config(&main.url(), &beta, "http://127.0.0.1:9/none"));
    let stop = Arc::new(AtomicBool::new(false));
    // Its 5xx answers count as failed requests in the load's tally: expected here.
    let clients = load(&r, stop.clone());
    let (tripped, took) = wait_tripped(&r).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    eprintln!(
        "5xx: tripped after {:?}: {}",
        took, tripped["tripped"]["reason"]
    );
    let reason = tripped["tripped"]["reason"].as_str().unwrap();
    assert!(reason.contains("answers 5xx more often"), "{reason}");
    let rate = tripped["latest"]["beta"]["error_rate_5xx"]
        .as_f64()
        .unwrap();
    assert!((0.015..0.025).contains(&rate), "{rate}");
}
