//! `vineppo restem`: the ReST-EM baseline (spec §2.2; reference `restem_trainer.py`,
//! `math_restem_episode_generator.py`, `polIter_*_restem_*.jsonnet`). One iteration, as
//! [`RestemRun::iteration`] reads:
//!
//! 1. sample N responses (reference 8, T = 0.6, top-p 0.9) for every training problem from the
//!    current policy (the initial model in iteration 1), and keep the correct ones, at most M
//!    per problem (reference 10; [`select::keep_correct`]);
//! 2. fine-tune a **fresh copy of the initial model** on them with the SFT loss for up to E
//!    epochs (reference 8), evaluating every epoch on a validation split carved from the
//!    training split ([`epochs`]);
//! 3. choose the epoch by validation accuracy, walking the epochs and stopping at the first drop
//!    (`restem_paper_original`; [`select::chosen_epoch`]); the chosen model is the next
//!    iteration's policy.
//!
//! The held-out test split is evaluated before the first iteration and every `eval.every`
//! iterations (reference: every iteration's chosen model). Every iteration ends with a
//! checkpoint holding the chosen model, and every epoch with an epoch checkpoint; each
//! iteration's kept responses are saved before fine-tuning starts (`RUN_DIR/restem/iter_NNNN/`),
//! so a resumed run continues mid-iteration and ends with the weights and metrics of an
//! uninterrupted one. Unless `restem.keep_intermediate`, an iteration's directory is removed once
//! its checkpoint is written.
//!
//! Deviations: the validation split is carved from the training split at start-up (see
//! [`select`]); training stops at the first drop instead of running every epoch (same choice);
//! responses are trained on as sampled token ids rather than re-tokenised text; the reference's
//! mid-epoch checkpoints (`save_steps`) are replaced by one checkpoint per epoch.

pub mod epochs;
pub mod select;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vine_data::Example;
use vine_model::{SaveOptions, Transformer};
use vine_rl::Episode;

use crate::checkpoint::{crash_point, Checkpointer, TrainState};
use crate::config::restem::RestemConfig;
use crate::metrics::{Metrics, MetricsLog};
use crate::progress::Bars;
use crate::sampled::store::{self, Stored};
use crate::sampled::{create_run_dir, logged, problem_set, Graded, SampleSession, SampleStats};
use crate::train::update::{log_rollout_kl, response_logprobs};
use crate::train::Summary;
use epochs::{fit, FitContext, FitProgress};
use select::{carve_validation, chosen_epoch, keep_correct};

/// RestEM state saved with every iteration checkpoint (`restem.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RestemState {
    /// Validation pass@1 of the initial model (epoch 0 of every iteration), once measured.
    initial_validation: Option<f64>,
}

/// Trains with `cfg` (or resumes the run in `resume`, whose saved config `cfg` then is).
pub fn run(cfg: RestemConfig, resume: Option<&Path>) -> Result<Summary> {
    let run_dir = match resume {
        Some(dir) => dir.to_path_buf(),
        None => {
            let dir = cfg.run_dir();
            create_run_dir(&cfg, &dir)?;
            dir
        }
    };
    let session = SampleSession::open(&cfg.model, &cfg.task, &cfg.rollout, cfg.run.max_batch)?;
    let n_train = session.task.train().len();
    let (pool, held_out) = carve_validation(n_train, cfg.restem.validation_size, cfg.run.seed)?;
    let validation = held_out
        .iter()
        .map(|&i| session.task.train()[i].clone())
        .collect();
    let checkpoints = Checkpointer::new(&run_dir, cfg.run.keep_checkpoints);
    let latest = checkpoints.latest_if(resume.is_some())?;
    let extra = match &latest {
        Some((dir, _)) => read_state(dir)?,
        None => RestemState::default(),
    };
    let log = MetricsLog::open(
        &run_dir,
        crate::checkpoint::keep_metrics_through(latest.as_ref(), resume.is_some()),
    )?;
    let mut run = RestemRun {
        bars: Bars::new(cfg.run.progress),
        state: latest.map_or_else(TrainState::fresh, |(_, s)| s),
        initial_validation: extra.initial_validation,
        session_start: Instant::now(),
        cfg,
        run_dir,
        session,
        pool,
        validation,
        log,
        checkpoints,
    };
    run.remove_finished_iterations()?;
    run.run()
}

fn read_state(checkpoint: &Path) -> Result<RestemState> {
    let path = checkpoint.join("restem.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a RestEM state", path.display()))
}

/// Everything one RestEM run holds between iterations (no model: each iteration loads its
/// policy from the previous iteration's checkpoint).
struct RestemRun {
    cfg: RestemConfig,
    run_dir: PathBuf,
    session: SampleSession,
    /// Training problems RestEM samples from (validation excluded).
    pool: Vec<usize>,
    validation: Vec<Example>,
    bars: Bars,
    log: MetricsLog,
    checkpoints: Checkpointer,
    state: TrainState,
    initial_validation: Option<f64>,
    session_start: Instant,
}

