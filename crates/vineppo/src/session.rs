//! Loading what every command needs: the device, a model directory (weights + tokenizer) and
//! the task.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use vine_data::{Task, TaskConfig, TaskKind};
use vine_model::{LoadOptions, Tokenizer, Transformer};

use crate::config::Dtype;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn device(spec: &str) -> Result<Device> {
    match spec.trim() {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .with_context(|| format!("device `{s}`: expected `cuda:N` with a number N"))?,
                None => 0,
            };
            if !cfg!(feature = "cuda") {
                bail!("device `{s}` needs a vineppo built with `--features cuda` (scripts/build-cuda.sh, docs/gpu.md); this build is CPU-only");
            }
            Device::new_cuda(ordinal).with_context(|| format!("opening CUDA device {ordinal}"))
        }
        other => bail!("unknown device `{other}`: use `cpu`, `cuda` or `cuda:N`"),
    }
}

/// Where a command runs its model: `--device` and `--dtype`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weight dtype: `f32`, or `bf16`/`f16` (meant for GPUs; slow on CPU).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
}

impl Default for DeviceArgs {
    fn default() -> Self {
        Self {
            device: "cpu".into(),
            dtype: Dtype::F32,
        }
    }
}

impl DeviceArgs {
    /// The parsed device and candle dtype.
    pub fn resolve(&self) -> Result<(Device, DType)> {
        Ok((device(&self.device)?, dtype(self.dtype)))
    }
}

/// The candle dtype of a config dtype.
pub fn dtype(d: Dtype) -> DType {
    match d {
        Dtype::F32 => DType::F32,
        Dtype::Bf16 => DType::BF16,
        Dtype::F16 => DType::F16,
    }
}

/// A loaded Hugging Face model directory.
pub struct LoadedModel {
    /// The transformer.
    pub model: Transformer,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Where it came from.
    pub dir: PathBuf,
}

/// Loads a model directory, trainable or frozen.
pub fn load_model(
    dir: &Path,
    device: &Device,
    dtype: DType,
    trainable: bool,
) -> Result<LoadedModel> {
    let opts = LoadOptions {
        dtype,
        device: device.clone(),
        trainable,
    };
    let model = Transformer::load(dir, &opts)
        .with_context(|| format!("loading model `{}`", dir.display()))?;
    let tokenizer = Tokenizer::from_dir(dir)
        .with_context(|| format!("loading the tokenizer of `{}`", dir.display()))?;
    if tokenizer.vocab_size() > model.config().vocab_size {
        bail!(
            "`{}`: the tokenizer has {} tokens but config.json's vocab_size is {}; the checkpoint and tokenizer do not belong together",
            dir.display(),
            tokenizer.vocab_size(),
            model.config().vocab_size
        );
    }
    Ok(LoadedModel {
        model,
        tokenizer,
        dir: dir.to_path_buf(),
    })
}

/// The data directory when a config names none: `$VINEPPO_DATA_DIR`, else `../shared/data`
/// (the layout of a checkout with the datasets beside it).
pub fn resolve_task_config(cfg: &TaskConfig) -> TaskConfig {
    let mut cfg = cfg.clone();
    let needs_files = cfg.kind != TaskKind::Arith && cfg.train_file.is_none();
    if needs_files
        && cfg.data_dir.is_none()
        && std::env::var_os(vine_data::task::DATA_DIR_ENV).is_none()
    {
        cfg.data_dir = Some(PathBuf::from("../shared/data"));
    }
    cfg
}

/// Loads (or generates) the task.
pub fn load_task(cfg: &TaskConfig) -> Result<Task> {
    let cfg = resolve_task_config(cfg);
    Task::load(&cfg).with_context(|| format!("loading task `{}`", cfg.kind.name()))
}
