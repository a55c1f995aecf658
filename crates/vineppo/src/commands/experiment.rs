//! `vineppo experiment`: run every (arm, seed) of an experiment file that is not finished, then
//! write the aggregated report.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::experiment::{self, Options};

/// Arguments of `vineppo experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Experiment file (TOML): `[experiment]` (base, out_dir, seeds, baseline), `[[arm]]`s
    /// (name, set, sweep, command) and sections overriding the base config in every arm. See
    /// `configs/experiments/`.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Override a key of the experiment file: `experiment.seeds=[1,2]`, or a training key for
    /// every arm such as `run.iterations=50` (repeatable; applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Train nothing; rewrite the report from the runs that exist (finished or not).
    #[arg(long)]
    pub report_only: bool,
    /// Run only these arms (comma-separated names); the report still covers every arm.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub arms: Vec<String>,
}

/// Runs `vineppo experiment`.
pub fn run(args: ExperimentArgs) -> Result<()> {
    let options = Options {
        report_only: args.report_only,
        only: args.arms,
    };
    let outcome = experiment::run(&args.config, &args.sets, &options)?;
    eprintln!(
        "{} run(s) trained or resumed, {} finished run(s) skipped",
        outcome.ran, outcome.skipped
    );
    println!("{}", outcome.report.display());
    Ok(())
}
