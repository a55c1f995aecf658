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
    /// Train with VinePPO (or PPO, GRPO, RLOO: `[credit] kind`). Without --config, runs the
    /// built-in default: `configs/arith/vineppo.toml`.
    Train {
        #[command(flatten)]
        args: ConfigArgs,
        /// Continue the run in this directory from its latest checkpoint (its saved config is
        /// used; --set may still override keys, e.g. `run.iterations`).
        #[arg(long, conflicts_with = "config")]
        resume: Option<PathBuf>,
    },
    /// Supervised fine-tuning on a task's reference solutions, from a checkpoint or from a
    /// fresh model (`[model.init]`, with its own BPE tokenizer).
    Sft {
        #[command(flatten)]
        args: ConfigArgs,
        /// Continue the run in this directory from its latest checkpoint.
        #[arg(long, conflicts_with = "config")]
        resume: Option<PathBuf>,
    },
    /// The RestEM baseline: sample, keep correct responses, fine-tune a fresh copy of the initial
    /// model, choose the epoch on a validation split; repeat. Without --config, runs
    /// `configs/arith/restem.toml`.
    Restem {
        #[command(flatten)]
        args: ConfigArgs,
        /// Continue the run in this directory from its latest checkpoint (mid-iteration).
        #[arg(long, conflicts_with = "config")]
        resume: Option<PathBuf>,
    },
    /// The DPO+ (DPO-Positive) baseline: sample once from the initial model, pair correct with
    /// wrong responses, train with the DPO-Positive loss. Without --config, runs
    /// `configs/arith/dpo.toml`.
    Dpo {
        #[command(flatten)]
        args: ConfigArgs,
        /// Continue the run in this directory from its latest checkpoint.
        #[arg(long, conflicts_with = "config")]
        resume: Option<PathBuf>,
    },
    /// Benchmarks; results go in BENCHMARKS.md with the command that produced them.
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Print the resolved config (defaults, file, then --set overrides) as TOML.
    Config {
        /// Which config kind to resolve.
        #[arg(long, value_enum, default_value = "train")]
        kind: ConfigKind,
        #[command(flatten)]
        args: ConfigArgs,
    },
    /// Sample continuations of a prompt from a model directory.
    Generate {
        /// Hugging Face model directory.
        #[arg(long)]
        model: PathBuf,
        /// Prompt text (BOS is prepended if the tokenizer has one, unless --no-bos).
        #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
        prompt: Option<String>,
        /// Prompt as token ids, e.g. `1,2,3`.
        #[arg(long)]
        ids: Option<String>,
        /// Do not prepend BOS to --prompt.
        #[arg(long)]
        no_bos: bool,
        /// Number of samples.
        #[arg(long, default_value_t = 1)]
        n: usize,
        /// Sampling temperature.
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// Nucleus threshold (1 = off).
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Top-k cut (0 = off).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Most new tokens per sample.
        #[arg(long, default_value_t = 256)]
        max_new_tokens: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Greedy decoding (same as --temperature 0).
        #[arg(long)]
        greedy: bool,
        /// Do not stop at EOS.
        #[arg(long)]
        ignore_eos: bool,
        /// Stop string (repeatable).
        #[arg(long = "stop")]
        stop: Vec<String>,
        /// Print JSON (ids, log-probs, text, finish reason per sample).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        placement: crate::session::DeviceArgs,
    },
    /// Per-token log-probabilities of a text under a model.
    Logprobs {
        /// Hugging Face model directory.
        #[arg(long)]
        model: PathBuf,
        /// Text (BOS is prepended if the tokenizer has one, unless --no-bos).
        #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
        text: Option<String>,
        /// Token ids, e.g. `1,2,3`.
        #[arg(long)]
        ids: Option<String>,
        /// Do not prepend BOS to --text.
        #[arg(long)]
        no_bos: bool,
        /// Divide logits by this before log-softmax.
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// Print `{"ids", "logprobs", "last_logits"}` as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        placement: crate::session::DeviceArgs,
    },
    /// Evaluate a model on a task: pass@1 (mean over n samples), majority vote, pass@n.
    Eval {
        /// Hugging Face model directory.
        #[arg(long)]
        model: PathBuf,
        /// Task.
        #[arg(long, value_parser = parse_task)]
        task: vine_data::TaskKind,
        /// Directory holding `gsm8k/` and `math/` (default: $VINEPPO_DATA_DIR or ../shared/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Split.
        #[arg(long, value_enum, default_value = "test")]
        split: crate::commands::eval::Split,
        /// Samples per problem.
        #[arg(long, default_value_t = 16)]
        n: usize,
        /// Sampling temperature (0 = greedy).
        #[arg(long, default_value_t = 0.35)]
        temperature: f64,
        /// Nucleus threshold.
        #[arg(long, default_value_t = 0.9)]
        top_p: f64,
        /// Most new tokens per sample.
        #[arg(long, default_value_t = 1024)]
        max_new_tokens: usize,
        /// Evaluate the first N problems only.
        #[arg(long)]
        limit: Option<usize>,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows decoded at once.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Write a JSON report with per-problem samples, extracted answers and verdicts.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        placement: crate::session::DeviceArgs,
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
    /// Run several arms (VinePPO, PPO, GRPO, RLOO, a K sweep, …) over several seeds, skipping
    /// finished runs and resuming interrupted ones, then report mean curves with their spread,
    /// final accuracy per arm and the steps and wall-clock to reach PPO's peak.
    Experiment(crate::commands::experiment::ExperimentArgs),
    /// Measure how well a checkpoint's critic and K-sample MC estimates predict state values
    /// (error against an M-rollout ground truth, by reasoning step) and rank alternative next
    /// steps (top-1 of 5 against chance): the paper's value-prediction analysis.
    AnalyzeValues(crate::commands::analyze_values::AnalyzeValuesArgs),
    /// GPU correctness checks and benchmarks (`docs/gpu.md`); `--device cpu` runs them on CPU.
    #[command(subcommand)]
    Gpu(crate::gpu::GpuCommand),
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
    /// `vineppo sft`.
    Sft,
    /// `vineppo restem`.
    Restem,
    /// `vineppo dpo`.
    Dpo,
}

/// Parses a task name (`gsm8k`, `math`, `math500`, `arith`).
pub fn parse_task(s: &str) -> Result<vine_data::TaskKind, String> {
    toml::Value::String(s.to_string())
        .try_into()
        .map_err(|_| format!("unknown task `{s}`: use gsm8k, math, math500 or arith"))
}

/// `vineppo bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generation throughput of the engine on a random ~4M-parameter Llama: plain batched
    /// sampling and VinePPO's P prefixes × K continuations, with and without prefix sharing.
    Generate {
        /// Also save the model and scenarios here for `scripts/bench_transformers_generate.py`.
        #[arg(long)]
        hf_dir: Option<PathBuf>,
        /// Only scenarios whose name starts with this.
        #[arg(long)]
        only: Option<String>,
        /// Report the fastest of N runs.
        #[arg(long, default_value_t = 1)]
        repeats: usize,
    },
}
