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
