//! `vineppo train`: the outer loop (spec §1.1). One iteration, as [`Trainer::iteration`] reads:
//!
//! 1. sample P prompts and N responses each from the current policy;
//! 2. grade them (0/1; unfinished ⇒ 0 and no EOS) and cut them into reasoning steps;
//! 3. compute per-token log-probs of the sampling policy and the frozen reference;
//! 4. assign credit — VinePPO: K MC rollouts from every step boundary, `A_i = r_i + V̂_{i+1} − V̂_i`
//!    (or GAE with a critic, GRPO, RLOO);
//! 5. PPO epochs × minibatches with the clipped surrogate and the KL penalty.
//!
//! Evaluation runs before the first iteration and every `eval.every` iterations; checkpoints
//! every `run.save_every`. All randomness is seeded from `(run seed, iteration, …)`, so a resumed
//! run repeats exactly what the interrupted one would have done.

pub mod episodes;
pub mod setup;
pub mod update;
pub mod values;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use vine_rl::Episode;
use vine_rollout::Request;

use crate::config::KlPenalty;
use crate::metrics::Metrics;
use crate::seeds::{seed_for, Purpose};
use crate::text::TextStops;
use episodes::{log_scores, refill, score, Rollout};
pub use setup::{Summary, Trainer};
use update::{critic_values, log_rollout_kl, ppo_update, response_logprobs, UpdateInputs};
use values::{assign, CreditContext, EngineRollouts};

/// Trains with `cfg` (or resumes the run in `resume`) and returns the summary.
pub fn run(cfg: crate::config::TrainConfig, resume: Option<PathBuf>) -> Result<Summary> {
    let mut trainer = Trainer::setup(cfg, resume.as_deref())?;
    trainer.run()
}

impl Trainer {
    /// One training iteration; returns its metrics.
    pub fn iteration(&mut self, it: u64) -> Result<Metrics> {
        let mut m = Metrics::new(it);
        let rollouts = m.time("generate", || self.sample_trajectories(it))?;
        self.crash_point(it, "generate");
        let (scored, stats) = m.time("reward", || {
            score(rollouts, &self.task, &self.tokenizer, self.eos)
        })?;
        log_scores(&mut m, &stats, &scored);
        let episodes: Vec<Episode> = scored.into_iter().map(|s| s.episode).collect();
        if episodes.is_empty() {
            m.set("ppo/skipped_iteration", 1.0);
            return Ok(m);
        }
        let t = self.cfg.rollout.temperature;
        let micro = self.cfg.ppo.micro_batch_size;
        let (old_logp, ref_logp) = m.time("reference", || -> Result<_> {
            Ok((
                response_logprobs(&self.policy, &episodes, micro, t)?,
                response_logprobs(&self.reference, &episodes, micro, t)?,
            ))
        })?;
        log_rollout_kl(&mut m, &old_logp, &ref_logp, self.cfg.ppo.kl_clamp);
        let start = Instant::now();
        let credited = self.assign_credit(it, &episodes, &old_logp, &ref_logp, &mut m)?;
        m.add_time("values", start);
        self.crash_point(it, "values");
        let (episodes, credited, old_logp, ref_logp, old_values) =
            self.fill_to_size(it, episodes, credited, old_logp, ref_logp)?;
        let inputs = UpdateInputs {
            episodes: &episodes,
            advantages: &credited.0,
            old_logp: &old_logp,
            ref_logp: &ref_logp,
            values: old_values.as_deref().zip(credited.1.as_deref()),
        };
        let start = Instant::now();
        let steps = ppo_update(
            &self.policy,
            &mut self.optimizer,
            &self.schedule,
            self.critic.as_mut(),
            &inputs,
            &self.cfg.ppo,
            t,
            self.cfg.run.seed,
            it,
            &mut m,
        )?;
        m.add_time("update", start);
        self.crash_point(it, "update");
        self.state.optimizer_steps += steps;
        log_throughput(&mut m, &episodes, self.cfg.ppo.epochs);
        m.set(
            "progress/optimizer_steps",
            self.state.optimizer_steps as f64,
        );
        m.set(
            "progress/episodes",
            (it * self.cfg.episodes_per_iteration() as u64) as f64,
        );
        Ok(m)
    }

