//! The experiment file: which base config, which arms, which seeds, and the run config of every
//! (arm, seed).
//!
//! ```toml
//! [experiment]
//! base = "configs/arith/vineppo.toml"   # the training config every arm starts from
//! out_dir = "runs/arith-methods"        # runs go to <out_dir>/<arm>-s<seed>/
//! seeds = [1, 2, 3]
//! baseline = "ppo"                      # efficiency target (default: the first PPO arm)
//! band = "minmax"                       # or "std"
//!
//! # Any other section overrides the base config in every arm:
//! [run]
//! iterations = 100
//!
//! [[arm]]
//! name = "vineppo"                      # the base as it is
//!
//! [[arm]]
//! name = "ppo"
//! set = ['credit = { kind = "gae" }']   # `--set`-style overrides, applied in order
//!
//! [[arm]]
//! name = "vineppo-k{}"                  # expands to vineppo-k1, vineppo-k3, vineppo-k9
//! sweep = { key = "credit.mc_rollouts", values = [1, 3, 9] }
//! ```
//!
//! An arm's config is: its base file (the arm's own `base`, else the experiment's), then the
//! shared sections merged in (tables merge key by key), then the arm's `set` list, then
//! `run.seed` and `run.out_dir`. Overriding a whole table with an inline table
//! (`credit = { kind = "gae" }`) replaces it, which is how an arm switches the credit kind of a
//! base that sets keys the new kind does not have (`mc_rollouts`). Relative paths (`base`,
//! `out_dir`) are relative to the working directory, like every path in a training config.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use toml::{Table, Value};

use super::arm::{ArmCommand, PreparedRun};
use crate::config::overrides::{apply_sets, read_table};
use crate::report::aggregate::Band;

/// `[experiment]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Base config of arms without their own `base`.
    #[serde(default)]
    pub base: Option<PathBuf>,
    /// Experiment directory: runs, `report.md`, `summary.json`.
    pub out_dir: PathBuf,
    /// One run per arm and seed.
    pub seeds: Vec<u64>,
    /// Arm whose peak accuracy the efficiency table targets (default: the first arm that
    /// trains a critic, i.e. PPO).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Spread shaded around the mean curves.
    #[serde(default)]
    pub band: Band,
    /// Report title (default: the experiment file's name).
    #[serde(default)]
    pub title: Option<String>,
}

/// One `[[arm]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Name (directory prefix and legend label); with `sweep`, `{}` marks where the value goes.
    pub name: String,
    /// Which command produces the arm's runs.
    #[serde(default)]
    pub command: ArmCommand,
    /// Base config of this arm (default: the experiment's).
    #[serde(default)]
    pub base: Option<PathBuf>,
    /// `section.key=value` overrides, applied in order.
    #[serde(default)]
    pub set: Vec<String>,
    /// Expands the arm into one arm per value of one key.
    #[serde(default)]
    pub sweep: Option<Sweep>,
}

/// `sweep = { key = "credit.mc_rollouts", values = [1, 3, 9] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Dotted config key.
    pub key: String,
    /// One arm per value.
    pub values: Vec<Value>,
}

/// One arm after sweep expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// Name.
    pub name: String,
    /// Command.
    pub command: ArmCommand,
    /// Base config file.
    pub base: PathBuf,
    /// Overrides after the shared sections.
    pub sets: Vec<String>,
}

/// A loaded experiment file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `[experiment]`.
    pub experiment: ExperimentSection,
    /// Sections shared by every arm.
    pub shared: Table,
    /// Arms, sweeps expanded, in file order.
    pub arms: Vec<Arm>,
    /// The file as resolved (after `--set`), saved next to the runs.
    pub resolved: Table,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Expands a sweep into arms, or passes a plain arm through.
fn expand(spec: ArmSpec, default_base: Option<&Path>) -> Result<Vec<Arm>> {
    let base = match spec.base.as_deref().or(default_base) {
        Some(b) => b.to_path_buf(),
        None => bail!(
            "arm `{}` has no base config: set `experiment.base` or the arm's `base`",
            spec.name
        ),
    };
    let Some(sweep) = spec.sweep else {
        return Ok(vec![Arm {
            name: spec.name,
            command: spec.command,
            base,
            sets: spec.set,
        }]);
    };
    if sweep.values.is_empty() {
        bail!("arm `{}`: `sweep.values` is empty", spec.name);
    }
    Ok(sweep
        .values
        .iter()
        .map(|v| {
            let text = value_text(v);
            let name = if spec.name.contains("{}") {
                spec.name.replace("{}", &text)
            } else {
                format!("{}-{text}", spec.name)
            };
            let mut sets = spec.set.clone();
            sets.push(format!("{}={v}", sweep.key));
            Arm {
                name,
                command: spec.command,
                base: base.clone(),
                sets,
            }
        })
        .collect())
}