impl RestemRun {
    fn elapsed(&self) -> f64 {
        self.state.elapsed_s + self.session_start.elapsed().as_secs_f64()
    }

    fn iteration_dir(&self, it: u64) -> PathBuf {
        self.run_dir.join("restem").join(format!("iter_{it:04}"))
    }

    /// Runs the remaining iterations; evaluates, logs and checkpoints each.
    fn run(&mut self) -> Result<Summary> {
        let total = self.cfg.run.iterations;
        let bar = self.bars.main(total, "iter");
        bar.set_prefix("RestEM");
        bar.set_position(self.state.iteration);
        if self.state.iteration == 0 && self.cfg.eval.at_start && !logged(&self.run_dir, 0) {
            let initial = self.session.load(&self.cfg.model.path, false)?;
            let mut m = Metrics::new(0);
            self.evaluate(&initial, 0, &mut m)?;
            m.set("time/elapsed_s", self.elapsed());
            self.log.append(&m)?;
        }
        let mut last = None;
        for it in self.state.iteration + 1..=total {
            let (mut m, chosen) = self.iteration(it)?;
            let every = self.cfg.eval.every;
            if it == total || (every > 0 && it % every == 0) {
                self.evaluate(&chosen, it, &mut m)?;
            }
            self.state.iteration = it;
            m.set(
                "progress/optimizer_steps",
                self.state.optimizer_steps as f64,
            );
            m.set("progress/episodes", self.state.data_cursor as f64);
            m.set("time/elapsed_s", self.elapsed());
            self.log.append(&m)?;
            self.save_checkpoint(&chosen)?;
            self.remove_finished_iterations()?;
            bar.set_position(it);
            bar.set_message(progress_message(&m));
            last = Some(chosen);
        }
        bar.finish();
        self.finish(last)
    }

    /// One RestEM iteration; returns its metrics and the chosen model.
    fn iteration(&mut self, it: u64) -> Result<(Metrics, Transformer)> {
        let dir = self.iteration_dir(it);
        let mut m = Metrics::new(it);
        // 1. N samples per problem from the current policy; keep ≤ M correct ones per problem.
        let round_dir = dir.join("round");
        let round = match store::load(&round_dir, self.session.task.train().len())? {
            Some(round) => round,
            None => {
                let round = self.sample_round(it)?;
                store::save(&round_dir, &round)?;
                round
            }
        };
        crash_point(it, "sampled");
        m.extend(&round.metrics);
        let examples = self.episodes(&round.responses)?;
        // 2. Fine-tune a fresh copy of the initial model; validate and checkpoint every epoch.
        let ctx = FitContext {
            cfg: &self.cfg,
            session: &self.session,
            validation: &self.validation,
            bars: &self.bars,
            iteration: it,
            dir: &dir,
        };
        let progress = fit(&ctx, &examples, self.initial_validation)?;
        // 3. Choose the epoch (first drop in validation accuracy): the next policy.
        let chosen = chosen_epoch(self.cfg.restem.selection, &progress.accuracies);
        let model = self.session.load(&ctx.candidate(chosen), false)?;
        log_fit(&mut m, &progress, chosen);
        self.initial_validation = progress.accuracies.first().copied();
        self.state.optimizer_steps += progress.steps;
        self.state.data_cursor += m.get("restem/samples").unwrap_or(0.0) as u64;
        Ok((m, model))
    }

    /// Step 1: sample the iteration's problems with the policy chosen last iteration, keep the
    /// correct responses, and estimate the policy's KL to the initial model.
    fn sample_round(&self, it: u64) -> Result<Stored> {
        let policy_dir = match it {
            1 => self.cfg.model.path.clone(),
            _ => self.checkpoints.path_of(it - 1).join("policy"),
        };
        let policy = self.session.load(&policy_dir, false)?;
        let (r, seed) = (&self.cfg.rollout, self.cfg.run.seed);
        let problems: Vec<usize> = problem_set(self.pool.len(), r.problems_per_iteration, seed, it)
            .into_iter()
            .map(|i| self.pool[i])
            .collect();
        let mut m = Metrics::default();
        let start = Instant::now();
        let n = r.samples_per_problem;
        let graded = self
            .session
            .sample(&policy, &problems, n, (seed, it), &self.bars)?;
        m.add_time("generate", start);
        SampleStats::of(&graded, problems.len()).log(&mut m, "restem");
        let kept: Vec<Graded> = keep_correct(&graded, self.cfg.restem.max_per_problem)
            .into_iter()
            .map(|i| graded[i].clone())
            .collect();
        let mut kept_problems: Vec<usize> = kept.iter().map(|g| g.problem).collect();
        kept_problems.sort_unstable();
        kept_problems.dedup();
        m.set("restem/kept", kept.len() as f64);
        m.set("restem/kept_problems", kept_problems.len() as f64);
        self.estimate_kl(&policy, &graded, &mut m)?;
        Ok(Stored {
            responses: kept,
            metrics: m,
            ..Stored::default()
        })
    }

