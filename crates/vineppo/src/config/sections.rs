//! Config sections shared by `train`, `sft`, `restem` and `dpo`. Defaults are the reference
//! implementation's hyperparameters (spec §1.7–1.9) unless a comment says otherwise.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::optim::{Decay, Warmup};

/// Run-time numeric type of the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit floats (CPU default).
    #[default]
    F32,
    /// bfloat16 weights and activations (GPU).
    Bf16,
    /// float16 weights and activations.
    F16,
}

/// `[model]`: the starting checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Hugging Face model directory (config.json, *.safetensors, tokenizer.json).
    pub path: PathBuf,
    /// Weight dtype for training and sampling.
    #[serde(default)]
    pub dtype: Dtype,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "cpu".into()
}

/// Sampling settings shared by trajectories and MC rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    /// Softmax temperature (> 0 for training; the trainer divides logits by it).
    pub temperature: f64,
    /// Nucleus sampling threshold.
    pub top_p: f64,
    /// Top-k cut (0 = off).
    #[serde(default)]
    pub top_k: usize,
    /// Most new tokens per sample.
    pub max_new_tokens: usize,
}

/// `[optim]`: AdamW and the learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// `log` (DeepSpeed's default, as the reference) or `linear`.
    pub warmup: Warmup,
    /// Fraction of all optimizer steps spent warming up (rounded up).
    pub warmup_fraction: f64,
    /// `linear` decay to 0 at the last step, or `constant`.
    pub decay: Decay,
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            warmup: Warmup::Log,
            warmup_fraction: 0.03,
            decay: Decay::Linear,
        }
    }
}

/// `[eval]`: held-out evaluation (reference: 16 samples at T = 0.35, top-p 0.9, seed 42).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Evaluate every this many iterations (0 = only before the first and after the last).
    pub every: u64,
    /// Evaluate before the first iteration.
    pub at_start: bool,
    /// Samples per problem (pass@1 is their mean correctness).
    pub samples: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus threshold.
    pub top_p: f64,
    /// Most new tokens (default: the rollout's).
    pub max_new_tokens: Option<usize>,
    /// Evaluate on the first N test problems only.
    pub limit: Option<usize>,
    /// Sampling seed.
    pub seed: u64,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            every: 10,
            at_start: true,
            samples: 16,
            temperature: 0.35,
            top_p: 0.9,
            max_new_tokens: None,
            limit: None,
            seed: 42,
        }
    }
}

/// `[run]`: length, seeds, output, checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Training iterations (reference: 1000 on MATH, 650 on GSM8K).
    pub iterations: u64,
    /// Run seed (reference `APP_SEED`).
    pub seed: u64,
    /// Run directory (default: `runs/<task>-<method>-s<seed>`).
    pub out_dir: Option<PathBuf>,
    /// Checkpoint every this many iterations (0 = only at the end).
    pub save_every: u64,
    /// Checkpoints to keep.
    pub keep_checkpoints: usize,
    /// Most sequences the engine decodes at once.
    pub max_batch: usize,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            iterations: 1000,
            seed: 2746318213,
            out_dir: None,
            save_every: 10,
            keep_checkpoints: 2,
            max_batch: 64,
            progress: true,
        }
    }
}