fn check_names(arms: &[Arm]) -> Result<()> {
    let mut seen = HashSet::new();
    for a in arms {
        let ok = !a.name.is_empty()
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.=+".contains(c));
        if !ok {
            bail!("arm name `{}`: use letters, digits and `-_.=+` only (it names the run directories `<arm>-s<seed>`)", a.name);
        }
        if !seen.insert(a.name.as_str()) {
            bail!("two arms are named `{}`; arm names must be unique", a.name);
        }
    }
    Ok(())
}

impl Plan {
    /// Reads `path`, applies `sets` to it (`experiment.seeds=[1, 2]`, or a training key such as
    /// `run.iterations=50` for every arm) and checks it.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self> {
        let mut table = read_table(path)?;
        apply_sets(&mut table, sets)?;
        Self::from_table(table).with_context(|| format!("experiment `{}`", path.display()))
    }

    /// Builds a plan from a parsed experiment file.
    pub fn from_table(table: Table) -> Result<Self> {
        let resolved = table.clone();
        let mut shared = table;
        if !shared.contains_key("experiment") {
            bail!("no `[experiment]` section (base, out_dir, seeds)");
        }
        let mut parts = Table::new();
        for key in ["experiment", "arm"] {
            if let Some(v) = shared.remove(key) {
                parts.insert(key.into(), v);
            }
        }
        let Parts {
            experiment,
            arm: specs,
        } = crate::config::overrides::deserialize(parts, "experiment file")?;
        if specs.is_empty() {
            bail!("no arms: add at least one `[[arm]]` with a `name`");
        }
        if experiment.seeds.is_empty() {
            bail!("`experiment.seeds` is empty: list at least one seed");
        }
        let mut seeds = HashSet::new();
        if let Some(s) = experiment.seeds.iter().find(|s| !seeds.insert(**s)) {
            bail!("seed {s} is listed twice in `experiment.seeds`");
        }
        let mut arms = Vec::new();
        for spec in specs {
            arms.extend(expand(spec, experiment.base.as_deref())?);
        }
        check_names(&arms)?;
        if let Some(b) = &experiment.baseline {
            if !arms.iter().any(|a| &a.name == b) {
                bail!(
                    "`experiment.baseline` = `{b}` is not an arm; arms: {}",
                    names(&arms)
                );
            }
        }
        Ok(Self {
            experiment,
            shared,
            arms,
            resolved,
        })
    }

    /// Directory of the run of `arm` with `seed`.
    pub fn run_dir(&self, arm: &Arm, seed: u64) -> PathBuf {
        self.experiment
            .out_dir
            .join(format!("{}-s{seed}", arm.name))
    }

    /// The full config of `arm`'s run with `seed`, validated.
    pub fn prepare(&self, arm: &Arm, seed: u64) -> Result<PreparedRun> {
        let mut table = read_table(&arm.base)?;
        merge(&mut table, &self.shared);
        apply_sets(&mut table, &arm.sets)?;
        let dir = self.run_dir(arm, seed);
        let run = table
            .entry("run")
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(run) = run else {
            bail!("`run` is a value, not a section");
        };
        run.insert("seed".into(), Value::Integer(seed as i64));
        run.insert(
            "out_dir".into(),
            Value::String(dir.to_string_lossy().into_owned()),
        );
        PreparedRun::resolve(arm.command, table, &format!("arm `{}`", arm.name)).with_context(
            || {
                format!(
                    "resolving arm `{}` (base `{}`, seed {seed}); to switch the credit kind of a \
                     base that sets other keys, replace the section: `credit = {{ kind = \"gae\" }}`",
                    arm.name,
                    arm.base.display()
                )
            },
        )
    }

    /// The arms named in `only` (all when empty); unknown names are an error.
    pub fn select(&self, only: &[String]) -> Result<Vec<&Arm>> {
        if let Some(bad) = only
            .iter()
            .find(|n| !self.arms.iter().any(|a| &a.name == *n))
        {
            bail!("no arm named `{bad}`; arms: {}", names(&self.arms));
        }
        Ok(self
            .arms
            .iter()
            .filter(|a| only.is_empty() || only.contains(&a.name))
            .collect())
    }
}

