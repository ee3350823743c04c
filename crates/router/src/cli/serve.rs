//! `betaroute serve --config FILE`: runs the origin router ([`betaroute_router::proxy`]).

use std::path::PathBuf;
use std::process::ExitCode;

use super::error::CliError;
use betaroute_router::proxy;

#[derive(clap::Args)]
pub struct Args {
    /// Static configuration (entryPoints, admin, providers.file, accessLog).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    proxy::run(proxy::Options {
        config: args.config,
        threads: args.threads,
    })?;
    Ok(ExitCode::SUCCESS)
}
