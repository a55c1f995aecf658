//! The `[rollout]` section of the sample-then-fine-tune baselines (`vineppo restem`, `vineppo
//! dpo`): N samples for every training problem (or a seeded subset), with the same sampling
//! settings as `vineppo train` (reference: T = 0.6, top-p 0.9, 1024 new tokens, context 2047).

use serde::{Deserialize, Serialize};

use super::train::check;
use anyhow::Result;

/// `[rollout]` of `restem` and `dpo` configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampledRolloutSection {
    /// Problems sampled per iteration, a seeded subset drawn afresh every iteration (default:
    /// the whole training split, as the reference).
    pub problems_per_iteration: Option<usize>,
    /// Samples per problem (reference: 8 for RestEM, 64 for DPO+).
    pub samples_per_problem: usize,
    /// Sampling temperature; the fine-tuning log-probs divide logits by it too, as the
    /// reference's trainers do.
    pub temperature: f64,
    /// Nucleus threshold.
    pub top_p: f64,
    /// Top-k cut (0 = off).
    pub top_k: usize,
    /// Most new tokens per response.
    pub max_new_tokens: usize,
    /// Cap on prompt + response tokens (reference: 2047 for RhoMath).
    pub max_context: usize,
    /// Stop strings in addition to the prompt template's.
    pub stop_strings: Vec<String>,
    /// Drop training problems whose prompt is longer than this many tokens (reference: 1512).
    pub max_prompt_tokens: usize,
}

impl Default for SampledRolloutSection {
    fn default() -> Self {
        Self {
            problems_per_iteration: None,
            samples_per_problem: 8,
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

impl SampledRolloutSection {
    /// Checks the section; errors name the key.
    pub fn validate(&self) -> Result<()> {
        check(
            self.problems_per_iteration != Some(0),
            "rollout.problems_per_iteration",
            || "must be at least 1 (leave it out to sample every training problem)".into(),
        )?;
        check(
            self.samples_per_problem > 0,
            "rollout.samples_per_problem",
            || "must be at least 1".into(),
        )?;
        check(
            self.temperature > 0.0 && self.temperature.is_finite(),
            "rollout.temperature",
            || {
                format!(
                    "is {}; use a value > 0 (the update divides logits by it)",
                    self.temperature
                )
            },
        )?;
        check(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "rollout.top_p",
            || format!("is {}; use a value in (0, 1]", self.top_p),
        )?;
        check(self.max_new_tokens > 0, "rollout.max_new_tokens", || {
            "must be at least 1".into()
        })?;
        check(self.max_context > 1, "rollout.max_context", || {
            "must leave room for a prompt and a response".into()
        })
    }
}

/// Inserts `value` at `section.key` of a raw config tree unless the key is already there; the
/// way a command gives a shared section its own defaults (see `ConfigFile::prepare`).
pub(crate) fn default_key(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = entry {
        t.entry(key.to_string()).or_insert(value);
    }
}
