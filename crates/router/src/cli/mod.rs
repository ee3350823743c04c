//! `betaroute`: the native command-line tool: the origin router (`betaroute serve`), configuration
//! checks and routing explanations, and token and key tools for operators, tests and the demo.
#![forbid(unsafe_code)]

mod check_cmd;
mod error;
mod keygen;
mod mint;
mod proxy;
mod route_cmd;
mod verify_cmd;

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
    /// Validate static and dynamic configuration (exit 0, or 2 with located errors).
    Check(check_cmd::Args),
    /// Run the origin router.
    Serve(proxy::Args),
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Which router and service a request would take.
    Explain(route_cmd::ExplainArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Verify a token exactly as the edge does; prints the verdict as JSON.
    Verify(verify_cmd::Args),
    /// Mint a signed token for local testing.
    Mint(mint::Args),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a private JWK and the matching public JWKS.
    Generate(keygen::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Token(TokenCommand::Verify(args)) => verify_cmd::run(args),
        Command::Token(TokenCommand::Mint(args)) => mint::run(args).map(|()| ExitCode::SUCCESS),
        Command::Keys(KeysCommand::Generate(args)) => keygen::run(args).map(|()| ExitCode::SUCCESS),
        Command::Route(RouteCommand::Explain(args)) => route_cmd::explain(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Serve(args) => proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("betaroute: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
