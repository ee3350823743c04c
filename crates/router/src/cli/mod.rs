//! The commands of `betaroute`, together: the origin router (`serve`), configuration checks and
//! routing explanations (`check`, `route explain`), and token and key tools (`token`, `keys`).
//! Each command is a module; this one parses the arguments and maps errors to exit codes.

mod check;
mod compare;
mod error;
mod fleet;
mod keys;
mod rollout;
mod route;
mod serve;
mod token_mint;
mod token_verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "betaroute",
    version,
    about = "betaroute: beta routing for testing in production"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify and mint JWTs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Generate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Explain routing decisions.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Validate configuration: exit 0 when everything is honoured, 2 with located errors and
    /// refusals.
    Check(check::Args),
    /// Run the origin router.
    Serve(serve::Args),
    /// Show, validate and edit a rollout policy; publish it; tell where a subject falls.
    Rollout(rollout::Args),
    /// Beta against its baseline: a running router's comparisons and the judge's verdicts.
    Compare(compare::Args),
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Which router and service a request would take.
    Explain(route::ExplainArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Verify a token exactly as the edge does; prints the verdict as JSON.
    Verify(token_verify::Args),
    /// Mint a signed token for local testing.
    Mint(token_mint::Args),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a private JWK and the matching public JWKS.
    Generate(keys::Args),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Token(TokenCommand::Verify(args)) => token_verify::run(args),
        Command::Token(TokenCommand::Mint(args)) => {
            token_mint::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Generate(args)) => keys::run(args).map(|()| ExitCode::SUCCESS),
        Command::Route(RouteCommand::Explain(args)) => route::explain(args),
        Command::Check(args) => check::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Rollout(args) => rollout::run(args),
        Command::Compare(args) => compare::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("betaroute: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
