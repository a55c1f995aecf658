//! The `vineppo dpo` config (spec §2.3; reference `polIter_*_dpo_positive_*.jsonnet`): one round
//! of 64 samples per training problem from the initial model, at most 64 chosen × rejected pairs
//! per problem, the DPO-Positive loss (β 0.1 on MATH, 0.3 on GSM8K; λ 50), 3 epochs at LR 1e-6
//! with batches of 64 pairs.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use vine_data::TaskConfig;

use super::restem::check_common;
use super::sampled::{default_key, SampledRolloutSection};
use super::sections::{EvalSection, ModelSection, OptimSection, RunSection};
use super::train::check;
use super::ConfigFile;

/// The method tag written into `config.toml` (reports label the run with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpoMethod {
    /// DPO-Positive (Pal et al., 2024) as run in the VinePPO paper.
    #[default]
    #[serde(rename = "DPO+")]
    DpoPositive,
}

/// `[dpo]`: pairs, loss and passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoSection {
    /// β, the inverse temperature of the preference logit (reference: 0.1 MATH, 0.3 GSM8K).
    pub beta: f64,
    /// λ, the weight of the positive penalty (reference 50).
    pub lambda: f64,
    /// Label smoothing (reference 0).
    pub label_smoothing: f64,
    /// Keep at most this many pairs per problem, a seeded random choice (reference 64; leave
    /// out for every chosen × rejected pair).
    pub max_pairs_per_problem: Option<usize>,
    /// Passes over the pairs (reference 3).
    pub epochs: usize,
    /// Pairs per optimizer step (reference 64).
    pub batch_size: usize,
    /// Pairs per forward/backward pass (each pass runs 2 × this many sequences).
    pub micro_batch_size: usize,
    /// Log training metrics every this many optimizer steps (and at every evaluation and
    /// checkpoint).
    pub log_every: u64,
}

impl Default for DpoSection {
    fn default() -> Self {
        Self {
            beta: 0.1,
            lambda: 50.0,
            label_smoothing: 0.0,
            max_pairs_per_problem: Some(64),
            epochs: 3,
            batch_size: 64,
            micro_batch_size: 8,
            log_every: 10,
        }
    }
}

/// The whole `vineppo dpo` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoConfig {
    /// Always `"DPO+"`.
    #[serde(default)]
    pub method: DpoMethod,
    /// The initial (SFT) model: it samples the responses, is the frozen reference, and the
    /// policy starts from it.
    pub model: ModelSection,
    /// Data, prompt format and grading.
    #[serde(default)]
    pub task: TaskConfig,
    /// Sampling of the training problems (default 64 samples per problem).
    #[serde(default)]
    pub rollout: SampledRolloutSection,
    /// Pairs, loss, passes.
    #[serde(default)]
    pub dpo: DpoSection,
    /// Optimizer.
    #[serde(default)]
    pub optim: OptimSection,
    /// Held-out evaluation; `every` counts optimizer steps (default 500).
    #[serde(default)]
    pub eval: EvalSection,
    /// Seed, output, checkpoints (`save_every` counts optimizer steps, default 500).
    /// `iterations` must be 1: DPO+ samples once, as the reference.
    #[serde(default)]
    pub run: RunSection,
}

impl ConfigFile for DpoConfig {
    fn prepare(table: &mut toml::Table) {
        default_key(
            table,
            "rollout",
            "samples_per_problem",
            toml::Value::Integer(64),
        );
        default_key(table, "run", "iterations", toml::Value::Integer(1));
        default_key(table, "run", "save_every", toml::Value::Integer(500));
        default_key(table, "eval", "every", toml::Value::Integer(500));
    }

    fn validate(&self) -> Result<()> {
        self.rollout.validate()?;
        check(
            self.rollout.samples_per_problem >= 2,
            "rollout.samples_per_problem",
            || "must be at least 2: pairs are a correct and a wrong sample of one problem".into(),
        )?;
        let d = &self.dpo;
        check(d.beta > 0.0 && d.beta.is_finite(), "dpo.beta", || {
            "must be > 0 (reference: 0.1 on MATH, 0.3 on GSM8K)".into()
        })?;
        check(d.lambda >= 0.0, "dpo.lambda", || {
            "must be ≥ 0 (reference 50; 0 is plain DPO)".into()
        })?;
        check(
            (0.0..0.5).contains(&d.label_smoothing),
            "dpo.label_smoothing",
            || "use a value in [0, 0.5)".into(),
        )?;
        check(
            d.max_pairs_per_problem != Some(0),
            "dpo.max_pairs_per_problem",
            || "must be at least 1 (leave it out for every pair)".into(),
        )?;
        check(d.epochs > 0, "dpo.epochs", || "must be at least 1".into())?;
        check(
            d.batch_size > 0 && d.micro_batch_size > 0 && d.batch_size % d.micro_batch_size == 0,
            "dpo.micro_batch_size",
            || {
                format!(
                    "{} must divide dpo.batch_size = {}",
                    d.micro_batch_size, d.batch_size
                )
            },
        )?;
        check(self.run.iterations == 1, "run.iterations", || {
            "must be 1: DPO+ samples its pairs once from the initial model; set `dpo.epochs` for more passes".into()
        })?;
        check_common(&self.optim, &self.eval, &self.run)
    }
}

impl DpoConfig {
    /// The run directory (default `runs/<task>-dpo-s<seed>`).
    pub fn run_dir(&self) -> PathBuf {
        self.run.out_dir.clone().unwrap_or_else(|| {
            Path::new("runs").join(format!("{}-dpo-s{}", self.task.kind.name(), self.run.seed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, sets: &[&str]) -> Result<DpoConfig> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        super::super::load(Some(&p), &sets)
    }

    const MIN: &str = "[model]\npath = \"m\"\n";

    #[test]
    fn defaults_are_the_reference_hyperparameters() {
        // A partial `[rollout]` still gets DPO+'s 64 samples.
        let c = load(&format!("{MIN}[rollout]\ntemperature = 0.5\n"), &[]).unwrap();
        assert_eq!(
            (c.rollout.samples_per_problem, c.rollout.temperature),
            (64, 0.5)
        );
        let d = &c.dpo;
        assert_eq!((d.beta, d.lambda, d.label_smoothing), (0.1, 50.0, 0.0));
        assert_eq!(
            (d.max_pairs_per_problem, d.epochs, d.batch_size),
            (Some(64), 3, 64)
        );
        assert_eq!(
            (c.run.iterations, c.run.save_every, c.eval.every),
            (1, 500, 500)
        );
        assert!(super::super::to_toml(&c)
            .unwrap()
            .starts_with("method = \"DPO+\""));
        assert_eq!(c.run_dir(), Path::new("runs/arith-dpo-s2746318213"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&str, &[&str], &str); 5] = [
            (MIN, &["rollout.samples_per_problem=1"], "at least 2"),
            (MIN, &["run.iterations=2"], "dpo.epochs"),
            (MIN, &["dpo.beta=0"], "dpo.beta"),
            (MIN, &["dpo.micro_batch_size=7"], "dpo.micro_batch_size"),
            (
                MIN,
                &["dpo.max_pairs_per_problem=0"],
                "dpo.max_pairs_per_problem",
            ),
        ];
        for (text, sets, needle) in cases {
            let e = format!("{:#}", load(text, sets).unwrap_err());
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
        }
    }
}
