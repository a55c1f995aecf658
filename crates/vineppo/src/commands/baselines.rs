//! `vineppo restem` and `vineppo dpo`: resolve the config (or the run to resume) and run the
//! baseline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::train::{apply_resume_overrides, print_summary};
use crate::cli::ConfigArgs;
use crate::config::dpo::DpoConfig;
use crate::config::restem::RestemConfig;
use crate::config::{self, ConfigFile};

/// Runs `vineppo restem`.
pub fn restem(args: ConfigArgs, resume: Option<PathBuf>) -> Result<()> {
    let cfg: RestemConfig = resolve(&args, resume.as_deref(), "restem")?;
    let summary = crate::restem::run(cfg, resume.as_deref())?;
    print_summary(&summary, "iterations");
    Ok(())
}

/// Runs `vineppo dpo`.
pub fn dpo(args: ConfigArgs, resume: Option<PathBuf>) -> Result<()> {
    let cfg: DpoConfig = resolve(&args, resume.as_deref(), "dpo")?;
    let summary = crate::dpo::run(cfg, resume.as_deref())?;
    print_summary(&summary, "optimizer steps");
    Ok(())
}

/// The config of a fresh run (`--config`, or `configs/arith/<command>.toml` from the repository
/// root), or the saved config of the run in `resume` with `--set` overrides written back.
fn resolve<T>(args: &ConfigArgs, resume: Option<&Path>, command: &str) -> Result<T>
where
    T: DeserializeOwned + Serialize + ConfigFile,
{
    if let Some(dir) = resume {
        if !args.sets.is_empty() {
            apply_resume_overrides::<T>(dir, &args.sets)?;
        }
        return config::load(Some(&dir.join("config.toml")), &[]);
    }
    let default = PathBuf::from(format!("configs/arith/{command}.toml"));
    let path = match &args.config {
        Some(p) => p.clone(),
        None if default.exists() => default,
        None => bail!(
            "no --config given and `{}` is not here; run from the repository root or pass --config FILE",
            default.display()
        ),
    };
    config::load(Some(&path), &args.sets)
}
