//! `betaroute check`: validates a static configuration and the dynamic files it names, or
//! dynamic files alone. Exit 0 only when every key read is honoured (warnings are
//! informational), 2 on any error or refused feature, each listed by file, line and column.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::error::CliError;
use super::route::{load_routing, Sources};
use betaroute_router::config::Severity;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "dynamic"])))]
pub struct Args {
    /// Static configuration (entryPoints, providers...), or a dynamic file; which one is told by
    /// its top-level keys.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A dynamic configuration file (http.routers, services, middlewares) without a static one;
    /// repeat for several.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    dynamic: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let sources = Sources::new(args.config, args.dynamic);
    let loaded = load_routing(&sources)?;
    let mut worst = None;
    for d in &loaded.diagnostics {
        eprintln!("{d}");
        worst = worst.max(Some(d.severity));
    }
    let routing = &loaded.routing;
    super::error::print_stdout(&plan(routing))?;
    let mut counts = format!(
        "{} router(s), {} service(s)",
        routing.routers.len(),
        routing.services.len()
    );
    if let Some(st) = &loaded.statics {
        counts = format!("{} entry point(s), {counts}", st.entry_points.len());
        if st.consul.is_some() {
            counts.push_str(" from files, and the routers of Consul's catalog at run time (not contacted by check)");
        }
    }
    let refused = routing
        .routers
        .iter()
        .filter(|r| r.refused.is_some())
        .count();
    let (line, code) = match worst {
        Some(Severity::Refused | Severity::Error) => (
            format!(
                "{}: refused: {counts}; {refused} router(s) not served as configured\n",
                sources.describe()
            ),
            ExitCode::from(2),
        ),
        _ => (
            format!("{}: ok: {counts}\n", sources.describe()),
            ExitCode::SUCCESS,
        ),
    };
    super::error::print_stdout(&line)?;
    let _ = std::io::stdout().flush();
    Ok(code)
}

/// Per router, what it will do; then the migration summary: the middleware kinds used, honoured
/// or refused, and how many routers each concerns.
fn plan(routing: &betaroute_router::config::RoutingConfig) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut out = String::new();
    let mut kinds: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    let implemented = betaroute_router::config::IMPLEMENTED_MIDDLEWARES;
    for r in &routing.routers {
        let chain = if r.middlewares.is_empty() {
            String::new()
        } else {
            let named: Vec<String> = r
                .middlewares
                .iter()
                .map(|m| match routing.middlewares.get(m) {
                    Some(kind) => format!("{m} ({kind})"),
                    None => m.clone(),
                })
                .collect();
            format!(" through {}", named.join(", "))
        };
        let what = match (&r.refused, &r.tls) {
            (None, None) => "served".to_owned(),
            (None, Some(t)) => format!("served on TLS connections (TLS options {})", t.options),
            (Some(why), _) => format!("refused, answers 503: {why}"),
        };
        let _ = writeln!(
            out,
            "router {}: {} -> {}{chain}: {what}",
            r.name,
            r.rule.text(),
            r.service
        );
        // The kinds a router uses: those it names, and inside its chains those it runs.
        let mut used = std::collections::BTreeSet::new();
        for m in &r.middlewares {
            if let Some(kind) = routing.middlewares.get(m) {
                used.insert(kind.as_str());
            }
        }
        for m in &r.chain {
            // `ipWhiteList` runs as its v3 name; the file's name is the one to report.
            if !(m.kind() == "ipAllowList" && used.contains("ipWhiteList")) {
                used.insert(m.kind());
            }
        }
        for kind in used {
            let e = kinds
                .entry(kind)
                .or_insert((0, implemented.contains(&kind)));
            e.0 += 1;
        }
    }
    if !kinds.is_empty() {
        let list = |honoured: bool| -> String {
            let v: Vec<String> = kinds
                .iter()
                .filter(|(_, (_, h))| *h == honoured)
                .map(|(k, (n, _))| format!("{k} ({n} router(s))"))
                .collect();
            if v.is_empty() {
                "none".into()
            } else {
                v.join(", ")
            }
        };
        let _ = writeln!(out, "middlewares honoured: {}", list(true));
        let _ = writeln!(
            out,
            "middlewares refused (their routers answer 503; see the lines above): {}",
            list(false)
        );
    }
    out
}
