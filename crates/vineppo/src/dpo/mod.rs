//! `vineppo dpo`: the DPO-Positive baseline (spec §2.3; reference `dpo_positive_trainer.py`,
//! `math_dpo_positive_episode_generator.py`, `polIter_*_dpo_positive_*.jsonnet`).
//!
//! 1. Sample N responses (reference 64, T = 0.6, top-p 0.9) for every training problem from the
//!    initial model, and grade them.
//! 2. Pair every correct response with every wrong or unfinished one of the same problem, keeping
//!    at most P pairs per problem (reference 64, a seeded random choice; [`pairs`]).
//! 3. Compute each paired response's summed log-prob under the frozen initial model, once.
//! 4. Train a copy of the initial model with the DPO+ loss for E epochs (reference 3; LR 1e-6,
//!    3 % warmup, batches of 64 pairs; [`update`]).
//!
//! The held-out test split is evaluated before training, every `eval.every` optimizer steps and
//! at the end; metric lines are numbered by optimizer step (line 0 holds the initial evaluation
//! and the statistics of the sampled round). The sampled round is saved (`RUN_DIR/dpo/round/`)
//! before training, and checkpoints hold the policy, the optimizer and the step, so a resumed run
//! ends with the weights and metrics of an uninterrupted one.
//!
//! Deviations: responses are paired by token ids, not re-tokenised text; empty responses
//! (nothing to train on) take part in no pair; the reference's intermediate checkpoints are
//! written every `save_steps` = 500 optimizer steps, here every `run.save_every`.

pub mod pairs;
pub mod update;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vine_model::{SaveOptions, Transformer};
use vine_rl::batch;
use vine_rl::loss::DpoConfig as DpoLossConfig;

use crate::checkpoint::{crash_point, Checkpointer, TrainState};
use crate::config::dpo::DpoConfig;
use crate::metrics::{Metrics, MetricsLog};
use crate::optim::AdamW;
use crate::progress::Bars;
use crate::sampled::store::{self, Stored};
use crate::sampled::{create_run_dir, logged, problem_set, SampleSession, SampleStats};
use crate::seeds::{seed_for, Purpose};
use crate::train::Summary;
use pairs::build_pairs;
use update::{dpo_step, sequence_logprobs, PairData, StepStats};

/// Trains with `cfg` (or resumes the run in `resume`, whose saved config `cfg` then is).
pub fn run(cfg: DpoConfig, resume: Option<&Path>) -> Result<Summary> {
    let run_dir = match resume {
        Some(dir) => dir.to_path_buf(),
        None => {
            let dir = cfg.run_dir();
            create_run_dir(&cfg, &dir)?;
            dir
        }
    };
    let session = SampleSession::open(&cfg.model, &cfg.task, &cfg.rollout, cfg.run.max_batch)?;
    let checkpoints = Checkpointer::new(&run_dir, cfg.run.keep_checkpoints);
    let latest = checkpoints.latest_if(resume.is_some())?;
    let log = MetricsLog::open(
        &run_dir,
        crate::checkpoint::keep_metrics_through(latest.as_ref(), resume.is_some()),
    )?;
    let mut run = DpoRun {
        bars: Bars::new(cfg.run.progress),
        state: latest
            .as_ref()
            .map_or_else(TrainState::fresh, |(_, s)| s.clone()),
        session_start: Instant::now(),
        cfg,
        run_dir,
        session,
        log,
        checkpoints,
    };
    let data = run.prepare_round()?;
    run.train(&data, latest.map(|(d, _)| d).as_deref())
}

struct DpoRun {
    cfg: DpoConfig,
    run_dir: PathBuf,
    session: SampleSession,
    bars: Bars,
    log: MetricsLog,
    checkpoints: Checkpointer,
    state: TrainState,
    session_start: Instant,
}

impl DpoRun {
    fn elapsed(&self) -> f64 {
        self.state.elapsed_s + self.session_start.elapsed().as_secs_f64()
    }

