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

/// A webhook receiver: the bodies it was sent. With `tls` (a directory holding `pki`'s files),
/// it speaks https with the test CA's server certificate.
async fn receiver(tls: Option<&std::path::Path>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!(
        "{scheme}://{}/hook?token=s3cret",
        listener.local_addr().unwrap()
    );
    let acceptor = tls.map(|dir| {
        use rustls::pki_types::pem::PemObject;
        let chain: Vec<_> =
            rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sink = sink.clone();
            let acceptor = acceptor.clone();
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
                match acceptor {
                    Some(a) => {
                        let Ok(tls) = a.accept(stream).await else {
                            return;
                        };
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    }
                }
            });
        }
    });
    (url, got)
}

/// Beta and main requests from 16 keep-alive clients until `stop`.
fn load(r: &Router, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u32>> {
    const BETA: &[(&str, &str)] = &[("x-rikstv-beta", "true")];
    load_mix(r, 16, &["api.example.com"], &[BETA, &[]], stop)
}

type Headers = &'static [(&'static str, &'static str)];

/// Requests to `/slow` from `clients` keep-alive clients until `stop`, going round the hosts and,
/// per host, round the header sets; each client's failed (non-200) requests are returned.
fn load_mix(
    r: &Router,
    clients: u32,
    hosts: &[&str],
    mix: &[Headers],
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u32>> {
    let web = r.web;
    let hosts: Arc<Vec<String>> = Arc::new(hosts.iter().map(|h| h.to_string()).collect());
    let mix: Arc<Vec<Headers>> = Arc::new(mix.to_vec());
    (0..clients)
        .map(|i| {
            let (stop, hosts, mix) = (stop.clone(), hosts.clone(), mix.clone());
            tokio::spawn(async move {
                let c = client();
                let mut failed = 0;
                let mut n = i as usize;
                while !stop.load(Ordering::Relaxed) {
                    let host = &hosts[n % hosts.len()];
                    let headers = mix[(n / hosts.len() + i as usize) % mix.len()];
                    let (s, _) =
                        request(&c, web, "GET", host, "/slow", headers, Bytes::new()).await;
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
    let (hook, hooked) = receiver(None).await;
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
    // The webhook over https, its server verified against the test CA (as system roots).
    let pki_dir = temp_dir();
    pki(&pki_dir);
    let (hook, hooked) = receiver(Some(&pki_dir)).await;
    let ca = pki_dir.join("ca.pem");
    let r = Router::start_env(
        STATIC,
        &config(&main.url(), &beta, &hook),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
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
    for _ in 0..40 {
        if !hooked.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = hooked.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "https webhook: {bodies:?}\n{}", r.stderr());
    assert!(
        bodies[0].contains("answers 5xx more often"),
        "{}",
        bodies[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_is_logged_without_its_secret() {
    let main = Backend::start("main").await;
    main.slow_ms.store(2, Ordering::SeqCst);
    let beta = failing_backend(10).await;
    // An https receiver whose certificate the router does not trust (no SSL_CERT_FILE).
    let pki_dir = temp_dir();
    pki(&pki_dir);
    let (hook, hooked) = receiver(Some(&pki_dir)).await;
    let r = Router::start(&config(&main.url(), &beta, &hook));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&r, stop.clone());
    wait_tripped(&r).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let port = hook.split(':').nth(2).unwrap().split('/').next().unwrap();
    let logged = loop {
        let out = r.stdout();
        if let Some(line) = out.lines().find(|l| l.contains("webhook to")) {
            break line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(logged.contains("webhook to https://127.0.0.1:"), "{logged}");
    assert!(
        logged.contains("certificate"),
        "the cause is named: {logged}"
    );
    assert!(
        !logged.contains("s3cret") && !logged.contains(port),
        "{logged}"
    );
    assert!(hooked.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_baseline_beta_is_compared_with_its_main_router_then_its_holdback() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    main.slow_ms.store(2, Ordering::SeqCst);
    beta.slow_ms.store(2, Ordering::SeqCst);
    let dynamic = format!(
        "{}\n  comparisons:\n    api:\n      beta: api-beta\n      interval: 300ms\n      window: 1200ms\n      minSamples: 50\n",
        beta_main_config(&main.url(), &beta.url()).trim_end()
    );
    let served_by = format!("{STATIC}\n[cohort]\nservedByHeader = \"X-BetaRoute-Served-By\"\n");
    let r = Router::start_with(&served_by, &dynamic);
    let c = comparison(&r).await;
    assert_eq!(c["baseline"], "api-main@file", "{c}");
    assert_eq!(c["baseline_default"], true);

    // The opt-in header names the pool that answered; never a server address.
    let served = |headers: &'static [(&'static str, &'static str)]| async move {
        let req =
            hyper::Request::get(format!("http://{}/", r.web)).header("host", "api.example.com");
        let req = headers.iter().fold(req, |q, (k, v)| q.header(*k, *v));
        let resp = client()
            .request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let all: Vec<String> = resp
            .headers()
            .get_all("x-betaroute-served-by")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        all
    };
    assert_eq!(served(&[("x-rikstv-beta", "true")]).await, ["beta@file"]);
    assert_eq!(served(&[]).await, ["main@file"]);

    // Main requests alone: judged against the main router.
    const BETA: Headers = &[("x-rikstv-beta", "true")];
    const HOLDBACK: Headers = &[("x-betaroute-cohort", "holdback")];
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load_mix(&r, 8, &["api.example.com"], &[BETA, &[]], stop.clone());
    r.wait_admin("/api/comparisons/api@file", 10, |s| {
        s.contains("\"verdict\":\"pass\",\"against\":\"baseline\"")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.await.unwrap(), 0);
    }
    // With holdback requests (users kept off beta on purpose) enough to judge by: against them.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load_mix(&r, 8, &["api.example.com"], &[BETA, HOLDBACK], stop.clone());
    r.wait_admin("/api/comparisons/api@file", 10, |s| {
        let c: serde_json::Value = serde_json::from_str(s).unwrap();
        c["against"] == "holdback" && c["latest"]["baseline"]["requests"].as_u64() >= Some(50)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.await.unwrap(), 0);
    }
    let m = r.admin_get("/metrics").await;
    for side in ["beta", "baseline", "holdback"] {
        assert!(
            m.contains(&format!("betaroute_judge_requests_total{{comparison=\"api@file\",side=\"{side}\",code=\"2xx\"}}")),
            "{side}: {m}"
        );
    }
    assert!(m.contains("betaroute_judge_latency_seconds_bucket{comparison=\"api@file\",side=\"beta\",le=\"+Inf\"}"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_baseline_and_no_main_router_the_check_says_so() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["check", "--dynamic"])
        .arg({
            let d = temp_dir();
            let f = d.join("dynamic.yaml");
            std::fs::write(&f, "http:\n  routers:\n    b: {rule: \"Host(`a`) && Header(`X-RiksTV-Beta`, `true`)\", service: s}\n  services:\n    s: {loadBalancer: {servers: [{url: \"http://127.0.0.1:1\"}]}}\n  comparisons:\n    c: {beta: b}\n").unwrap();
            f
        })
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("comparison c@file: no baseline configured, and no router has the rule of b@file without its Header(..., `true`)"),
        "{text}"
    );
}

/// Fifty comparisons of identical pairs judged side by side in one router: fifty independent
/// runs at once. Counts the failed verdicts (false positives) over real traffic; none may trip.
/// Windows do not overlap (window = interval), so verdicts are independent and three failures in
/// a row at a rate of a few in a thousand do not happen by chance; overlapping windows repeat
/// one unlucky stretch of traffic in consecutive verdicts (see README, Assumptions). Windows of
/// 2 s: on 2 cores the debug router, its clients and backends share, one hundred routers get
/// about 20 requests a second each, below minSamples in 1 s windows.
#[derive(Default)]
struct Tally {
    verdicts: usize,
    fails: usize,
    judged: usize,
    longest: usize,
}

/// Counts every comparison's verdicts; an identical pair that tripped fails the test at once.
async fn tally_verdicts(r: &Router) -> Tally {
    let all: serde_json::Value =
        serde_json::from_str(&r.admin_get("/api/comparisons").await).unwrap();
    let mut t = Tally::default();
    for c in all.as_array().unwrap() {
        assert!(c["tripped"].is_null(), "an identical pair tripped: {c}");
        let mut run = 0;
        for h in c["history"].as_array().unwrap() {
            t.verdicts += 1;
            match h["verdict"].as_str().unwrap() {
                "fail" => {
                    t.fails += 1;
                    run += 1;
                    t.longest = t.longest.max(run);
                }
                "inconclusive" => {}
                _ => {
                    t.judged += 1;
                    run = 0;
                }
            }
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_pairs_never_trip() {
    const N: usize = 50;
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    main.slow_ms.store(1, Ordering::SeqCst);
    beta.slow_ms.store(1, Ordering::SeqCst);
    let mut y = String::from("http:\n  routers:\n");
    for i in 0..N {
        y += &format!("    m{i}: {{rule: \"Host(`h{i}.example.com`)\", service: main}}\n    b{i}: {{rule: \"Host(`h{i}.example.com`) && Header(`X-RiksTV-Beta`, `true`)\", service: beta}}\n");
    }
    y += &format!("  services:\n    main: {{loadBalancer: {{servers: [{{url: \"{}\"}}]}}}}\n    beta: {{loadBalancer: {{servers: [{{url: \"{}\"}}]}}}}\n  comparisons:\n", main.url(), beta.url());
    for i in 0..N {
        y += &format!("    c{i}: {{beta: b{i}, interval: 2s, window: 2s, minSamples: 25, failureThreshold: 3}}\n");
    }
    let r = Router::start(&y);
    let hosts: Vec<String> = (0..N).map(|i| format!("h{i}.example.com")).collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    const BETA: Headers = &[("x-rikstv-beta", "true")];
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load_mix(&r, 24, &hosts, &[BETA, &[]], stop.clone());
    // Traffic runs until the judges have reached enough conclusive verdicts (how long that
    // takes depends on the machine: a loaded CI runner serves fewer requests a window), with
    // a generous bound so a judge that never concludes still fails the test.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut tally = Tally::default();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        tally = tally_verdicts(&r).await;
        if tally.judged >= N * 5 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert_eq!(c.await.unwrap(), 0);
    }
    let Tally {
        verdicts,
        fails,
        judged,
        longest,
    } = tally;
    eprintln!("fifty identical pairs: {verdicts} verdicts, {judged} pass or marginal, {fails} fail, longest run of fails {longest}");
    assert!(
        judged >= N * 5,
        "too few conclusive verdicts: {judged} of {verdicts}"
    );
    // Each fail needs a one-sided test significant at alpha 0.01 and a shift past the
    // tolerance, so about 1 in 100 conclusive verdicts of an identical pair; binomially, more
    // than 3 in 100 (plus 5 for small counts) happens by chance far less than once in 10^4 runs.
    assert!(
        fails * 100 <= 3 * judged + 500,
        "{fails} failed verdicts of {judged} conclusive ({verdicts} in all)"
    );
}