    /// Step 1: P prompts × N samples from the current policy.
    fn sample_trajectories(&mut self, it: u64) -> Result<Vec<Rollout>> {
        let r = &self.cfg.rollout;
        let picks = vine_data::sample::iteration_sample(
            self.task.train().len(),
            self.cfg.run.seed,
            it,
            r.prompts_per_iteration,
        );
        let requests: Vec<Request> = picks
            .iter()
            .enumerate()
            .map(|(g, &ex)| {
                Request::new(
                    self.prompts[ex].clone(),
                    r.samples_per_prompt,
                    seed_for(self.cfg.run.seed, Purpose::Trajectories, it, g as u64),
                )
            })
            .collect();
        let stops = TextStops::new(&self.tokenizer, &self.stop_strings);
        let mut bar = self.bars.generation("rollout");
        let out = self.engine.generate(
            &self.policy,
            &requests,
            &self.sampling,
            (!stops.is_empty()).then_some(&stops as _),
            &mut |p| bar.update(p),
        )?;
        self.iteration_prompts = picks
            .iter()
            .map(|&ex| (self.prompts[ex].clone(), ex))
            .collect();
        let mut rollouts = Vec::with_capacity(requests.len() * r.samples_per_prompt);
        for (g, (samples, &ex)) in out.into_iter().zip(&picks).enumerate() {
            for sample in samples {
                rollouts.push(Rollout {
                    example: ex,
                    group: g,
                    prompt: self.prompts[ex].clone(),
                    sample,
                });
            }
        }
        Ok(rollouts)
    }

    /// Step 4: per-token advantages (critic values first, for GAE).
    fn assign_credit(
        &mut self,
        it: u64,
        episodes: &[Episode],
        old_logp: &[Vec<f32>],
        ref_logp: &[Vec<f32>],
        m: &mut Metrics,
    ) -> Result<values::Credited> {
        let old_values = match &self.critic {
            Some(c) => Some(critic_values(
                &c.model,
                episodes,
                self.cfg.ppo.micro_batch_size,
            )?),
            None => None,
        };
        let stops = TextStops::new(&self.tokenizer, &self.stop_strings);
        let mut bar = self.bars.generation("values");
        let mut rollouts = EngineRollouts {
            lm: &self.policy,
            engine: &self.engine,
            tokenizer: &self.tokenizer,
            task: &self.task,
            params: &self.sampling,
            stops: (!stops.is_empty()).then_some(&stops as _),
            prompts: &self.iteration_prompts,
            seed: self.cfg.run.seed,
            iteration: it,
            progress: &mut |p| bar.update(p),
            tokens: 0,
        };
        let kl_in_reward =
            (self.cfg.ppo.kl_penalty == KlPenalty::Reward).then_some(self.cfg.ppo.kl_coef as f32);
        let ctx = CreditContext {
            rollouts: &mut rollouts,
            old_logp,
            ref_logp,
            old_values: old_values.as_deref(),
            kl_in_reward,
        };
        let credited = assign(&self.cfg.credit, episodes, ctx, m)?;
        self.last_old_values = old_values;
        Ok(credited)
    }

    /// Refills dropped episodes (with everything computed for them) up to the iteration size.
    #[allow(clippy::type_complexity)]
    fn fill_to_size(
        &mut self,
        it: u64,
        episodes: Vec<Episode>,
        credited: values::Credited,
        old_logp: Vec<Vec<f32>>,
        ref_logp: Vec<Vec<f32>>,
    ) -> Result<(
        Vec<Episode>,
        (Vec<Vec<f32>>, Option<Vec<Vec<f32>>>),
        Vec<Vec<f32>>,
        Vec<Vec<f32>>,
        Option<Vec<Vec<f32>>>,
    )> {
        let mut index: Vec<usize> = (0..episodes.len()).collect();
        refill(
            &mut index,
            self.cfg.episodes_per_iteration(),
            self.cfg.run.seed,
            it,
        );
        let pick =
            |v: &Vec<Vec<f32>>| -> Vec<Vec<f32>> { index.iter().map(|&i| v[i].clone()).collect() };
        let old_values = self.last_old_values.take().map(|v| pick(&v));
        Ok((
            index.iter().map(|&i| episodes[i].clone()).collect(),
            (
                pick(&credited.advantages),
                credited.returns.as_ref().map(pick),
            ),
            pick(&old_logp),
            pick(&ref_logp),
            old_values,
        ))
    }
}

/// Tokens per second of each stage that processes tokens.
fn log_throughput(m: &mut Metrics, episodes: &[Episode], epochs: usize) {
    let rate = |tokens: f64, stage: &str| {
        tokens
            / m.get(&format!("timing/{stage}_s"))
                .unwrap_or(f64::NAN)
                .max(1e-9)
    };
    let generated =
        m.get("response/length_mean").unwrap_or(0.0) * m.get("response/sampled").unwrap_or(0.0);
    let trained = episodes.iter().map(|e| e.len() as f64).sum::<f64>() * epochs as f64;
    let gen = rate(generated, "generate");
    let mc = m.get("vine/mc_tokens").map(|t| rate(t, "values"));
    let train = rate(trained, "update");
    m.set("throughput/gen_tokens_per_s", gen);
    if let Some(mc) = mc {
        m.set("throughput/mc_tokens_per_s", mc);
    }
    m.set("throughput/train_tokens_per_s", train);
}
