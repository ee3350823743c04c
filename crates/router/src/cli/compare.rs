//! `betaroute compare --admin URL [--json]`: the comparisons of a running router (its
//! `/api/comparisons`), as a table in the terminal or as JSON; `--prometheus URL` judges a fleet
//! of replicas from a Prometheus server instead (`fleet`).

use std::process::ExitCode;
use std::time::Duration;

use betaroute_core::stats::judge::Thresholds;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;

use super::error::{print_stdout, CliError};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["admin", "prometheus"])))]
pub struct Args {
    /// A router's admin address, e.g. http://127.0.0.1:8082: its judge's comparisons.
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// A Prometheus server scraping every router replica, e.g. http://127.0.0.1:9090: each
    /// comparison judged over the replicas' summed figures.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// With --prometheus: only this comparison (as the routers name it, e.g. api@file).
    #[arg(long, value_name = "NAME", requires = "prometheus")]
    comparison: Option<String>,
    /// With --prometheus: the window judged, up to now (a Go duration).
    #[arg(long, default_value = "1m", value_parser = duration, requires = "prometheus")]
    window: Duration,
    /// With --prometheus: the thresholds (a comparison's own live in the routers' files).
    #[arg(long, default_value_t = Thresholds::default().alpha, requires = "prometheus")]
    alpha: f64,
    #[arg(long, default_value_t = Thresholds::default().min_samples, requires = "prometheus")]
    min_samples: u64,
    /// Milliseconds.
    #[arg(long, default_value_t = Thresholds::default().latency_tolerance_ms, requires = "prometheus")]
    latency_tolerance: f64,
    #[arg(long, default_value_t = Thresholds::default().latency_tolerance_ratio, requires = "prometheus")]
    latency_tolerance_ratio: f64,
    #[arg(long, default_value_t = Thresholds::default().error_tolerance, requires = "prometheus")]
    error_tolerance: f64,
    /// Print the comparisons as JSON (what /api/comparisons answers).
    #[arg(long)]
    json: bool,
}

fn duration(s: &str) -> Result<Duration, String> {
    betaroute_router::config::read::parse_go_duration(s).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let list = match (&args.admin, &args.prometheus) {
        (Some(admin), _) => rt.block_on(from_admin(admin))?,
        (None, Some(prometheus)) => {
            let base = http_base("--prometheus", prometheus)?;
            let t = Thresholds {
                alpha: args.alpha,
                min_samples: args.min_samples,
                latency_tolerance_ms: args.latency_tolerance,
                latency_tolerance_ratio: args.latency_tolerance_ratio,
                error_tolerance: args.error_tolerance,
            };
            rt.block_on(super::fleet::compare(
                base,
                args.comparison.as_deref(),
                args.window,
                &t,
            ))?
        }
        (None, None) => unreachable!("clap requires one of --admin and --prometheus"),
    };
    if args.json {
        print_stdout(&format!("{}\n", Value::Array(list)))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_stdout(&table(&list))?;
    Ok(ExitCode::SUCCESS)
}

fn http_base<'a>(flag: &str, url: &'a str) -> Result<&'a str, CliError> {
    let base = url.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(CliError::usage(format!(
            "{flag} {base:?} must be an http:// URL"
        )));
    }
    Ok(base)
}

async fn from_admin(admin: &str) -> Result<Vec<Value>, CliError> {
    let url = format!("{}/api/comparisons", http_base("--admin", admin)?);
    let body = fetch(&url).await?;
    let list: Value = serde_json::from_str(&body)
        .map_err(|e| CliError::Runtime(format!("{url}: not JSON: {e}")))?;
    Ok(list.as_array().cloned().unwrap_or_default())
}

async fn fetch(url: &str) -> Result<String, CliError> {
    let (status, bytes) = get(url, Duration::from_secs(5)).await?;
    if !status.is_success() {
        return Err(CliError::Runtime(format!("{url} answered {status}")));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET url`: the status and the whole body.
pub(super) async fn get(
    url: &str,
    timeout: Duration,
) -> Result<(http::StatusCode, bytes::Bytes), CliError> {
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: http::Uri = url
        .parse()
        .map_err(|e| CliError::usage(format!("{url}: {e}")))?;
    let answer = tokio::time::timeout(timeout, client.get(uri))
        .await
        .map_err(|_| CliError::Runtime(format!("{url}: no answer within {} s", timeout.as_secs())))?
        .map_err(|e| CliError::Runtime(format!("{url}: {e}")))?;
    let status = answer.status();
    let bytes = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Runtime(format!("{url}: {e}")))?
        .to_bytes();
    Ok((status, bytes))
}

/// One line per comparison: its latest verdict and the numbers behind it.
fn table(list: &[Value]) -> String {
    let num = |v: &Value, d: usize| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.d$}"));
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_owned(), |x| format!("{:.2}%", 100.0 * x))
    };
    let p = |v: &Value| {
        v.as_f64().map_or("-".to_owned(), |x| {
            if x < 0.001 {
                format!("{x:.1e}")
            } else {
                format!("{x:.3}")
            }
        })
    };
    let mut rows = vec![[
        "comparison",
        "verdict",
        "beta req",
        "base req",
        "beta p50",
        "base p50",
        "beta p99",
        "base p99",
        "shift ms",
        "p latency",
        "beta 5xx",
        "base 5xx",
        "p 5xx",
        "beta",
    ]
    .map(str::to_owned)];
    for c in list {
        let l = &c["latest"];
        let (b, m) = (&l["beta"], &l["baseline"]);
        rows.push([
            c["name"].as_str().unwrap_or("?").to_owned(),
            l["verdict"].as_str().unwrap_or("none yet").to_owned(),
            num(&b["requests"], 0),
            num(&m["requests"], 0),
            num(&b["p50_ms"], 2),
            num(&m["p50_ms"], 2),
            num(&b["p99_ms"], 2),
            num(&m["p99_ms"], 2),
            num(&l["shift_ms"], 2),
            p(&l["latency_p"]),
            pct(&b["error_rate_5xx"]),
            pct(&m["error_rate_5xx"]),
            p(&l["error_p"]),
            if c["tripped"].is_null() {
                "on".into()
            } else {
                "off (judge)".into()
            },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for c in list {
        if let Some(reason) = c["tripped"]["reason"].as_str() {
            out.push_str(&format!(
                "{}: beta turned off by the judge: {reason}\n",
                c["name"].as_str().unwrap_or("?")
            ));
        }
        if let Some(reasons) = c["latest"]["reasons"].as_array() {
            let text: Vec<&str> = reasons.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!(
                "{}: {}\n",
                c["name"].as_str().unwrap_or("?"),
                text.join("; ")
            ));
        }
    }
    if list.is_empty() {
        out.push_str("no comparisons configured (http.comparisons)\n");
    }
    out
}
