//! The `vineppo train` config: sections, defaults (the reference's hyperparameters) and
//! validation with messages that name the key and the fix.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use vine_rl::Credit;

use vine_data::TaskConfig;

use super::sections::{EvalSection, ModelSection, OptimSection, RunSection};

/// `[rollout]`: trajectory sampling (reference: 64 prompts × 8 samples, T = 0.6, top-p 0.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSection {
    /// Prompts drawn per iteration.
    pub prompts_per_iteration: usize,
    /// Samples per prompt (the GRPO/RLOO group size).
    pub samples_per_prompt: usize,
    /// Sampling temperature; log-probs in the update divide logits by it too.
    pub temperature: f64,
    /// Nucleus threshold (not accounted for in log-probs, as the reference).
    pub top_p: f64,
    /// Top-k cut (0 = off).
    pub top_k: usize,
    /// Most new tokens per response and per MC rollout.
    pub max_new_tokens: usize,
    /// Cap on prompt + response tokens (reference: 2047 for RhoMath).
    pub max_context: usize,
    /// Stop strings in addition to the prompt template's (the stop string is removed and the
    /// response counts as finished).
    pub stop_strings: Vec<String>,
    /// Drop training problems whose prompt is longer than this many tokens (reference: 1512).
    pub max_prompt_tokens: usize,
}

impl Default for RolloutSection {
    fn default() -> Self {
        Self {
            prompts_per_iteration: 64,
            samples_per_prompt: 8,
            temperature: 0.6,
            top_p: 0.9,
            top_k: 0,
            max_new_tokens: 1024,
            max_context: 2047,
            stop_strings: Vec::new(),
            max_prompt_tokens: 1512,
        }
    }
}

/// Short method name of a credit kind, used in run directories and reports.
pub fn method_name(credit: &Credit) -> &'static str {
    match credit {
        Credit::Vine(_) => "vineppo",
        Credit::Gae(_) => "ppo",
        Credit::Grpo(_) => "grpo",
        Credit::Rloo {} => "rloo",
    }
}

/// Where the KL-to-reference penalty goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlPenalty {
    /// k3 estimator added to the loss (the reference's `control_variate`).
    Loss,
    /// Per-token k1 shaping of the reward (only meaningful with `credit.kind = "gae"`).
    Reward,
    /// No penalty.
    None,
}

/// `[ppo]`: the update (reference: 2 epochs, minibatch 64, clip 0.2, KL 1e-4 in the loss).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoSection {
    /// Passes over the iteration's episodes.
    pub epochs: usize,
    /// Episodes per optimizer step.
    pub minibatch_size: usize,
    /// Episodes per forward/backward pass (gradients accumulate over a minibatch).
    pub micro_batch_size: usize,
    /// Ratio clip ε.
    pub clip: f64,
    /// KL coefficient β.
    pub kl_coef: f64,
    /// Where the KL penalty goes.
    pub kl_penalty: KlPenalty,
    /// Per-token clamp of the k3 estimator (reference: 10).
    pub kl_clamp: f64,
    /// Whiten advantages per minibatch.
    pub whiten_advantages: bool,
    /// Zero a minibatch's loss when its mean ratio exceeds this (reference: 10).
    pub ratio_threshold: Option<f64>,
}

impl Default for PpoSection {
    fn default() -> Self {
        Self {
            epochs: 2,
            minibatch_size: 64,
            micro_batch_size: 16,
            clip: 0.2,
            kl_coef: 1e-4,
            kl_penalty: KlPenalty::Loss,
            kl_clamp: 10.0,
            whiten_advantages: true,
            ratio_threshold: Some(10.0),
        }
    }
}

/// The whole `vineppo train` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Starting checkpoint (also the frozen reference policy).
    pub model: ModelSection,
    /// Data, prompt format and grading (`[task] kind = "gsm8k" | "math" | "math500" | "arith"`).
    #[serde(default)]
    pub task: TaskConfig,
    /// Trajectory sampling.
    #[serde(default)]
    pub rollout: RolloutSection,
    /// Credit assignment method (`[credit] kind = "vine" | "gae" | "grpo" | "rloo"`).
    #[serde(default = "default_credit")]
    pub credit: Credit,
    /// PPO update.
    #[serde(default)]
    pub ppo: PpoSection,
    /// Optimizer.
    #[serde(default)]
    pub optim: OptimSection,
    /// Held-out evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// Run length, seed, output.
    #[serde(default)]
    pub run: RunSection,
}

