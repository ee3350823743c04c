//! `betaroute route explain`: which router a request would take (the CLI contract in BRIEF.md).

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use betaroute_core::rules::{Router, Rule, SimpleRequest, Table};
use serde_json::json;

use crate::error::CliError;
use betaroute_router::config::{self, ConfigErrors};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "rule"])))]
pub struct ExplainArgs {
    /// Dynamic configuration (http.routers/services), or a static one whose providers name it.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// A single rule to test (the router is named "cli").
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,
    /// Priority of the --rule router.
    #[arg(long, requires = "rule", allow_negative_numbers = true)]
    priority: Option<i64>,
    #[arg(long, default_value = "GET")]
    method: String,
    #[arg(long = "client-ip", default_value = "127.0.0.1")]
    client_ip: String,
    /// Request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Absolute URL: scheme://host[:port]/path[?query]; its authority is the request host.
    url: String,
}

/// Loads routing from a dynamic file, or from the dynamic files a static file names.
pub fn load_routing(path: &Path) -> Result<config::RoutingConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let is_static = ["entryPoints", "providers"].iter().any(|k| {
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("[{k}"))
                || l.starts_with(&format!("{k}:"))
                || l.starts_with(&format!("{k}."))
                || l.starts_with(&format!("{k} ="))
        })
    });
    if is_static {
        let st = config::load_static(path)?;
        config::load_dynamic(&st.dynamic_files, st.dynamic_directory.as_deref())
    } else {
        config::load_dynamic(&[path.to_owned()], None)
    }
}

pub fn explain(args: ExplainArgs) -> Result<ExitCode, CliError> {
    let mut req = SimpleRequest::parse(&args.method, &args.url).map_err(CliError::Usage)?;
    req.client_ip = Some(args.client_ip.parse::<IpAddr>().map_err(|_| {
        CliError::usage(format!(
            "--client-ip {:?} is not an IP address",
            args.client_ip
        ))
    })?);
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::usage(format!("-H {h:?} is not \"Name: value\"")))?;
        let name = name.trim();
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(CliError::usage(format!(
                "-H {h:?} has an invalid header name"
            )));
        }
        req = req.header(name, value.trim_start_matches([' ', '\t']));
    }
    let routers: Vec<Router<String>> = if let Some(rule) = &args.rule {
        let compiled = Rule::compile(rule)
            .map_err(|e| CliError::usage(format!("invalid rule: {}\n{}", e.kind, e.caret(rule))))?;
        vec![Router::new(
            "cli",
            compiled,
            args.priority,
            "cli".to_owned(),
        )]
    } else {
        let path = args.config.as_deref().unwrap_or_default();
        let routing = load_routing(Path::new(path)).map_err(|e| CliError::usage(e.to_string()))?;
        routing
            .routers
            .into_iter()
            .map(|r| Router::new(&r.name, r.rule, r.priority, r.service))
            .collect()
    };
    let table = Table::new(routers);
    match table.find(&req) {
        Some(r) => {
            println!(
                "{}",
                json!({"matched": true, "router": r.name, "service": r.target, "priority": r.priority})
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("{}", json!({"matched": false}));
            Ok(ExitCode::from(1))
        }
    }
}
