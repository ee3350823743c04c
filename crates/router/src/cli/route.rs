//! `betaroute route explain`: which router a request would take (the CLI contract in BRIEF.md).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use betaroute_core::rules::{Router, Rule, SimpleRequest, Table};
use serde_json::json;

use super::error::CliError;
use betaroute_router::config::{self, FileKind, StaticConfig};
use betaroute_router::provider::consul::CONSUL_PROVIDER;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "dynamic", "rule"])))]
pub struct ExplainArgs {
    /// Static configuration whose providers name the dynamic files, or a dynamic file (told by
    /// its top-level keys).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A dynamic configuration file alone (repeat for several).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    dynamic: Vec<PathBuf>,
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
    /// A rollout policy: with `beta: "off"`, the beta and label headers are removed before
    /// matching, as no edge under that policy sets them.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Absolute URL: scheme://host[:port]/path[?query]; its authority is the request host.
    url: String,
}

/// Where routing comes from: a configuration file (static or dynamic, told by its top-level
/// keys) or dynamic files given as such.
pub struct Sources {
    config: Option<PathBuf>,
    dynamic: Vec<PathBuf>,
}

impl Sources {
    pub fn new(config: Option<PathBuf>, dynamic: Vec<PathBuf>) -> Sources {
        Sources { config, dynamic }
    }

    pub fn describe(&self) -> String {
        match &self.config {
            Some(c) => c.display().to_string(),
            None => self
                .dynamic
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// A loaded configuration and everything said about it (refusals, warnings).
pub struct Loaded {
    pub statics: Option<StaticConfig>,
    pub routing: config::RoutingConfig,
    pub diagnostics: Vec<config::Diagnostic>,
}

/// Loads routing: the dynamic files a static configuration names, or dynamic files alone.
pub fn load_routing(sources: &Sources) -> Result<Loaded, CliError> {
    let (statics, files, directory) = match &sources.config {
        Some(path) => match config::file_kind(path)? {
            FileKind::Static => {
                let st = config::load_static(path)?;
                let files = st.dynamic_files.clone();
                let dir = st.dynamic_directory.clone();
                (Some(st), files, dir)
            }
            FileKind::Dynamic => (None, vec![path.clone()], None),
        },
        None => (None, sources.dynamic.clone(), None),
    };
    let mut layers = Vec::new();
    if !files.is_empty() || directory.is_some() {
        layers.push(config::dynamic::load_file_layer(
            &files,
            directory.as_deref(),
        )?);
    }
    let consul = statics.as_ref().is_some_and(|s| s.consul.is_some());
    if consul {
        // Consul's catalog is read at run time only: references into it cannot be checked here.
        layers.push(config::dynamic::Layer::empty(CONSUL_PROVIDER));
    }
    let refs: Vec<&config::dynamic::Layer> = layers.iter().collect();
    let known = statics.as_ref().map(|s| s.statics()).unwrap_or_default();
    let (mut routing, _) = config::dynamic::combine(&refs, &known);
    let unknown_yet = format!("@{CONSUL_PROVIDER} does not exist");
    for d in &mut routing.diagnostics {
        if consul
            && d.severity == config::Severity::Refused
            && d.error.message.contains(&unknown_yet)
        {
            d.severity = config::Severity::Warning;
            d.error.message.push_str(" in a catalog not read yet (check does not contact Consul; serve refuses the router while the service is missing)");
        }
    }
    if let Some(st) = &statics {
        let names: Vec<String> = st.entry_points.iter().map(|e| e.name.clone()).collect();
        routing.check_entry_points(&names);
    }
    let mut diagnostics: Vec<config::Diagnostic> = statics
        .iter()
        .flat_map(|s| s.diagnostics.iter().cloned())
        .collect();
    diagnostics.extend(routing.diagnostics.iter().cloned());
    Ok(Loaded {
        statics,
        routing,
        diagnostics,
    })
}

pub fn explain(args: ExplainArgs) -> Result<ExitCode, CliError> {
    let mut req = SimpleRequest::parse(&args.method, &args.url).map_err(CliError::Usage)?;
    req.client_ip = Some(args.client_ip.parse::<IpAddr>().map_err(|_| {
        CliError::usage(format!(
            "--client-ip {:?} is not an IP address",
            args.client_ip
        ))
    })?);
    let mut headers = Vec::new();
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
        headers.push((name, value.trim_start_matches([' ', '\t'])));
    }
    let mut beta_off = match &args.policy {
        None => None,
        Some(file) => {
            let text = super::error::read_file(&file.display().to_string())?;
            let policy = betaroute_core::Policy::parse(&text).map_err(|e| {
                CliError::usage(format!(
                    "{}:{}:{}: {}",
                    file.display(),
                    e.line,
                    e.column,
                    e.message
                ))
            })?;
            (!policy.beta_on).then(|| format!("the rollout policy {} has beta off", file.display()))
        }
    };
    let mut cohort_headers = vec![
        betaroute_core::cohort::DEFAULT_HEADER.to_owned(),
        betaroute_core::cohort::DEFAULT_COHORT_HEADER.to_owned(),
    ];
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
        let loaded = load_routing(&Sources::new(args.config, args.dynamic))?;
        for d in loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity >= config::Severity::Refused)
        {
            eprintln!("betaroute: {d}");
        }
        if let Some(st) = &loaded.statics {
            cohort_headers = vec![st.cohort_header.clone(), st.label_header.clone()];
        }
        if let Some(s) = loaded.routing.beta_switch.as_ref().filter(|s| !s.enabled) {
            beta_off.get_or_insert_with(|| {
                format!("cohorts.beta.enabled is false (provider {})", s.provider)
            });
        }
        loaded
            .routing
            .routers
            .into_iter()
            .map(|r| Router::new(&r.name, r.rule, r.priority, r.service))
            .collect()
    };
    let folded = |n: &str| n.to_ascii_lowercase().replace('_', "-");
    for (name, value) in headers {
        if beta_off.is_some() && cohort_headers.iter().any(|c| folded(c) == folded(name)) {
            continue;
        }
        req = req.header(name, value);
    }
    if let Some(why) = &beta_off {
        eprintln!(
            "betaroute: beta is off ({why}): {} removed before matching",
            cohort_headers.join(" and ")
        );
    }
    let table = Table::new(routers);
    match table.find(&req) {
        Some(r) => {
            super::error::print_stdout(&format!(
                "{}\n",
                json!({"matched": true, "router": r.name, "service": r.target, "priority": r.priority})
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            super::error::print_stdout(&format!("{}\n", json!({"matched": false})))?;
            Ok(ExitCode::from(1))
        }
    }
}
