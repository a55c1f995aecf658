//! The `vineppo` binary: parse arguments, set up logging, run, print errors as `error: …` with
//! their causes, exit non-zero on failure.

use std::process::ExitCode;

use clap::Parser;
use vineppo::cli::Cli;

fn main() -> ExitCode {
    vineppo::runtime::init();
    let cli = Cli::parse();
    vineppo::runtime::init_logging(&cli.log);
    match vineppo::commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