    /// `kl/*` over the first `restem.kl_samples` samples (whole problems of a shuffled order):
    /// per-sequence sums of log π − log π_init, as `vineppo train` logs them.
    fn estimate_kl(&self, policy: &Transformer, graded: &[Graded], m: &mut Metrics) -> Result<()> {
        let k = self.cfg.restem.kl_samples.min(graded.len());
        let episodes = self.episodes(&graded[..k])?;
        if episodes.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let initial = self.session.load(&self.cfg.model.path, false)?;
        let (chunk, t) = (
            self.cfg.restem.micro_batch_size,
            self.cfg.rollout.temperature,
        );
        let old = response_logprobs(policy, &episodes, chunk, t)?;
        let reference = response_logprobs(&initial, &episodes, chunk, t)?;
        log_rollout_kl(m, &old, &reference, 10.0);
        m.add_time("reference", start);
        Ok(())
    }

    fn episodes(&self, graded: &[Graded]) -> Result<Vec<Episode>> {
        graded
            .iter()
            .filter_map(|g| self.session.episode(g).transpose())
            .collect()
    }

    fn evaluate(&self, lm: &Transformer, it: u64, m: &mut Metrics) -> Result<()> {
        let path = self.run_dir.join("eval").join(format!("iter_{it:06}.json"));
        let what = format!("iteration {it:>4}");
        self.session
            .evaluate_held_out(lm, &self.cfg.eval, &self.bars, (&path, &what), m)
    }

    /// The checkpoint of iteration `state.iteration`: the chosen model and the run state.
    fn save_checkpoint(&mut self, chosen: &Transformer) -> Result<()> {
        self.state.elapsed_s = self.elapsed();
        self.session_start = Instant::now();
        let extra = serde_json::to_vec_pretty(&RestemState {
            initial_validation: self.initial_validation,
        })?;
        let source = Some(self.cfg.model.path.clone());
        self.checkpoints.save(&self.state, |dir| {
            let p = dir.join("policy");
            std::fs::create_dir_all(&p)?;
            chosen.write_hf_files(
                &p,
                &SaveOptions {
                    dtype: None,
                    source_dir: source,
                },
            )?;
            crate::atomic::write_file(&dir.join("restem.json"), &extra)
        })?;
        Ok(())
    }

    /// Removes the working directories of checkpointed iterations (kept with
    /// `restem.keep_intermediate`).
    fn remove_finished_iterations(&self) -> Result<()> {
        if self.cfg.restem.keep_intermediate {
            return Ok(());
        }
        for it in 1..=self.state.iteration {
            let dir = self.iteration_dir(it);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing `{}`", dir.display()))?;
            }
        }
        Ok(())
    }

    /// The last chosen model as a Hugging Face directory, the report, the summary.
    fn finish(&mut self, last: Option<Transformer>) -> Result<Summary> {
        let model = match last {
            Some(m) => m,
            None => self.session.load(
                &self
                    .checkpoints
                    .path_of(self.state.iteration)
                    .join("policy"),
                false,
            )?,
        };
        let opts = SaveOptions {
            dtype: None,
            source_dir: Some(self.cfg.model.path.clone()),
        };
        model.save_pretrained(self.run_dir.join("final"), &opts)?;
        let title = format!("RestEM on {}", self.cfg.task.kind.name());
        crate::sampled::finish_report(&self.run_dir, &title, self.state.iteration, self.elapsed())
    }
}

/// `restem/*` and timings of an iteration's fine-tuning.
fn log_fit(m: &mut Metrics, p: &FitProgress, chosen: usize) {
    let steps = p.steps.max(1) as f64;
    m.set("restem/epochs_trained", p.epoch as f64);
    m.set("restem/steps", p.steps as f64);
    m.set("restem/loss", p.loss_sum / steps);
    m.set("restem/grad_norm", p.grad_norm_sum / steps);
    m.set("restem/lr", p.last_lr);
    for (e, acc) in p.accuracies.iter().enumerate() {
        m.set(&format!("restem/val_pass1_e{e}"), *acc);
    }
    m.set("restem/chosen_epoch", chosen as f64);
    m.set(
        "restem/val_pass1",
        p.accuracies.get(chosen).copied().unwrap_or(f64::NAN),
    );
    m.set("timing/update_s", p.train_s);
    m.set("timing/validation_s", p.validation_s);
    m.set("timing/checkpoint_s", p.checkpoint_s);
    m.set(
        "throughput/train_tokens_per_s",
        p.tokens as f64 / p.train_s.max(1e-9),
    );
}

fn progress_message(m: &Metrics) -> String {
    let mut s = format!(
        "kept {} | epoch {} | validation {:.1}%",
        m.get("restem/kept").unwrap_or(0.0),
        m.get("restem/chosen_epoch").unwrap_or(0.0),
        m.get("restem/val_pass1").unwrap_or(f64::NAN) * 100.0
    );
    if let Some(e) = m.get("eval/pass1") {
        s.push_str(&format!(" | held-out {:.1}%", e * 100.0));
    }
    s
}
