//! One RestEM iteration's fine-tuning (spec §2.2; reference `restem_trainer.py::step`): a fresh
//! copy of the initial model and a fresh AdamW are trained on the iteration's kept responses with
//! the SFT loss (mean over each sequence's tokens, then over the batch; logits divided by the
//! sampling temperature, as the reference's trainer does), for up to `restem.epochs` epochs.
//! After every epoch the model is evaluated on the validation split and checkpointed.
//!
//! ```text
//! RUN_DIR/restem/iter_0003/epochs/epoch_000002/   policy/ (Hugging Face dir), optimizer.safetensors,
//!                                                 state.json, progress.json
//! ```
//!
//! An epoch checkpoint is both a candidate for the epoch choice and the point a crashed run
//! resumes from: its `progress.json` holds the validation accuracies so far and the running
//! training statistics, so the resumed iteration logs what an uninterrupted one would. Only the
//! newest epoch keeps its optimizer state. Epoch `e` visits the data in a permutation seeded by
//! `(seed, SftOrder, iteration, e)`; the learning rate warms up over 3 % of the iteration's
//! `epochs × ⌈kept / batch⌉` steps and decays linearly to 0 at their end, as the reference's
//! per-iteration schedule. Epoch 0 (the untrained copy) is evaluated once per run: its accuracy
//! is the same every iteration.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vine_data::Example;
use vine_model::{SaveOptions, Transformer};
use vine_rl::{batch, Episode};

use super::select::wants_more_epochs;
use crate::checkpoint::{crash_point, Checkpointer, TrainState};
use crate::config::restem::RestemConfig;
use crate::optim::{AdamW, LrSchedule};
use crate::progress::Bars;
use crate::sampled::SampleSession;
use crate::seeds::{seed_for, Purpose};
use crate::sft::sft_step;

const PROGRESS: &str = "progress.json";

/// What an iteration's fine-tuning has done so far (saved with every epoch checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitProgress {
    /// Epochs trained.
    pub epoch: u64,
    /// Validation pass@1 of epochs `0..=epoch` (epoch 0: the untrained copy).
    pub accuracies: Vec<f64>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Σ loss over steps.
    pub loss_sum: f64,
    /// Σ gradient norm over steps.
    pub grad_norm_sum: f64,
    /// Learning rate of the last step.
    pub last_lr: f64,
    /// Target tokens trained on.
    pub tokens: u64,
    /// Seconds spent training.
    pub train_s: f64,
    /// Seconds spent evaluating the validation split.
    pub validation_s: f64,
    /// Seconds spent writing epoch checkpoints.
    pub checkpoint_s: f64,
}

/// Everything [`fit`] reads.
pub struct FitContext<'a> {
    /// The run's config.
    pub cfg: &'a RestemConfig,
    /// Models, engine, task.
    pub session: &'a SampleSession,
    /// The validation problems.
    pub validation: &'a [Example],
    /// Progress bars.
    pub bars: &'a Bars,
    /// The iteration.
    pub iteration: u64,
    /// `RUN_DIR/restem/iter_NNNN`.
    pub dir: &'a Path,
}

impl FitContext<'_> {
    fn checkpoints(&self) -> Checkpointer {
        Checkpointer::in_dir(self.dir.join("epochs"), "epoch", self.cfg.restem.epochs + 1)
    }

    /// The model directory of epoch `e`'s candidate (the initial model for epoch 0).
    pub fn candidate(&self, e: usize) -> PathBuf {
        match e {
            0 => self.cfg.model.path.clone(),
            e => self.checkpoints().path_of(e as u64).join("policy"),
        }
    }

    fn validate(&self, model: &Transformer, progress: &mut FitProgress) -> Result<f64> {
        let start = Instant::now();
        let report = self.session.evaluate(
            model,
            self.validation,
            &self.cfg.eval,
            self.bars,
            "validate",
        )?;
        progress.validation_s += start.elapsed().as_secs_f64();
        Ok(report.pass1)
    }
}

