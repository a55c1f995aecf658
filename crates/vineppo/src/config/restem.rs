//! The `vineppo restem` config (spec §2.2; reference `polIter_*_restem_*.jsonnet`): 10
//! iterations; 8 samples per training problem at T = 0.6; keep at most 10 correct ones per
//! problem; fine-tune a fresh copy of the initial model for up to 8 epochs (LR 1e-6, 3 % warmup,
//! batch 64); choose the epoch on a validation split carved from the training split.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use vine_data::TaskConfig;

use super::sampled::{default_key, SampledRolloutSection};
use super::sections::{EvalSection, ModelSection, OptimSection, RunSection};
use super::train::check;
use super::ConfigFile;

/// The method tag written into `config.toml` (reports label the run with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestemMethod {
    /// ReST-EM (Singh et al., 2023) as run in the VinePPO paper.
    #[default]
    #[serde(rename = "RestEM")]
    RestEm,
}

/// How an iteration picks the epoch whose model samples the next iteration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochSelection {
    /// Walk the epochs (the untrained copy first) and stop at the first one whose validation
    /// accuracy does not improve on the previous one (reference `restem_paper_original`).
    #[default]
    FirstDrop,
    /// Train every epoch and take the best validation accuracy (reference `choose_best`).
    Best,
}

/// `[restem]`: filtering, fine-tuning and epoch selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestemSection {
    /// Keep at most this many correct responses per problem, the first ones sampled
    /// (reference 10; leave out for no cap).
    pub max_per_problem: Option<usize>,
    /// Most fine-tuning epochs per iteration (reference 8).
    pub epochs: usize,
    /// Sequences per optimizer step (reference 64).
    pub batch_size: usize,
    /// Sequences per forward/backward pass (gradients accumulate over a batch).
    pub micro_batch_size: usize,
    /// Problems carved out of the training split to choose epochs on; never trained on
    /// (reference: 500 for MATH, about 373 for GSM8K).
    pub validation_size: usize,
    /// Epoch selection rule.
    pub selection: EpochSelection,
    /// Samples per iteration used to estimate KL(π‖π_init) for the reports (0 = off).
    pub kl_samples: usize,
    /// Keep each iteration's training set and per-epoch models after the iteration ends
    /// (otherwise only the chosen model, in the iteration's checkpoint, is kept).
    pub keep_intermediate: bool,
}

impl Default for RestemSection {
    fn default() -> Self {
        Self {
            max_per_problem: Some(10),
            epochs: 8,
            batch_size: 64,
            micro_batch_size: 8,
            validation_size: 500,
            selection: EpochSelection::FirstDrop,
            kl_samples: 512,
            keep_intermediate: false,
        }
    }
}

/// The whole `vineppo restem` config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestemConfig {
    /// Always `"RestEM"`.
    #[serde(default)]
    pub method: RestemMethod,
    /// The initial (SFT) model: every iteration fine-tunes a fresh copy of it.
    pub model: ModelSection,
    /// Data, prompt format and grading.
    #[serde(default)]
    pub task: TaskConfig,
    /// Sampling of the training problems.
    #[serde(default)]
    pub rollout: SampledRolloutSection,
    /// Filtering, fine-tuning, epoch selection.
    #[serde(default)]
    pub restem: RestemSection,
    /// Optimizer (a fresh AdamW and schedule every iteration).
    #[serde(default)]
    pub optim: OptimSection,
    /// Held-out evaluation of each iteration's chosen model; `every` counts iterations. Its
    /// sampling settings also evaluate the validation split.
    #[serde(default)]
    pub eval: EvalSection,
    /// Iterations (default 10, as the reference), seed, output. Every iteration and epoch is
    /// checkpointed (the chosen model samples the next iteration), so `save_every` is unused.
    #[serde(default)]
    pub run: RunSection,
}

impl ConfigFile for RestemConfig {
    fn prepare(table: &mut toml::Table) {
        default_key(table, "run", "iterations", toml::Value::Integer(10));
        default_key(table, "eval", "every", toml::Value::Integer(1));
    }

