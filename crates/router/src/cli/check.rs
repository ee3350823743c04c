//! `betaroute check --config FILE`: validates static and dynamic configuration.

use std::path::Path;
use std::process::ExitCode;

use crate::error::CliError;
use crate::route_cmd::load_routing;
use betaroute_router::config;

#[derive(clap::Args)]
pub struct Args {
    /// Static configuration (betaroute.toml), or a dynamic configuration file.
    #[arg(long, value_name = "FILE")]
    config: String,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let path = Path::new(&args.config);
    let routing = load_routing(path).map_err(|e| CliError::usage(e.to_string()))?;
    for w in &routing.warnings {
        eprintln!("betaroute: warning: {w}");
    }
    if let Ok(st) = config::load_static(path) {
        println!(
            "{}: ok: {} entry point(s), {} router(s), {} service(s)",
            args.config,
            st.entry_points.len(),
            routing.routers.len(),
            routing.services.len()
        );
    } else {
        println!(
            "{}: ok: {} router(s), {} service(s)",
            args.config,
            routing.routers.len(),
            routing.services.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