/// Trains (or resumes training) a fresh copy of the initial model on `examples` until the epoch
/// choice is settled; `initial_accuracy` is epoch 0's validation accuracy when already known.
pub fn fit(
    ctx: &FitContext<'_>,
    examples: &[Episode],
    initial_accuracy: Option<f64>,
) -> Result<FitProgress> {
    let r = &ctx.cfg.restem;
    let checkpoints = ctx.checkpoints();
    let (model, mut optimizer, mut progress) = match checkpoints.latest()? {
        Some((dir, _)) => resume(ctx, &dir)?,
        None => start(ctx, initial_accuracy)?,
    };
    if examples.is_empty() {
        return Ok(progress);
    }
    let per_epoch = examples.len().div_ceil(r.batch_size) as u64;
    let schedule = ctx.cfg.optim.schedule(per_epoch * r.epochs as u64);
    let bar = ctx.bars.main(schedule.total_steps, "steps");
    bar.set_prefix(format!("iter {}", ctx.iteration));
    bar.set_position(progress.steps);
    while wants_more_epochs(r.selection, &progress.accuracies, r.epochs) {
        let e = progress.epoch + 1;
        let start = Instant::now();
        train_epoch(
            ctx,
            &model,
            &mut optimizer,
            examples,
            (e, per_epoch),
            &schedule,
            &mut progress,
            &bar,
        )?;
        progress.train_s += start.elapsed().as_secs_f64();
        let acc = ctx.validate(&model, &mut progress)?;
        progress.accuracies.push(acc);
        progress.epoch = e;
        let start = Instant::now();
        save_epoch(
            &checkpoints,
            &model,
            &optimizer,
            &progress,
            &ctx.cfg.model.path,
        )?;
        progress.checkpoint_s += start.elapsed().as_secs_f64();
        ctx.bars.println(&format!(
            "iteration {:>3} epoch {e}: validation pass@1 {:.1}%",
            ctx.iteration,
            acc * 100.0
        ));
        crash_point(ctx.iteration, &format!("epoch_{e}"));
    }
    bar.finish_and_clear();
    Ok(progress)
}

/// A fresh copy of the initial model and a fresh optimizer, with epoch 0 validated.
fn start(
    ctx: &FitContext<'_>,
    initial_accuracy: Option<f64>,
) -> Result<(Transformer, AdamW, FitProgress)> {
    let model = ctx.session.load(&ctx.cfg.model.path, true)?;
    let optimizer = AdamW::new(model.vars(), ctx.cfg.optim.adamw())?;
    let mut progress = FitProgress::default();
    let acc0 = match initial_accuracy {
        Some(a) => a,
        None => ctx.validate(&model, &mut progress)?,
    };
    progress.accuracies.push(acc0);
    Ok((model, optimizer, progress))
}

/// The model, optimizer and progress saved in the epoch checkpoint `dir`.
fn resume(ctx: &FitContext<'_>, dir: &Path) -> Result<(Transformer, AdamW, FitProgress)> {
    let model = ctx.session.load(&dir.join("policy"), true)?;
    let mut optimizer = AdamW::new(model.vars(), ctx.cfg.optim.adamw())?;
    optimizer.load(&dir.join("optimizer.safetensors"))?;
    let path = dir.join(PROGRESS);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let progress: FitProgress = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a RestEM epoch record", path.display()))?;
    Ok((model, optimizer, progress))
}

/// One pass over `examples` in the epoch's seeded order.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    ctx: &FitContext<'_>,
    model: &Transformer,
    optimizer: &mut AdamW,
    examples: &[Episode],
    (epoch, per_epoch): (u64, u64),
    schedule: &LrSchedule,
    progress: &mut FitProgress,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let r = &ctx.cfg.restem;
    let seed = seed_for(ctx.cfg.run.seed, Purpose::SftOrder, ctx.iteration, epoch);
    let order = batch::shuffled(examples.len(), seed);
    let temperature = ctx.cfg.rollout.temperature;
    for ids in order.chunks(r.batch_size).take(per_epoch as usize) {
        let (grads, loss, tokens) = sft_step(
            model,
            examples,
            ids,
            r.micro_batch_size,
            model.device(),
            temperature,
        )?;
        let lr = schedule.lr(progress.steps);
        let s = optimizer
            .step(&grads, lr)
            .context("RestEM optimizer step")?;
        progress.steps += 1;
        progress.loss_sum += loss;
        progress.grad_norm_sum += s.grad_norm;
        progress.last_lr = lr;
        progress.tokens += tokens as u64;
        bar.set_position(progress.steps);
        bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
    }
    Ok(())
}

/// Writes epoch `progress.epoch`'s checkpoint and drops the previous epoch's optimizer state.
fn save_epoch(
    checkpoints: &Checkpointer,
    model: &Transformer,
    optimizer: &AdamW,
    progress: &FitProgress,
    source: &Path,
) -> Result<()> {
    let state = TrainState {
        iteration: progress.epoch,
        optimizer_steps: progress.steps,
        ..TrainState::fresh()
    };
    checkpoints.save(&state, |dir| {
        let p = dir.join("policy");
        std::fs::create_dir_all(&p)?;
        let opts = SaveOptions {
            dtype: None,
            source_dir: Some(source.to_path_buf()),
        };
        model.write_hf_files(&p, &opts)?;
        optimizer.save(&dir.join("optimizer.safetensors"))?;
        crate::atomic::write_file(&dir.join(PROGRESS), &serde_json::to_vec_pretty(progress)?)
    })?;
    let previous = checkpoints
        .path_of(progress.epoch - 1)
        .join("optimizer.safetensors");
    if previous.exists() {
        std::fs::remove_file(&previous)
            .with_context(|| format!("removing `{}`", previous.display()))?;
    }
    Ok(())
}
