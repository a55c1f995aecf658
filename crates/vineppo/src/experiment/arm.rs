//! What runs an arm, and how to tell whether one of its runs is new, interrupted or done.
//!
//! [`ArmCommand`] names the command behind an arm (`command = "train"`, `"restem"` or `"dpo"` in
//! the experiment file); [`PreparedRun`] holds one run's validated config for that command, with
//! its own config type. What the experiment needs from any command's run directory is what
//! `vineppo train` writes (`vineppo restem` and `vineppo dpo` write the same):
//! - `config.toml`, the resolved config (compared on every re-run, so a changed experiment file
//!   cannot silently mix configs within an arm);
//! - `metrics.jsonl` with `iteration`, `eval/pass1`, `progress/optimizer_steps`,
//!   `time/elapsed_s`, `kl/k1_seq_mean` and `timing/*_s` lines (see `report::aggregate`);
//! - resumability from its own directory, and a way to tell that it has finished.
//!
//! The baselines measure no KL per iteration in the same way (DPO+ never samples from its
//! policy after the first round), so their KL columns stay empty where they logged none.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::checkpoint::Checkpointer;
use crate::config::dpo::DpoConfig;
use crate::config::restem::RestemConfig;
use crate::config::{self, TrainConfig};

/// The command that produces an arm's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArmCommand {
    /// `vineppo train` (VinePPO, PPO, GRPO or RLOO, by `credit.kind`).
    #[default]
    Train,
    /// `vineppo restem` (RestEM: filtered self-training).
    Restem,
    /// `vineppo dpo` (DPO+, DPO-Positive).
    Dpo,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Nothing started yet.
    New,
    /// Started and not finished: the next invocation resumes it from its latest checkpoint.
    Interrupted {
        /// Last checkpointed iteration (0 when none).
        iteration: u64,
    },
    /// Finished: skipped.
    Complete,
}

/// One run's validated config.
#[derive(Debug, Clone, PartialEq)]
pub enum PreparedRun {
    /// A `vineppo train` run.
    Train(Box<TrainConfig>),
    /// A `vineppo restem` run.
    Restem(Box<RestemConfig>),
    /// A `vineppo dpo` run.
    Dpo(Box<DpoConfig>),
}

/// Keys that do not change what a run computes, so they may differ from the saved config when
/// an experiment is re-run (the directory may also be reached by another path).
const IGNORED_ON_RESUME: [(&str, &str); 4] = [
    ("run", "progress"),
    ("run", "out_dir"),
    ("run", "max_batch"),
    ("run", "keep_checkpoints"),
];

impl PreparedRun {
    /// Validates the merged config `table` for `command`; `what` names it in errors.
    pub fn resolve(command: ArmCommand, table: Table, what: &str) -> Result<Self> {
        Ok(match command {
            ArmCommand::Train => Self::Train(Box::new(config::from_table(table, what)?)),
            ArmCommand::Restem => Self::Restem(Box::new(config::from_table(table, what)?)),
            ArmCommand::Dpo => Self::Dpo(Box::new(config::from_table(table, what)?)),
        })
    }