fn default_credit() -> Credit {
    Credit::Vine(vine_rl::VineParams::default())
}

/// Fails with `key: problem; fix` when `ok` is false.
pub(crate) fn check(ok: bool, key: &str, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("invalid config: `{key}`: {}", msg())
    }
}

impl TrainConfig {
    /// Episodes per iteration (prompts × samples).
    pub fn episodes_per_iteration(&self) -> usize {
        self.rollout.prompts_per_iteration * self.rollout.samples_per_prompt
    }

    /// Optimizer steps per iteration.
    pub fn steps_per_iteration(&self) -> u64 {
        (self.episodes_per_iteration() / self.ppo.minibatch_size.max(1) * self.ppo.epochs) as u64
    }

    /// Optimizer steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.steps_per_iteration() * self.run.iterations
    }

    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.run.out_dir.clone().unwrap_or_else(|| {
            let task = self.task.kind.name();
            Path::new("runs").join(format!(
                "{task}-{}-s{}",
                method_name(&self.credit),
                self.run.seed
            ))
        })
    }

    /// Checks invariants and combinations.
    pub fn validate(&self) -> Result<()> {
        let r = &self.rollout;
        let p = &self.ppo;
        check(
            r.prompts_per_iteration > 0,
            "rollout.prompts_per_iteration",
            || "must be at least 1".into(),
        )?;
        check(
            r.samples_per_prompt > 0,
            "rollout.samples_per_prompt",
            || "must be at least 1".into(),
        )?;
        check(
            r.temperature > 0.0 && r.temperature.is_finite(),
            "rollout.temperature",
            || {
                format!("is {}; training samples need a temperature > 0 (the update divides logits by it)", r.temperature)
            },
        )?;
        check(r.top_p > 0.0 && r.top_p <= 1.0, "rollout.top_p", || {
            format!("is {}; use a value in (0, 1]", r.top_p)
        })?;
        check(r.max_new_tokens > 0, "rollout.max_new_tokens", || {
            "must be at least 1".into()
        })?;
        check(
            r.max_context > r.max_new_tokens.min(r.max_context),
            "rollout.max_context",
            || "must leave room for the prompt".into(),
        )?;
        if let Some(problem) = self
            .credit
            .validate(r.samples_per_prompt)
            .into_iter()
            .next()
        {
            bail!("invalid config: {problem}");
        }
        if p.kl_penalty == KlPenalty::Reward {
            check(self.credit.needs_critic(), "ppo.kl_penalty", || {
                "\"reward\" shapes per-token rewards, which only GAE uses; use \"loss\" (the reference) with this credit kind".into()
            })?;
        }
        let episodes = self.episodes_per_iteration();
        check(
            p.minibatch_size > 0 && episodes % p.minibatch_size == 0,
            "ppo.minibatch_size",
            || {
                format!("{} does not divide the {episodes} episodes per iteration (prompts_per_iteration × samples_per_prompt); pick a divisor", p.minibatch_size)
            },
        )?;
        check(
            p.micro_batch_size > 0 && p.minibatch_size % p.micro_batch_size == 0,
            "ppo.micro_batch_size",
            || {
                format!(
                    "{} does not divide ppo.minibatch_size = {}; pick a divisor",
                    p.micro_batch_size, p.minibatch_size
                )
            },
        )?;
        check(p.epochs > 0, "ppo.epochs", || "must be at least 1".into())?;
        check(p.clip > 0.0, "ppo.clip", || {
            "must be > 0 (reference: 0.2)".into()
        })?;
        check(p.kl_coef >= 0.0, "ppo.kl_coef", || "must be ≥ 0".into())?;
        check(self.optim.lr > 0.0, "optim.lr", || "must be > 0".into())?;
        check(
            (0.0..1.0).contains(&self.optim.warmup_fraction),
            "optim.warmup_fraction",
            || "use a value in [0, 1)".into(),
        )?;
        check(self.eval.samples > 0, "eval.samples", || {
            "must be at least 1".into()
        })?;
        check(self.eval.temperature >= 0.0, "eval.temperature", || {
            "must be ≥ 0 (0 = greedy)".into()
        })?;
        check(self.run.max_batch > 0, "run.max_batch", || {
            "must be at least 1".into()
        })?;
        check(self.run.iterations > 0, "run.iterations", || {
            "must be at least 1".into()
        })?;
        Ok(())
    }
}
