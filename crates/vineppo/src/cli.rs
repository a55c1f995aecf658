//! Command-line interface (clap derive). Each subcommand's work lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// VinePPO: RL fine-tuning of language models on math reasoning with Monte-Carlo credit
/// assignment.
#[derive(Debug, Parser)]
#[command(name = "vineppo", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log level filter (e.g. `info`, `debug`, `vineppo=trace`); also read from RUST_LOG.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
}

/// Config file plus overrides, shared by the training commands.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config value: `--set section.key=value` (repeatable; applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// All subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved config (defaults, file, then --set overrides) as TOML.
    Config {
        /// Which config kind to resolve.
        #[arg(long, value_enum, default_value = "train")]
        kind: ConfigKind,
        #[command(flatten)]
        args: ConfigArgs,
    },
    /// Grade predictions with a task's grader: one pair, or a JSONL file of cases.
    Grade {
        /// Which grader.
        #[arg(long, value_enum)]
        task: crate::commands::grade::GradeTask,
        /// Gold answer or full reference solution (with --pred).
        #[arg(long, requires = "pred", conflicts_with = "input")]
        gold: Option<String>,
        /// Prediction: a bare answer or a full solution (with --gold).
        #[arg(long, requires = "gold")]
        pred: Option<String>,
        /// The question, for MATH's "separated by commas" rule (with --gold/--pred).
        #[arg(long)]
        question: Option<String>,
        /// JSONL file, one `{"pred", "gold", "question"?}` per line.
        #[arg(long, conflicts_with_all = ["gold", "pred"])]
        input: Option<PathBuf>,
        /// Where to write the verdicts for --input (default: stdout).
        #[arg(long, requires = "input")]
        out: Option<PathBuf>,
        /// GSM8K: compare numerically (`$18`, `18.0`, `1,000`) instead of exactly.
        #[arg(long)]
        lenient: bool,
    },
    /// Render plots and a summary of one or more run directories into a Markdown report.
    Report {
        /// Run directories to overlay.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Output directory (default: the single run's directory, or `report/` for several).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report title.
        #[arg(long, default_value = "vineppo run report")]
        title: String,
    },
}

/// Config kinds `vineppo config` can resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigKind {
    /// `vineppo train`.
    Train,
}
