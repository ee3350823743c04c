//! `betaroute`: the native command-line tool (see [`cli`]).
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
