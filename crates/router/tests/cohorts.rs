//! The router's beta kill switch and cohort labels, over the real binary and real backends:
//! `cohorts.beta.enabled` in the dynamic configuration (file edit, under load), the admin API
//! (`PUT /api/cohorts/beta`, authenticated), and the holdback label in metrics.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;

const BETA: (&str, &str) = ("x-rikstv-beta", "true");

fn with_token(dir_token: Option<&str>) -> (String, std::path::PathBuf) {
    let dir = temp_dir();
    let admin = match dir_token {
        Some(t) => {
            std::fs::write(dir.join("admin-token"), format!("{t}\n")).unwrap();
            format!(
                "address = \"127.0.0.1:0\"\ntokenFile = \"{}\"",
                dir.join("admin-token").display()
            )
        }
        None => "address = \"127.0.0.1:0\"".to_owned(),
    };
    let st = STATIC.replace(
        "[admin]\naddress = \"127.0.0.1:0\"",
        &format!("[admin]\n{admin}"),
    );
    (st, dir)
}

fn beta_main_with_switch(main: &str, beta: &str, enabled: Option<bool>) -> String {
    let mut y = beta_main_config(main, beta);
    if let Some(e) = enabled {
        y.push_str(&format!("cohorts:\n  beta:\n    enabled: {e}\n"));
    }
    y
}

async fn served(r: &Router, headers: &[(&str, &str)]) -> String {
    let (status, body) = get(r.web, "api.example.com", "/", headers).await;
    assert_eq!(status, 200, "{body}");
    server_of(&body)
}

