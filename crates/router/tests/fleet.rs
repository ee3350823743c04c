//! Fleet mode: two router replicas behind one load, a real Prometheus (Debian's `prometheus`)
//! scraping both, and `betaroute compare --prometheus` judging each comparison over the
//! replicas' summed figures.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;

const PROMETHEUS: &str = "prometheus";

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `targets` every second; waits until it is ready.
async fn prometheus(targets: &[SocketAddr]) -> Prometheus {
    let dir = temp_dir();
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: betaroute\n    static_configs: [{{targets: [{}]}}]\n",
        list.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(PROMETHEUS)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {PROMETHEUS} ({e}): scripts/install.sh installs Debian's prometheus")
        });
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    loop {
        let uri: hyper::Uri = format!("http://{addr}/-/ready").parse().unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(1), client().get(uri)).await;
        if matches!(ready, Ok(Ok(ref r)) if r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "prometheus not ready: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Ready is not scraping: target discovery hands the targets over about 5 s later. Counts
    // before a series' first scrape are not in any increase().
    let query = format!("http://{addr}/api/v1/query?query=sum(up)");
    loop {
        let resp = client().get(query.parse().unwrap()).await.unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["data"]["result"][0]["value"][1] == targets.len().to_string().as_str() {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "targets not scraped: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config(main: &str, slow: &str) -> String {
    format!(
        r#"
http:
  routers:
    slow-main: {{rule: "Host(`slow.example.com`)", service: main}}
    slow-beta: {{rule: "Host(`slow.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: slow}}
    same-main: {{rule: "Host(`same.example.com`)", service: main}}
    same-beta: {{rule: "Host(`same.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: main}}
  services:
    main: {{loadBalancer: {{servers: [{{url: "{main}"}}]}}}}
    slow: {{loadBalancer: {{servers: [{{url: "{slow}"}}]}}}}
  comparisons:
    slow: {{beta: slow-beta, interval: 1s, window: 5s, minSamples: 50, failureThreshold: 1000}}
    same: {{beta: same-beta, interval: 1s, window: 5s, minSamples: 50, failureThreshold: 1000}}
"#
    )
}

/// The beta requests a replica's judge counted for `comparison`.
fn beta_requests(metrics: &str, comparison: &str) -> u64 {
    let prefix = format!(
        "betaroute_judge_requests_total{{comparison=\"{comparison}\",side=\"beta\",code=\"2xx\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_judges_two_replicas_through_prometheus() {
    let (main, slow) = (Backend::start("main").await, Backend::start("slow").await);
    main.slow_ms.store(10, Ordering::SeqCst);
    slow.slow_ms.store(13, Ordering::SeqCst);
    let dynamic = config(&main.url(), &slow.url());
    let replicas = [Router::start(&dynamic), Router::start(&dynamic)];
    let prom = prometheus(&[replicas[0].admin, replicas[1].admin]).await;

    // Every client goes round both replicas, both hosts, beta and main.
    let stop = Arc::new(AtomicBool::new(false));
    let webs = [replicas[0].web, replicas[1].web];
    let clients: Vec<_> = (0..16usize)
        .map(|i| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let c = client();
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    let host = ["slow.example.com", "same.example.com"][n % 2];
                    let beta: &[(&str, &str)] = if (n / 2) % 2 == 0 {
                        &[("x-rikstv-beta", "true")]
                    } else {
                        &[]
                    };
                    let (s, _) = request(
                        &c,
                        webs[(n / 4) % 2],
                        "GET",
                        host,
                        "/slow",
                        beta,
                        Bytes::new(),
                    )
                    .await;
                    assert_eq!(s, 200);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    // Two more scrapes, so Prometheus has the final counts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut own = 0;
    for r in &replicas {
        let n = beta_requests(&r.admin_get("/metrics").await, "slow@file");
        assert!(n > 100, "each replica served beta requests: {n}");
        own += n;
    }

    let cli = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_betaroute"))
            .args([
                "compare",
                "--prometheus",
                &prom.url,
                "--window",
                "30s",
                "--min-samples",
                "100",
            ])
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
    let all: serde_json::Value = serde_json::from_str(&cli(&["--json"])).unwrap();
    eprintln!("fleet: {all:#}");
    let by = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {all}"))
            .clone()
    };
    let (slow_c, same_c) = (by("slow@file"), by("same@file"));
    assert_eq!(slow_c["replicas"], 2, "{slow_c}");
    assert_eq!(slow_c["source"], "prometheus");
    assert_eq!(slow_c["against"], "baseline");
    // Both replicas' requests, summed (Prometheus extrapolates increase() a little).
    let counted = slow_c["latest"]["beta"]["requests"].as_u64().unwrap();
    assert!(
        counted as f64 > own as f64 * 0.8 && (counted as f64) < own as f64 * 1.2,
        "Prometheus counted {counted} beta requests, the replicas {own}"
    );
    assert_eq!(slow_c["latest"]["verdict"], "fail", "{slow_c}");
    let shift = slow_c["latest"]["shift_ms"].as_f64().unwrap();
    assert!(
        (1.5..6.0).contains(&shift),
        "shift {shift} (true: 3 ms, known to a bucket)"
    );
    assert_ne!(same_c["latest"]["verdict"], "fail", "{same_c}");
    assert_ne!(same_c["latest"]["verdict"], "inconclusive", "{same_c}");

    // The same as a table, one comparison.
    let table = cli(&["--comparison", "slow@file"]);
    assert!(table.starts_with("comparison"), "{table}");
    assert!(
        table.contains("slow@file") && table.contains("fail"),
        "{table}"
    );
    assert!(!table.contains("same@file"), "{table}");
}

#[test]
fn compare_names_a_prometheus_that_does_not_answer() {
    let out = Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["compare", "--prometheus", &dead_url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("betaroute: http://127.0.0.1:"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["compare", "--window", "5s"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither --admin nor --prometheus"
    );
}