    fn validate(&self) -> Result<()> {
        self.rollout.validate()?;
        let r = &self.restem;
        check(
            r.max_per_problem != Some(0),
            "restem.max_per_problem",
            || "must be at least 1 (leave it out for no cap)".into(),
        )?;
        check(r.epochs > 0, "restem.epochs", || {
            "must be at least 1".into()
        })?;
        check(
            r.batch_size > 0 && r.micro_batch_size > 0 && r.batch_size % r.micro_batch_size == 0,
            "restem.micro_batch_size",
            || {
                format!(
                    "{} must divide restem.batch_size = {}",
                    r.micro_batch_size, r.batch_size
                )
            },
        )?;
        check(r.validation_size > 0, "restem.validation_size", || {
            "must be at least 1: RestEM chooses each iteration's epoch on the validation split"
                .into()
        })?;
        check_common(&self.optim, &self.eval, &self.run)
    }
}

/// Checks shared by the baseline configs.
pub(crate) fn check_common(
    optim: &OptimSection,
    eval: &EvalSection,
    run: &RunSection,
) -> Result<()> {
    check(optim.lr > 0.0, "optim.lr", || "must be > 0".into())?;
    check(
        (0.0..1.0).contains(&optim.warmup_fraction),
        "optim.warmup_fraction",
        || "use a value in [0, 1)".into(),
    )?;
    check(eval.samples > 0, "eval.samples", || {
        "must be at least 1".into()
    })?;
    check(eval.temperature >= 0.0, "eval.temperature", || {
        "must be ≥ 0 (0 = greedy)".into()
    })?;
    check(run.max_batch > 0, "run.max_batch", || {
        "must be at least 1".into()
    })?;
    check(run.iterations > 0, "run.iterations", || {
        "must be at least 1".into()
    })
}

impl RestemConfig {
    /// The run directory (default `runs/<task>-restem-s<seed>`).
    pub fn run_dir(&self) -> PathBuf {
        self.run.out_dir.clone().unwrap_or_else(|| {
            Path::new("runs").join(format!(
                "{}-restem-s{}",
                self.task.kind.name(),
                self.run.seed
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, sets: &[&str]) -> Result<RestemConfig> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        super::super::load(Some(&p), &sets)
    }

    const MIN: &str = "[model]\npath = \"m\"\n";

    #[test]
    fn defaults_are_the_reference_hyperparameters() {
        // A partial `[run]` still gets RestEM's 10 iterations, not `vineppo train`'s 1000.
        let c = load(&format!("{MIN}[run]\nseed = 3\n"), &[]).unwrap();
        assert_eq!((c.run.iterations, c.eval.every, c.run.seed), (10, 1, 3));
        assert_eq!(
            (c.rollout.samples_per_problem, c.rollout.temperature),
            (8, 0.6)
        );
        assert_eq!(c.rollout.problems_per_iteration, None);
        let r = &c.restem;
        assert_eq!(
            (r.max_per_problem, r.epochs, r.batch_size),
            (Some(10), 8, 64)
        );
        assert_eq!(
            (r.selection, c.optim.lr, c.optim.warmup_fraction),
            (EpochSelection::FirstDrop, 1e-6, 0.03)
        );
        assert_eq!(c.run_dir(), Path::new("runs/arith-restem-s3"));
        let text = super::super::to_toml(&c).unwrap();
        assert!(text.starts_with("method = \"RestEM\""), "{text}");
        let again: RestemConfig =
            super::super::overrides::deserialize(text.parse().unwrap(), "x").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&str, &[&str], &str); 5] = [
            (
                MIN,
                &["restem.micro_batch_size=5"],
                "restem.micro_batch_size",
            ),
            (MIN, &["restem.validation_size=0"], "restem.validation_size"),
            (
                MIN,
                &["rollout.problems_per_iteration=0"],
                "rollout.problems_per_iteration",
            ),
            (MIN, &["restem.selection=\"last\""], "restem.selection"),
            ("method = \"PPO\"\n[model]\npath = \"m\"\n", &[], "method"),
        ];
        for (text, sets, needle) in cases {
            let e = format!("{:#}", load(text, sets).unwrap_err());
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
        }
    }
}