    /// Whether this run trains a critic (the default efficiency baseline is the first that does).
    pub fn trains_critic(&self) -> bool {
        match self {
            Self::Train(cfg) => cfg.credit.needs_critic(),
            Self::Restem(_) | Self::Dpo(_) => false,
        }
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> Result<String> {
        match self {
            Self::Train(cfg) => config::to_toml(cfg.as_ref()),
            Self::Restem(cfg) => config::to_toml(cfg.as_ref()),
            Self::Dpo(cfg) => config::to_toml(cfg.as_ref()),
        }
    }

    /// Where the run in `dir` stands.
    pub fn state(&self, dir: &Path) -> Result<RunState> {
        if !dir.join("config.toml").exists() {
            return Ok(RunState::New);
        }
        let (keep, iterations) = match self {
            Self::Train(cfg) => (cfg.run.keep_checkpoints, Some(cfg.run.iterations)),
            Self::Restem(cfg) => (cfg.run.keep_checkpoints, Some(cfg.run.iterations)),
            // DPO+ checkpoints count optimizer steps; its one round ends with `final/`.
            Self::Dpo(cfg) => (cfg.run.keep_checkpoints, None),
        };
        let latest = Checkpointer::new(dir, keep).latest()?;
        let iteration = latest.map(|(_, s)| s.iteration).unwrap_or(0);
        let done = iterations.is_none_or(|n| iteration >= n);
        if done && dir.join("final/config.json").exists() {
            Ok(RunState::Complete)
        } else {
            Ok(RunState::Interrupted { iteration })
        }
    }

    /// Fails when the config saved in `dir` differs from this one in a key that matters,
    /// naming the keys.
    pub fn check_saved(&self, dir: &Path) -> Result<()> {
        let path = dir.join("config.toml");
        let saved = std::fs::read_to_string(&path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        let saved: Table = saved
            .parse()
            .with_context(|| format!("`{}` is not valid TOML", path.display()))?;
        let ours: Table = self
            .to_toml()?
            .parse()
            .context("re-reading the resolved config")?;
        let changed = differences(&strip(saved), &strip(ours));
        if changed.is_empty() {
            return Ok(());
        }
        bail!(
            "`{}` was started with a different config ({}); restore the experiment file, or \
             delete the run directory to rerun it with the new one",
            dir.display(),
            changed.join(", ")
        )
    }

    /// Trains a new run, or resumes an interrupted one, in `dir`.
    pub fn execute(self, dir: &Path, state: RunState) -> Result<()> {
        let resume = matches!(state, RunState::Interrupted { .. }).then_some(dir);
        match self {
            Self::Train(cfg) => crate::train::run(*cfg, resume.map(Path::to_path_buf)).map(drop),
            Self::Restem(cfg) => crate::restem::run(*cfg, resume).map(drop),
            Self::Dpo(cfg) => crate::dpo::run(*cfg, resume).map(drop),
        }
    }
}

fn strip(mut t: Table) -> Table {
    for (section, key) in IGNORED_ON_RESUME {
        if let Some(Value::Table(s)) = t.get_mut(section) {
            s.remove(key);
        }
    }
    t
}

/// Dotted keys whose values differ between `a` and `b`, as `key: a → b`.
fn differences(a: &Table, b: &Table) -> Vec<String> {
    fn walk(prefix: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Table(x)), Some(Value::Table(y))) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (x, y) if x != y => {
                let show = |v: Option<&Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
                out.push(format!("`{prefix}`: {} → {}", show(x), show(y)));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        Some(&Value::Table(a.clone())),
        Some(&Value::Table(b.clone())),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_changed_keys_and_ignore_cosmetic_ones() {
        let a: Table = "[ppo]\nkl_coef = 0.0001\nclip = 0.2\n[run]\nprogress = true\n"
            .parse()
            .unwrap();
        let b: Table = "[ppo]\nkl_coef = 0.001\nclip = 0.2\n[run]\nprogress = false\n[x]\ny = 1\n"
            .parse()
            .unwrap();
        let d = differences(&strip(a), &strip(b));
        assert_eq!(
            d,
            ["`ppo.kl_coef`: 0.0001 → 0.001", "`x`: (unset) → { y = 1 }"]
        );
    }

    #[test]
    fn state_and_saved_config_of_a_train_run() {
        let dir = tempfile::tempdir().unwrap();
        let table: Table = "[model]\npath = \"m\"\n[run]\niterations = 2\n"
            .parse()
            .unwrap();
        let run = PreparedRun::resolve(ArmCommand::Train, table, "t").unwrap();
        assert_eq!(run.state(dir.path()).unwrap(), RunState::New);
        std::fs::write(dir.path().join("config.toml"), run.to_toml().unwrap()).unwrap();
        assert_eq!(
            run.state(dir.path()).unwrap(),
            RunState::Interrupted { iteration: 0 }
        );
        run.check_saved(dir.path()).unwrap();
        let other: Table = "[model]\npath = \"m\"\n[run]\niterations = 3\n"
            .parse()
            .unwrap();
        let other = PreparedRun::resolve(ArmCommand::Train, other, "t").unwrap();
        let e = format!("{:#}", other.check_saved(dir.path()).unwrap_err());
        assert!(e.contains("`run.iterations`: 2 → 3"), "{e}");
    }
}
