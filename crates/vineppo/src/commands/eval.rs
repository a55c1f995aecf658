//! `vineppo eval`: pass@1, majority vote and pass@n of a model on a task's split.

use std::path::PathBuf;

use anyhow::{bail, Result};
use vine_data::{TaskConfig, TaskKind};
use vine_rollout::{Engine, EngineConfig};

use crate::eval::{evaluate, EvalReport, EvalSettings};
use crate::progress::Bars;
use crate::session::{load_model, load_task};

/// Which split to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The held-out test split.
    Test,
    /// The training split.
    Train,
}

/// Options of `vineppo eval`.
pub struct EvalArgs {
    /// Model directory.
    pub model: PathBuf,
    /// Task.
    pub task: TaskKind,
    /// Data directory (GSM8K/MATH).
    pub data_dir: Option<PathBuf>,
    /// Split.
    pub split: Split,
    /// Evaluate the first N problems only.
    pub limit: Option<usize>,
    /// Sampling settings.
    pub settings: EvalSettings,
    /// Rows decoded at once.
    pub batch: usize,
    /// JSON report path.
    pub out: Option<PathBuf>,
    /// Device and dtype.
    pub placement: crate::session::DeviceArgs,
}

/// Runs the evaluation and prints the metrics.
pub fn run(args: EvalArgs) -> Result<EvalReport> {
    let task = load_task(&TaskConfig {
        kind: args.task,
        data_dir: args.data_dir.clone(),
        ..TaskConfig::default()
    })?;
    let (device, dtype) = args.placement.resolve()?;
    let loaded = load_model(&args.model, &device, dtype, false)?;
    let examples = match args.split {
        Split::Test => task.test(),
        Split::Train => task.train(),
    };
    let examples = &examples[..args.limit.unwrap_or(examples.len()).min(examples.len())];
    if examples.is_empty() {
        bail!("nothing to evaluate: --limit is 0");
    }
    let mut settings = args.settings.clone();
    settings.max_context = settings
        .max_context
        .min(loaded.model.config().max_position_embeddings);
    let engine = Engine::new(EngineConfig {
        max_batch: args.batch.max(1),
        ..EngineConfig::default()
    })?;
    let bars = Bars::new(true);
    let mut bar = bars.generation("eval");
    let report = evaluate(
        &loaded.model,
        &loaded.tokenizer,
        &task,
        examples,
        &settings,
        &engine,
        &mut |p| bar.update(p),
    )?;
    drop(bar);
    println!(
        "{} {:?}: pass@1 {:.2}%  maj@{n} {:.2}%  pass@{n} {:.2}%  ({} problems × {n} samples, {:.1} tokens/sample, {:.1}% truncated, {:.0} tok/s, {:.1}s)",
        task.kind().name(),
        args.split,
        report.pass1 * 100.0,
        report.majority * 100.0,
        report.pass_n * 100.0,
        report.problems,
        report.mean_tokens,
        report.truncated_frac * 100.0,
        report.tokens_per_s,
        report.seconds,
        n = settings.samples,
    );
    if let Some(out) = &args.out {
        crate::atomic::write_file(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(report)
}
