//! The `vineppo sft` config: supervised fine-tuning on a task's reference solutions, from a
//! Hugging Face checkpoint or from a fresh Llama (with its own BPE tokenizer) built from
//! `[model.init]`. Reference SFT settings (spec §3.1): 2 epochs, batch 64, LR 1e-5 with a 3 %
//! warmup, loss on response tokens (mean per sequence, then over the batch).

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use vine_data::TaskConfig;

use super::sections::{Dtype, EvalSection, OptimSection, RunSection};
use super::train::check;
use super::ConfigFile;

/// A fresh Llama-architecture model (weights at HF init, std `initializer_range`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitSection {
    /// Tokenizer vocabulary (a byte-level BPE with split digits is trained on the task's
    /// training text), unless `tokenizer` names an existing tokenizer directory.
    pub vocab_size: usize,
    /// Directory with a `tokenizer.json` to reuse instead of training one.
    pub tokenizer: Option<PathBuf>,
    /// Residual width.
    pub hidden_size: usize,
    /// SwiGLU width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// Share the embedding and LM head.
    pub tie_word_embeddings: bool,
    /// Init std.
    pub initializer_range: f64,
}

impl Default for InitSection {
    fn default() -> Self {
        Self {
            vocab_size: 512,
            tokenizer: None,
            hidden_size: 256,
            intermediate_size: 688,
            num_hidden_layers: 4,
            num_attention_heads: 8,
            num_key_value_heads: 4,
            max_position_embeddings: 512,
            rope_theta: 10000.0,
            tie_word_embeddings: true,
            initializer_range: 0.02,
        }
    }
}

/// `[model]` of an SFT config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftModelSection {
    /// Start from this Hugging Face directory…
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// …or from a fresh model built from these settings.
    #[serde(default)]
    pub init: Option<InitSection>,
    /// Weight dtype.
    #[serde(default)]
    pub dtype: Dtype,
    /// `cpu`, `cuda`, `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
}

fn cpu() -> String {
    "cpu".into()
}

/// `[sft]`: passes and batch sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSection {
    /// Passes over the training split.
    pub epochs: usize,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Sequences per forward/backward (gradients accumulate over a batch).
    pub micro_batch_size: usize,
    /// Drop examples longer than this many tokens (prompt + solution + EOS).
    pub max_length: usize,
    /// Log training metrics every this many optimizer steps.
    pub log_every: u64,
}

impl Default for SftSection {
    fn default() -> Self {
        Self {
            epochs: 2,
            batch_size: 64,
            micro_batch_size: 16,
            max_length: 2048,
            log_every: 10,
        }
    }
}

fn sft_optim() -> OptimSection {
    OptimSection {
        lr: 1e-5,
        ..OptimSection::default()
    }
}

/// The whole `vineppo sft` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Starting point.
    pub model: SftModelSection,
    /// Data and prompt format.
    #[serde(default)]
    pub task: TaskConfig,
    /// Epochs and batches.
    #[serde(default)]
    pub sft: SftSection,
    /// Optimizer (reference SFT: LR 1e-5, 3 % warmup).
    #[serde(default = "sft_optim")]
    pub optim: OptimSection,
    /// Held-out evaluation; `every` counts optimizer steps.
    #[serde(default)]
    pub eval: EvalSection,
    /// Seed, output directory, checkpoints (`save_every` counts optimizer steps).
    #[serde(default)]
    pub run: RunSection,
    /// Also write the final model here (a Hugging Face directory), e.g. `models/arith-tiny`.
    #[serde(default)]
    pub output: Option<PathBuf>,
}

impl ConfigFile for SftConfig {
    fn validate(&self) -> Result<()> {
        let m = &self.model;
        check(m.path.is_some() != m.init.is_some(), "model", || {
            "set exactly one of `model.path` (a checkpoint) and `[model.init]` (a fresh model)"
                .into()
        })?;
        if let Some(i) = &m.init {
            check(
                i.num_attention_heads > 0 && i.hidden_size % i.num_attention_heads == 0,
                "model.init.num_attention_heads",
                || format!("must divide hidden_size = {}", i.hidden_size),
            )?;
            check(
                i.num_key_value_heads > 0 && i.num_attention_heads % i.num_key_value_heads == 0,
                "model.init.num_key_value_heads",
                || {
                    format!(
                        "must divide num_attention_heads = {}",
                        i.num_attention_heads
                    )
                },
            )?;
            check(
                i.tokenizer.is_some() || i.vocab_size >= 300,
                "model.init.vocab_size",
                || "must be at least 300 (256 bytes + specials + merges)".into(),
            )?;
        }
        let s = &self.sft;
        check(s.epochs > 0, "sft.epochs", || "must be at least 1".into())?;
        check(
            s.batch_size > 0 && s.micro_batch_size > 0 && s.batch_size % s.micro_batch_size == 0,
            "sft.micro_batch_size",
            || {
                format!(
                    "{} must divide sft.batch_size = {}",
                    s.micro_batch_size, s.batch_size
                )
            },
        )?;
        check(self.optim.lr > 0.0, "optim.lr", || "must be > 0".into())?;
        check(self.eval.samples > 0, "eval.samples", || {
            "must be at least 1".into()
        })?;
        Ok(())
    }
}

impl SftConfig {
    /// The run directory (default `runs/sft-<task>-s<seed>`).
    pub fn run_dir(&self) -> PathBuf {
        self.run.out_dir.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "runs/sft-{}-s{}",
                self.task.kind.name(),
                self.run.seed
            ))
        })
    }
}
