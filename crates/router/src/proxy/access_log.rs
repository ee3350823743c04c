//! The access log: one line per request, JSON (default) or Common Log Format, written by a
//! background task so the request path never waits on the disk.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::config::static_config::AccessLog as AccessLogCfg;

/// What is logged of one request.
pub struct Entry<'a> {
    pub entry_point: &'a str,
    pub router: Option<&'a str>,
    pub service: Option<&'a str>,
    pub server: Option<&'a str>,
    pub cohort: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub client: IpAddr,
}

pub struct AccessLog {
    tx: UnboundedSender<String>,
    json: bool,
}

impl AccessLog {
    pub fn spawn(cfg: &AccessLogCfg) -> AccessLog {
        let (tx, mut rx) = unbounded_channel::<String>();
        let file: Option<PathBuf> = cfg.file.clone();
        tokio::spawn(async move {
            let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match file {
                Some(p) => match tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .await
                {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        eprintln!(
                            "{}",
                            json!({"betaroute": "accesslog", "level": "error", "message": format!("{}: {e}", p.display())})
                        );
                        Box::new(tokio::io::stdout())
                    }
                },
                None => Box::new(tokio::io::stdout()),
            };
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(line) = rx.recv().await {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                // Write whatever has queued up in one go.
                while let Ok(more) = rx.try_recv() {
                    buf.extend_from_slice(more.as_bytes());
                    buf.push(b'\n');
                    if buf.len() > 256 * 1024 {
                        break;
                    }
                }
                let _ = out.write_all(&buf).await;
                let _ = out.flush().await;
                buf.clear();
            }
        });
        AccessLog { tx, json: cfg.json }
    }

    pub fn record(&self, e: Entry<'_>) {
        let line = if self.json {
            json!({
                "time": humantime_now(),
                "entrypoint": e.entry_point,
                "router": e.router,
                "service": e.service,
                "server": e.server,
                "cohort": e.cohort,
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "duration_ms": e.duration_ms,
                "client": e.client.to_string(),
            })
            .to_string()
        } else {
            // Common Log Format, then Traefik's extra fields (router, server, duration) and the cohort.
            format!(
                "{} - - [{}] \"{} {} HTTP/1.1\" {} - \"-\" \"-\" \"{}\" \"{}\" {}ms cohort={}",
                e.client,
                humantime_now(),
                e.method,
                e.path,
                e.status,
                e.router.unwrap_or("-"),
                e.server.unwrap_or("-"),
                e.duration_ms.round() as u64,
                e.cohort
            )
        };
        let _ = self.tx.send(line);
    }
}

/// RFC 3339 UTC time with milliseconds, without a date crate.
fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