    fn loss_config(&self) -> DpoLossConfig {
        let d = &self.cfg.dpo;
        DpoLossConfig {
            beta: d.beta as f32,
            lambda: d.lambda as f32,
            label_smoothing: d.label_smoothing as f32,
        }
    }

    /// The pairs to train on: loaded from the run directory, or sampled, paired and scored by
    /// the reference now (and logged as line 0 with the initial evaluation).
    fn prepare_round(&mut self) -> Result<PairData> {
        let dir = self.run_dir.join("dpo").join("round");
        let n_train = self.session.task.train().len();
        if logged(&self.run_dir, 0) {
            let stored = store::load(&dir, n_train)?.with_context(|| {
                format!("`{}` is missing; the run cannot be resumed", dir.display())
            })?;
            return self.pair_data(stored);
        }
        let reference = self.session.load(&self.cfg.model.path, false)?;
        let mut m = Metrics::new(0);
        if self.cfg.eval.at_start {
            self.evaluate(&reference, 0, &mut m)?;
        }
        let stored = match store::load(&dir, n_train)? {
            Some(s) => s,
            None => {
                let s = self.sample_round(&reference)?;
                store::save(&dir, &s)?;
                s
            }
        };
        crash_point(0, "sampled");
        m.extend(&stored.metrics);
        m.set("time/elapsed_s", self.elapsed());
        self.log.append(&m)?;
        if stored.pairs.is_empty() {
            bail!("no training problem had both a correct and a wrong response among its {} samples, so DPO+ has no pairs; sample more (`rollout.samples_per_problem`) or more problems", self.cfg.rollout.samples_per_problem);
        }
        self.pair_data(stored)
    }

    /// Steps 1–3: sample, pair, score with the reference.
    fn sample_round(&self, reference: &Transformer) -> Result<Stored> {
        let (r, seed) = (&self.cfg.rollout, self.cfg.run.seed);
        let mut m = Metrics::new(0);
        let start = Instant::now();
        let n_train = self.session.task.train().len();
        let problems = problem_set(n_train, r.problems_per_iteration, seed, 1);
        let n = r.samples_per_problem;
        let graded = self
            .session
            .sample(reference, &problems, n, (seed, 1), &self.bars)?;
        m.add_time("generate", start);
        SampleStats::of(&graded, problems.len()).log(&mut m, "dpo");
        let (all_pairs, stats) = build_pairs(&graded, n, self.cfg.dpo.max_pairs_per_problem, seed);
        // Empty responses have nothing to train on.
        let pairs: Vec<(usize, usize)> = all_pairs
            .into_iter()
            .filter(|&(c, r)| !graded[c].tokens.is_empty() && !graded[r].tokens.is_empty())
            .collect();
        let mut used: Vec<usize> = pairs.iter().flat_map(|&(c, r)| [c, r]).collect();
        used.sort_unstable();
        used.dedup();
        let position = |i: usize| used.binary_search(&i).unwrap_or_default();
        let responses: Vec<_> = used.iter().map(|&i| graded[i].clone()).collect();
        let pairs: Vec<(usize, usize)> = pairs
            .iter()
            .map(|&(c, r)| (position(c), position(r)))
            .collect();
        let start = Instant::now();
        let episodes = self.episodes(&responses)?;
        let chunk = 2 * self.cfg.dpo.micro_batch_size;
        let ref_logp = sequence_logprobs(reference, &episodes, chunk, r.temperature)?;
        m.add_time("reference", start);
        m.set("dpo/pairs", pairs.len() as f64);
        m.set("dpo/responses", responses.len() as f64);
        m.set("dpo/problems_with_pairs", stats.with_pairs as f64);
        m.set("dpo/all_correct_problems", stats.all_correct as f64);
        m.set("dpo/all_wrong_problems", stats.all_rejected as f64);
        m.set("dpo/capped_problems", stats.capped as f64);
        let ahead = pairs
            .iter()
            .filter(|&&(c, r)| ref_logp[c] > ref_logp[r])
            .count();
        m.set("dpo/ref_accuracy", ahead as f64 / pairs.len().max(1) as f64);
        Ok(Stored {
            responses,
            ref_logp,
            pairs,
            metrics: m,
        })
    }

