//! `vineppo train`: resolve the config (or the run to resume) and run the trainer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::ConfigArgs;
use crate::config::{self, TrainConfig};

/// The built-in default run.
pub const DEFAULT_CONFIG: &str = "configs/arith/vineppo.toml";

/// Runs `vineppo train`.
pub fn run(args: ConfigArgs, resume: Option<PathBuf>) -> Result<()> {
    let summary = match resume {
        Some(dir) => {
            if !args.sets.is_empty() {
                apply_resume_overrides::<TrainConfig>(&dir, &args.sets)?;
            }
            let placeholder: TrainConfig = config::load(Some(&dir.join("config.toml")), &[])?;
            crate::train::run(placeholder, Some(dir))?
        }
        None => {
            let path = match &args.config {
                Some(p) => p.clone(),
                None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
                None => bail!("no --config given and `{DEFAULT_CONFIG}` is not here; run from the repository root or pass --config FILE"),
            };
            let cfg: TrainConfig = config::load(Some(&path), &args.sets)?;
            crate::train::run(cfg, None)?
        }
    };
    print_summary(&summary, "iterations");
    Ok(())
}

/// Prints the one-line summary of a finished run; `unit` names what `summary.iterations` counts.
pub(crate) fn print_summary(summary: &crate::train::Summary, unit: &str) {
    let pct = |v: Option<f64>| {
        v.map(|x| format!("{:.1}%", x * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    println!(
        "done: {} {unit} in {:.1} min; held-out pass@1 {} → {}; run directory `{}` (report.md, final/)",
        summary.iterations,
        summary.elapsed_s / 60.0,
        pct(summary.initial_pass1),
        pct(summary.final_pass1),
        summary.run_dir.display()
    );
}

/// `--resume DIR --set k=v`: rewrite the run's saved config with the overrides (validated).
pub(crate) fn apply_resume_overrides<T>(dir: &Path, sets: &[String]) -> Result<()>
where
    T: serde::de::DeserializeOwned + serde::Serialize + config::ConfigFile,
{
    let path = dir.join("config.toml");
    let cfg: T = config::load(Some(&path), sets)?;
    crate::atomic::write_file(&path, config::to_toml(&cfg)?.as_bytes())
}
