//! Loading a model from, and saving it as, a Hugging Face model directory.
//!
//! A saved directory holds `config.json` (legacy RoPE layout), `model.safetensors` (a tied LM
//! head is not duplicated), `generation_config.json` and the tokenizer files of the source
//! directory, so transformers and vLLM load it directly. The directory is written atomically:
//! everything goes to a temporary sibling, which then replaces the target in one step
//! (`renameat2(RENAME_EXCHANGE)` on Linux), so a crash leaves either the old directory or the
//! new one, never a half-written one.

use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde_json::{json, Value};

use crate::config::ModelConfig;
use crate::error::{ModelError, ModelResult};
use crate::init::init_tensors;
use crate::transformer::Transformer;
use crate::weights::{load_tensors, torch_dtype_name, write_safetensors, WEIGHTS_FILE};

/// Tokenizer and generation files copied from the source directory on save.
pub const COPIED_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
];

/// How to load a checkpoint.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Run dtype; weights are converted on load (f32 on CPU, bf16/f16 possible on GPU).
    pub dtype: DType,
    /// Device to load onto.
    pub device: Device,
    /// Load weights as trainable variables.
    pub trainable: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
            trainable: false,
        }
    }
}

/// How to save a model.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// dtype of the written weights (default: the model's).
    pub dtype: Option<DType>,
    /// Directory whose tokenizer files and `generation_config.json` are copied.
    pub source_dir: Option<PathBuf>,
}

impl Transformer {
    /// Loads a Hugging Face model directory (`config.json` + safetensors weights).
    pub fn load(dir: impl AsRef<Path>, opts: &LoadOptions) -> ModelResult<Self> {
        let dir = dir.as_ref();
        let config = ModelConfig::from_dir(dir)?;
        let tensors = load_tensors(dir, &config, opts.dtype, &opts.device)?;
        Self::from_tensors(config, tensors, opts.trainable)
    }

    /// A freshly initialised model (Hugging Face init, see [`crate::init`]) seeded by `seed`.
    pub fn new_random(
        config: ModelConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
        trainable: bool,
    ) -> ModelResult<Self> {
        let tensors = init_tensors(&config, seed, dtype, device)?;
        Self::from_tensors(config, tensors, trainable)
    }

    /// Writes the model as a Hugging Face directory at `dir`, atomically (see the module docs).
    pub fn save_pretrained(&self, dir: impl AsRef<Path>, opts: &SaveOptions) -> ModelResult<()> {
        write_dir_atomically(dir.as_ref(), |tmp| self.write_hf_files(tmp, opts))
    }

    /// Writes the files of a Hugging Face directory into the existing directory `dir`.
    pub fn write_hf_files(&self, dir: &Path, opts: &SaveOptions) -> ModelResult<()> {
        let dtype = opts.dtype.unwrap_or(self.dtype());
        let config = self.config().to_hf_json(torch_dtype_name(dtype));
        write_json(&dir.join("config.json"), &config)?;
        write_safetensors(&dir.join(WEIGHTS_FILE), self.named_tensors(), dtype)?;
        if let Some(src) = &opts.source_dir {
            for name in COPIED_FILES {
                let from = src.join(name);
                if from.is_file() {
                    fs::copy(&from, dir.join(name))
                        .map_err(|e| ModelError::io("copying", &from, e))?;
                }
            }
        }
        let generation = dir.join("generation_config.json");
        if !generation.is_file() {
            write_json(&generation, &generation_config(self.config()))?;
        }
        Ok(())
    }
}

/// A minimal `generation_config.json` derived from the model config.
fn generation_config(cfg: &ModelConfig) -> Value {
    let mut g = json!({ "_from_model_config": true });
    if let Some(bos) = cfg.bos_token_id {
        g["bos_token_id"] = bos.into();
    }
    match cfg.eos_token_ids.as_slice() {
        [] => {}
        [one] => g["eos_token_id"] = (*one).into(),
        many => g["eos_token_id"] = many.to_vec().into(),
    }
    if let Some(pad) = cfg.pad_token_id {
        g["pad_token_id"] = pad.into();
    }
    g
}

fn write_json(path: &Path, value: &Value) -> ModelResult<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    fs::write(path, text).map_err(|e| ModelError::io("writing", path, e))
}

/// Fills a fresh temporary sibling of `dir` with `fill`, syncs it, and swaps it into place.
pub fn write_dir_atomically(
    dir: &Path,
    fill: impl FnOnce(&Path) -> ModelResult<()>,
) -> ModelResult<()> {
    let name = dir
        .file_name()
        .ok_or_else(|| ModelError::NotFound {
            path: dir.to_path_buf(),
            hint: "the output directory needs a name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| ModelError::io("creating", &parent, e))?;
    if dir.exists() && !dir.is_dir() {
        return Err(ModelError::io(
            "replacing",
            dir,
            std::io::Error::other("exists and is not a directory"),
        ));
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!(".{name}.tmp-{}-{nonce}", std::process::id()));
    fs::create_dir(&tmp).map_err(|e| ModelError::io("creating", &tmp, e))?;
    let filled = fill(&tmp).and_then(|()| sync_dir_tree(&tmp));
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        swap_dirs(&tmp, dir)?;
        // `tmp` now holds the previous contents.
        fs::remove_dir_all(&tmp).map_err(|e| ModelError::io("removing", &tmp, e))?;
    } else {
        fs::rename(&tmp, dir).map_err(|e| ModelError::io("renaming into", dir, e))?;
    }
    sync_path(&parent)
}

/// fsyncs every file of `dir` and `dir` itself.
fn sync_dir_tree(dir: &Path) -> ModelResult<()> {
    let entries = fs::read_dir(dir).map_err(|e| ModelError::io("listing", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| ModelError::io("listing", dir, e))?.path();
        if path.is_file() {
            sync_path(&path)?;
        }
    }
    sync_path(dir)
}

fn sync_path(path: &Path) -> ModelResult<()> {
    let f = fs::File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
    f.sync_all().map_err(|e| ModelError::io("syncing", path, e))
}

/// Atomically exchanges two directories where the OS can, else two renames.
fn swap_dirs(new: &Path, target: &Path) -> ModelResult<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let a = CString::new(new.as_os_str().as_bytes());
        let b = CString::new(target.as_os_str().as_bytes());
        if let (Ok(a), Ok(b)) = (a, b) {
            // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if rc == 0 {
                return Ok(());
            }
        }
    }
    // Fallback: the target is briefly absent, but its old contents survive under `old`.
    let old = new.with_extension("old");
    fs::rename(target, &old).map_err(|e| ModelError::io("renaming", target, e))?;
    fs::rename(new, target).map_err(|e| ModelError::io("renaming into", target, e))?;
    fs::rename(&old, new).map_err(|e| ModelError::io("renaming", &old, e))
}