async fn admin(
    r: &Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    request(
        &client(),
        r.admin,
        method,
        "admin",
        path,
        &headers,
        Bytes::from(body.to_owned()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_sends_beta_to_main_within_a_second_without_a_failed_request() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    let token = "load-test-admin-token-0123456789";
    let (st, _) = with_token(Some(token));
    let r = Router::start_with(&st, &beta_main_with_switch(&main.url(), &beta.url(), None));
    assert_eq!(served(&r, &[BETA]).await, "beta");

    // Load of beta requests on keep-alive connections while the switch is flipped twice.
    let stop = Arc::new(AtomicBool::new(false));
    let web = r.web;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let c = client();
            let mut failed = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (s, body) = request(
                    &c,
                    web,
                    "GET",
                    "api.example.com",
                    "/",
                    &[BETA],
                    Bytes::new(),
                )
                .await;
                n += 1;
                if s != 200 {
                    failed.push((s, body));
                }
            }
            (n, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.write_dynamic(&beta_main_with_switch(
        &main.url(),
        &beta.url(),
        Some(false),
    ));
    let flipped = Instant::now();
    while served(&r, &[BETA]).await != "main" {
        assert!(
            flipped.elapsed() < Duration::from_secs(1),
            "beta still served 1 s after cohorts.beta.enabled: false\n{}",
            r.stderr()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("file kill switch took effect after {:?}", flipped.elapsed());
    // It stays off.
    for _ in 0..20 {
        assert_eq!(served(&r, &[BETA]).await, "main");
    }
    r.write_dynamic(&beta_main_with_switch(&main.url(), &beta.url(), Some(true)));
    let back = Instant::now();
    while served(&r, &[BETA]).await != "beta" {
        assert!(back.elapsed() < Duration::from_secs(1), "beta not back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The API switch, still under load: the very next request is main, and back.
    let (s, body) = admin(
        &r,
        "PUT",
        "/api/cohorts/beta",
        Some(token),
        r#"{"enabled": false}"#,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(served(&r, &[BETA]).await, "main");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, body) = admin(&r, "DELETE", "/api/cohorts/beta", Some(token), "").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(served(&r, &[BETA]).await, "beta");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut total, mut failed) = (0, Vec::new());
    for c in clients {
        let (n, f) = c.await.unwrap();
        total += n;
        failed.extend(f);
    }
    assert!(total > 100, "{total} requests");
    assert!(
        failed.is_empty(),
        "{} of {total} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let m = r.admin_get("/metrics").await;
    let overridden = m
        .lines()
        .find(|l| l.starts_with("betaroute_cohort_overrides_total{entrypoint=\"web\",cohort=\"beta\",reason=\"kill_switch\"}"))
        .unwrap_or_else(|| panic!("no override counted:\n{m}"));
    assert!(!overridden.ends_with(" 0"), "{overridden}");
    assert!(m.contains("betaroute_beta_enabled 1"), "{m}");
    let api = r.admin_get("/api/cohorts").await;
    assert!(
        api.contains("\"source\":\"config\"") && api.contains("\"enabled\":true"),
        "{api}"
    );
}

#[tokio::test]
async fn the_api_switch_needs_the_admin_token_and_wins_until_deleted() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    let token = "s3cret-admin-token-0123456789";
    let (st, _) = with_token(Some(token));
    let r = Router::start_with(&st, &beta_main_with_switch(&main.url(), &beta.url(), None));

    let off = r#"{"enabled": false}"#;
    assert_eq!(
        admin(&r, "PUT", "/api/cohorts/beta", None, off).await.0,
        401
    );
    assert_eq!(
        admin(
            &r,
            "PUT",
            "/api/cohorts/beta",
            Some("wrong-token-0123456789"),
            off
        )
        .await
        .0,
        401
    );
    assert_eq!(
        served(&r, &[BETA]).await,
        "beta",
        "a refused call changed nothing"
    );
    let (s, body) = admin(
        &r,
        "PUT",
        "/api/cohorts/beta",
        Some(token),
        r#"{"enabled": "no"}"#,
    )
    .await;
    assert_eq!((s, body.contains("true or false")), (400, true), "{body}");

    let (s, body) = admin(&r, "PUT", "/api/cohorts/beta", Some(token), off).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("\"enabled\":false") && body.contains("\"source\":\"api\""),
        "{body}"
    );
    // Immediately: the very next request.
    assert_eq!(served(&r, &[BETA]).await, "main");
    assert!(r
        .admin_get("/metrics")
        .await
        .contains("betaroute_beta_enabled 0"));
    let log = r.stderr() + &std::fs::read_to_string(r.dir.join("access.log")).unwrap_or_default();
    assert!(!log.contains(token), "the admin token was logged");

    // A configuration that says on does not override the API's off...
    r.write_dynamic(&beta_main_with_switch(&main.url(), &beta.url(), Some(true)));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(served(&r, &[BETA]).await, "main");
    // ...until the override is deleted.
    let (s, body) = admin(&r, "DELETE", "/api/cohorts/beta", Some(token), "").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"source\":\"config\""), "{body}");
    assert_eq!(served(&r, &[BETA]).await, "beta");
    assert_eq!(
        admin(&r, "POST", "/api/cohorts/beta", Some(token), off)
            .await
            .0,
        405
    );
}

#[tokio::test]
async fn without_an_admin_token_write_endpoints_are_refused() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    let r = Router::start(&beta_main_with_switch(&main.url(), &beta.url(), None));
    let (s, body) = admin(
        &r,
        "PUT",
        "/api/cohorts/beta",
        Some("anything-at-all-0123"),
        r#"{"enabled": false}"#,
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("admin.tokenFile"), "{body}");
    assert_eq!(served(&r, &[BETA]).await, "beta");
    // Reads stay open.
    assert!(r
        .admin_get("/api/cohorts/beta")
        .await
        .contains("\"source\":\"default\""));
}

#[test]
fn a_short_admin_token_is_a_located_error() {
    let (st, dir) = with_token(Some("short"));
    std::fs::write(dir.join("betaroute.toml"), &st).unwrap();
    std::fs::write(dir.join("dynamic.yaml"), "http: {}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["check", "--config"])
        .arg(dir.join("betaroute.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("admin: tokenFile") && err.contains("at least 16"),
        "{err}"
    );
    assert!(err.contains("betaroute.toml:"), "not located: {err}");
    assert!(!err.contains("short"), "the token itself is printed: {err}");
}

#[tokio::test]
async fn holdback_is_counted_apart_and_routed_as_main() {
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    let r = Router::start(&beta_main_with_switch(&main.url(), &beta.url(), None));
    assert_eq!(
        served(&r, &[("x-betaroute-cohort", "holdback")]).await,
        "main"
    );
    assert_eq!(
        served(&r, &[("x-betaroute-cohort", "holdback")]).await,
        "main"
    );
    assert_eq!(served(&r, &[BETA]).await, "beta");
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_requests_total{entrypoint=\"web\",router=\"api-main@file\",service=\"main@file\",cohort=\"holdback\",code=\"2xx\"} 2"),
        "{m}"
    );
    // The access log is written by its own task: the line comes shortly after the answer.
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(r.dir.join("access.log")).unwrap_or_default();
        if log.contains("\"cohort\":\"holdback\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log.contains("\"cohort\":\"holdback\""), "{log}");
}

#[test]
fn route_explain_honours_the_kill_switch_of_a_policy_and_of_the_configuration() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("dynamic.yaml"),
        beta_main_with_switch("http://127.0.0.1:1", "http://127.0.0.1:2", None),
    )
    .unwrap();
    std::fs::write(dir.join("off.json"), r#"{"beta": "off"}"#).unwrap();
    let explain = |extra: &[&str], file: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
            .args(["route", "explain", "--config"])
            .arg(dir.join(file))
            .args(extra)
            .args(["-H", "X-RiksTV-Beta: true", "http://api.example.com/"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["router"].as_str().unwrap_or_default().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(explain(&[], "dynamic.yaml").0, "api-beta@file");
    let policy = dir.join("off.json").display().to_string();
    let (router, err) = explain(&["--policy", &policy], "dynamic.yaml");
    assert_eq!(router, "api-main@file");
    assert!(err.contains("beta is off"), "{err}");
    std::fs::write(
        dir.join("off.yaml"),
        beta_main_with_switch("http://127.0.0.1:1", "http://127.0.0.1:2", Some(false)),
    )
    .unwrap();
    let (router, err) = explain(&[], "off.yaml");
    assert_eq!(router, "api-main@file");
    assert!(err.contains("cohorts.beta.enabled is false"), "{err}");
}