fn names(arms: &[Arm]) -> String {
    arms.iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sections of an experiment file that are not training config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parts {
    experiment: ExperimentSection,
    #[serde(default)]
    arm: Vec<ArmSpec>,
}

/// Merges `overlay` into `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut Table, overlay: &Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan> {
        Plan::from_table(text.parse().unwrap())
    }

    const FILE: &str = r#"
[experiment]
base = "base.toml"
out_dir = "exp"
seeds = [1, 2]
[run]
iterations = 3
[[arm]]
name = "vineppo"
[[arm]]
name = "ppo"
set = ['credit = { kind = "gae" }']
[[arm]]
name = "k{}"
sweep = { key = "credit.mc_rollouts", values = [1, 3] }
"#;

    #[test]
    fn sweeps_expand_and_shared_sections_are_kept() {
        let p = plan(FILE).unwrap();
        let names: Vec<&str> = p.arms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["vineppo", "ppo", "k1", "k3"]);
        assert_eq!(p.arms[3].sets, ["credit.mc_rollouts=3"]);
        assert_eq!(p.shared["run"]["iterations"].as_integer(), Some(3));
        assert!(!p.shared.contains_key("arm") && !p.shared.contains_key("experiment"));
        assert_eq!(p.run_dir(&p.arms[1], 2), Path::new("exp/ppo-s2"));
        assert_eq!(p.select(&["k3".into()]).unwrap().len(), 1);
        assert!(p.select(&["nope".into()]).is_err());
    }

    #[test]
    fn merge_is_deep_and_inline_tables_replace_through_sets() {
        let mut base: Table = "[credit]\nkind = \"vine\"\nmc_rollouts = 9\n[run]\nseed = 1\n"
            .parse()
            .unwrap();
        merge(&mut base, &"[run]\niterations = 4\n".parse().unwrap());
        assert_eq!(base["run"]["seed"].as_integer(), Some(1));
        assert_eq!(base["run"]["iterations"].as_integer(), Some(4));
        apply_sets(&mut base, &["credit = { kind = \"gae\" }".into()]).unwrap();
        assert_eq!(base["credit"].as_table().unwrap().len(), 1);
    }

    /// Every experiment in `configs/experiments/` parses and resolves for every arm and seed.
    /// The arith base config is the built-in default run; where this checkout lacks it, the
    /// GSM8K VinePPO config stands in (the arms only override `credit`, `run` and sweep keys,
    /// which every training config has).
    #[test]
    fn shipped_experiments_resolve() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = 0;
        for entry in std::fs::read_dir(repo.join("configs/experiments")).unwrap() {
            let path = entry.unwrap().path();
            let mut p = Plan::load(&path, &[]).unwrap_or_else(|e| panic!("{e:#}"));
            for arm in &mut p.arms {
                arm.base = match repo.join(&arm.base) {
                    b if b.exists() => b,
                    _ => repo.join("configs/gsm8k/vineppo.toml"),
                };
            }
            for arm in &p.arms {
                for &seed in &p.experiment.seeds {
                    p.prepare(arm, seed)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                }
            }
            checked += 1;
        }
        assert!(checked >= 2);
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            (
                FILE.replace("seeds = [1, 2]", "seeds = [1, 1]"),
                "listed twice",
            ),
            (FILE.replace("seeds = [1, 2]", "seeds = []"), "is empty"),
            (
                FILE.replace("name = \"ppo\"", "name = \"vineppo\""),
                "unique",
            ),
            (
                FILE.replace("name = \"ppo\"", "name = \"p p\""),
                "letters, digits",
            ),
            (FILE.replace("out_dir", "outdir"), "outdir"),
            (FILE.replace("base = \"base.toml\"\n", ""), "no base config"),
            (
                FILE.replace("seeds = [1, 2]", "seeds = [1]\nbaseline = \"x\""),
                "`x` is not an arm",
            ),
            (FILE.replace("sweep = {", "sweeep = {"), "sweeep"),
        ];
        for (text, needle) in cases {
            let e = format!("{:#}", plan(&text).unwrap_err());
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
        }
    }
}