    fn episodes(&self, responses: &[crate::sampled::Graded]) -> Result<Vec<vine_rl::Episode>> {
        responses
            .iter()
            .map(|g| {
                self.session
                    .episode(g)?
                    .context("a paired response is empty; delete `dpo/round` and resume")
            })
            .collect()
    }

    fn pair_data(&self, stored: Stored) -> Result<PairData> {
        if stored.ref_logp.len() != stored.responses.len() {
            bail!("the saved round has no reference log-probs for its responses; delete `dpo/round` and resume");
        }
        Ok(PairData {
            episodes: self.episodes(&stored.responses)?,
            ref_logp: stored.ref_logp,
            pairs: stored.pairs,
        })
    }

    /// Step 4: `dpo.epochs` passes over the pairs, from the initial model or from the
    /// checkpoint `resume_from` (at `state.optimizer_steps`).
    fn train(&mut self, data: &PairData, resume_from: Option<&Path>) -> Result<Summary> {
        let policy = match resume_from {
            Some(dir) => self.session.load(&dir.join("policy"), true)?,
            None => self.session.load(&self.cfg.model.path, true)?,
        };
        let mut optimizer = AdamW::new(policy.vars(), self.cfg.optim.adamw())?;
        if let Some(dir) = resume_from {
            optimizer.load(&dir.join("optimizer.safetensors"))?;
        }
        let d = self.cfg.dpo.clone();
        let per_epoch = data.pairs.len().div_ceil(d.batch_size) as u64;
        let total = per_epoch * d.epochs as u64;
        let schedule = self.cfg.optim.schedule(total);
        let bar = self.bars.main(total, "steps");
        bar.set_prefix("DPO+");
        bar.set_position(self.state.optimizer_steps);
        let mut window = Window::default();
        for step in self.state.optimizer_steps..total {
            let start = Instant::now();
            let pairs = batch_pairs(data, step, per_epoch, d.batch_size, self.cfg.run.seed);
            let (grads, stats) = dpo_step(
                &policy,
                data,
                &pairs,
                d.micro_batch_size,
                self.cfg.rollout.temperature,
                &self.loss_config(),
            )?;
            let lr = schedule.lr(step);
            let s = optimizer.step(&grads, lr).context("DPO+ optimizer step")?;
            window.add(&stats, s.grad_norm, lr, start);
            let done = step + 1;
            self.state.optimizer_steps = done;
            self.state.iteration = done;
            crash_point(done, "update");
            self.after_step(&policy, &optimizer, &mut window, (done, total, per_epoch))?;
            bar.set_position(done);
        }
        bar.finish();
        self.finish(&policy)
    }

    /// Logs, evaluates and checkpoints on schedule after optimizer step `done`.
    fn after_step(
        &mut self,
        policy: &Transformer,
        optimizer: &AdamW,
        window: &mut Window,
        (done, total, per_epoch): (u64, u64, u64),
    ) -> Result<()> {
        let every = |n: u64| n > 0 && done % n == 0;
        let last = done == total;
        let eval_now = last || every(self.cfg.eval.every);
        let save_now = last || every(self.cfg.run.save_every);
        if !(eval_now || save_now || every(self.cfg.dpo.log_every)) {
            return Ok(());
        }
        let mut m = Metrics::new(done);
        window.flush(&mut m, done as f64 / per_epoch.max(1) as f64);
        if eval_now {
            self.evaluate(policy, done, &mut m)?;
        }
        m.set("time/elapsed_s", self.elapsed());
        self.log.append(&m)?;
        if save_now {
            let start = Instant::now();
            self.save_checkpoint(policy, optimizer)?;
            window.checkpoint_s += start.elapsed().as_secs_f64();
        }
        Ok(())
    }

