//! Configs: defaults → TOML file → `--set section.key=value` → validated struct.
//!
//! Unknown keys are errors (`deny_unknown_fields`); overrides are applied to the TOML tree before
//! deserialisation so they go through the same type checks; errors name the key and the fix.

pub mod dpo;
pub mod overrides;
pub mod restem;
pub mod sampled;
pub mod sections;
pub mod sft;
pub mod train;

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use sections::{Dtype, EvalSection, ModelSection, OptimSection, RunSection, SamplingSection};
pub use train::{method_name, KlPenalty, PpoSection, RolloutSection, TrainConfig};

/// A config file type: optional defaults filled into the raw tree, and its own invariants.
pub trait ConfigFile {
    /// Fills defaults serde cannot express (e.g. an enum tag) into the raw tree.
    fn prepare(_table: &mut toml::Table) {}
    /// Fails with a message naming the key and the fix.
    fn validate(&self) -> Result<()>;
}

impl ConfigFile for TrainConfig {
    fn prepare(table: &mut toml::Table) {
        // `[credit]` without `kind` means VinePPO, as when the section is absent.
        if let Some(toml::Value::Table(credit)) = table.get_mut("credit") {
            credit
                .entry("kind")
                .or_insert_with(|| toml::Value::String("vine".into()));
        }
    }
    fn validate(&self) -> Result<()> {
        TrainConfig::validate(self)
    }
}

/// Reads `path` (if any), applies `sets`, deserialises and validates.
pub fn load<T: DeserializeOwned + ConfigFile>(path: Option<&Path>, sets: &[String]) -> Result<T> {
    let mut table = match path {
        Some(p) => overrides::read_table(p)?,
        None => toml::Table::new(),
    };
    overrides::apply_sets(&mut table, sets)?;
    let what = path
        .map(|p| format!("config `{}`", p.display()))
        .unwrap_or_else(|| "config".into());
    from_table(table, &what)
}

/// Fills the defaults of `T` into `table`, deserialises and validates it; `what` names the
/// config in errors.
pub fn from_table<T: DeserializeOwned + ConfigFile>(
    mut table: toml::Table,
    what: &str,
) -> Result<T> {
    T::prepare(&mut table);
    let cfg: T = overrides::deserialize(table, what)?;
    cfg.validate().with_context(|| what.to_string())?;
    Ok(cfg)
}

/// The resolved config as TOML (what `vineppo config` prints and runs save).
pub fn to_toml<T: Serialize>(cfg: &T) -> Result<String> {
    toml::to_string_pretty(cfg).context("serialising the resolved config")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, sets: &[&str]) -> Result<TrainConfig> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load(Some(&p), &sets)
    }

    const MIN: &str = "[model]\npath = \"m\"\n";

    #[test]
    fn defaults_are_the_reference_hyperparameters() {
        let c = load_str(MIN, &[]).unwrap();
        assert_eq!(c.episodes_per_iteration(), 512);
        assert_eq!(c.steps_per_iteration(), 16);
        assert_eq!(
            c.credit,
            vine_rl::Credit::Vine(vine_rl::VineParams {
                mc_rollouts: 9,
                max_value_steps: None
            })
        );
        assert_eq!((c.ppo.clip, c.ppo.kl_coef, c.optim.lr), (0.2, 1e-4, 1e-6));
        assert_eq!(c.run_dir(), Path::new("runs/arith-vineppo-s2746318213"));
        // The resolved config round-trips through its own TOML.
        let text = to_toml(&c).unwrap();
        let again: TrainConfig = overrides::deserialize(text.parse().unwrap(), "x").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn sets_override_and_switch_credit_kind() {
        let c = load_str(MIN, &["credit.kind=grpo", "ppo.kl_coef=0.01"]).unwrap();
        assert_eq!(
            c.credit,
            vine_rl::Credit::Grpo(vine_rl::GrpoParams { eps: 1e-6 })
        );
        assert_eq!(c.ppo.kl_coef, 0.01);
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases: [(&str, &[&str], &str); 6] = [
            ("[model]\npath = \"m\"\nbogus = 1\n", &[], "bogus"),
            (MIN, &["ppo.clip=\"wide\""], "ppo.clip"),
            (
                MIN,
                &["credit.kind=grpo", "rollout.samples_per_prompt=1"],
                "needs at least 2",
            ),
            (
                MIN,
                &["ppo.minibatch_size=100"],
                "does not divide the 512 episodes",
            ),
            (MIN, &["credit.mc_rollouts=0"], "credit.mc_rollouts = 0"),
            (
                MIN,
                &["credit.kind=rloo", "credit.mc_rollouts=3"],
                "mc_rollouts",
            ),
        ];
        for (text, sets, needle) in cases {
            let e = format!("{:#}", load_str(text, sets).unwrap_err());
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
        }
    }
}