    fn evaluate(&self, lm: &Transformer, step: u64, m: &mut Metrics) -> Result<()> {
        let path = self
            .run_dir
            .join("eval")
            .join(format!("step_{step:06}.json"));
        let what = format!("step {step:>6}");
        self.session
            .evaluate_held_out(lm, &self.cfg.eval, &self.bars, (&path, &what), m)
    }

    fn save_checkpoint(&mut self, policy: &Transformer, optimizer: &AdamW) -> Result<()> {
        self.state.elapsed_s = self.elapsed();
        self.session_start = Instant::now();
        let source = Some(self.cfg.model.path.clone());
        self.checkpoints.save(&self.state, |dir| {
            let p = dir.join("policy");
            std::fs::create_dir_all(&p)?;
            policy.write_hf_files(
                &p,
                &SaveOptions {
                    dtype: None,
                    source_dir: source,
                },
            )?;
            optimizer.save(&dir.join("optimizer.safetensors"))
        })?;
        Ok(())
    }

    /// The final policy as a Hugging Face directory, the report, the summary.
    fn finish(&mut self, policy: &Transformer) -> Result<Summary> {
        let opts = SaveOptions {
            dtype: None,
            source_dir: Some(self.cfg.model.path.clone()),
        };
        policy.save_pretrained(self.run_dir.join("final"), &opts)?;
        crate::sampled::finish_report(
            &self.run_dir,
            &format!("DPO+ on {}", self.cfg.task.kind.name()),
            self.state.optimizer_steps,
            self.elapsed(),
        )
    }
}

/// The pairs of optimizer step `step`: epoch `step / per_epoch` visits the pairs in a
/// permutation seeded by `(seed, Minibatches, 0, epoch)`, `batch` at a time (the last smaller).
fn batch_pairs(
    data: &PairData,
    step: u64,
    per_epoch: u64,
    batch: usize,
    seed: u64,
) -> Vec<(usize, usize)> {
    let epoch = step / per_epoch.max(1);
    let order = batch::shuffled(
        data.pairs.len(),
        seed_for(seed, Purpose::Minibatches, 0, epoch),
    );
    let k = (step % per_epoch.max(1)) as usize * batch;
    order[k..(k + batch).min(order.len())]
        .iter()
        .map(|&i| data.pairs[i])
        .collect()
}

/// Training statistics between metric lines.
#[derive(Default)]
struct Window {
    stats: StepStats,
    grad_norm: f64,
    lr: f64,
    steps: f64,
    seconds: f64,
    checkpoint_s: f64,
}

impl Window {
    fn add(&mut self, s: &StepStats, grad_norm: f64, lr: f64, start: Instant) {
        self.stats.merge(s);
        self.grad_norm += grad_norm;
        self.lr = lr;
        self.steps += 1.0;
        self.seconds += start.elapsed().as_secs_f64();
    }

    fn flush(&mut self, m: &mut Metrics, epoch: f64) {
        let s = &self.stats;
        let p = s.pairs.max(1.0);
        m.set("dpo/loss", s.loss / p);
        m.set("dpo/reward_accuracy", s.reward_accuracy / p);
        m.set("dpo/margin", s.margin / p);
        m.set("dpo/chosen_reward", s.chosen_reward / p);
        m.set("dpo/rejected_reward", s.rejected_reward / p);
        m.set("dpo/positive_penalty", s.positive_penalty / p);
        m.set("dpo/policy_accuracy", s.policy_accuracy / p);
        m.set("dpo/grad_norm", self.grad_norm / self.steps.max(1.0));
        m.set("dpo/lr", self.lr);
        m.set("dpo/epoch", epoch);
        m.set(
            "progress/optimizer_steps",
            m.get("iteration").unwrap_or(0.0),
        );
        m.set("timing/update_s", self.seconds);
        m.set("timing/checkpoint_s", self.checkpoint_s);
        m.set(
            "throughput/train_tokens_per_s",
            s.tokens as f64 / self.seconds.max(1e-9),
        );
        *self = Window::default();
    }
}
