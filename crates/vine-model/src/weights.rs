//! Reading and writing safetensors weights in the Hugging Face layout.
//!
//! A model directory holds either one `model.safetensors` or shards listed in
//! `model.safetensors.index.json` (`{"weight_map": {tensor name: file}}`). Every tensor the
//! config implies must be present with the implied shape; extra tensors (`rotary_emb.inv_freq`,
//! a duplicated tied `lm_head.weight`, …) are ignored. Float checkpoints of any width (f32,
//! f16, bf16, f64) are converted to the run dtype on load. Files are parsed with the
//! `safetensors` crate, which validates the header, offsets and length, so a truncated or
//! corrupt file is an error naming the file, never a panic.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use safetensors::SafeTensors;

use crate::config::ModelConfig;
use crate::error::{read_json, ModelError, ModelResult};

/// Single-file weights name.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Sharded weights index name.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Where a directory's weights live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightFiles {
    /// The file that lists the tensors (`model.safetensors` or the index), named in errors.
    pub manifest: PathBuf,
    /// The safetensors files to read, in order.
    pub files: Vec<PathBuf>,
}

/// Finds `model.safetensors` or the shards of `model.safetensors.index.json` in `dir`.
pub fn weight_files(dir: &Path) -> ModelResult<WeightFiles> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(WeightFiles {
            manifest: single.clone(),
            files: vec![single],
        });
    }
    let index = dir.join(INDEX_FILE);
    if !index.is_file() {
        return Err(ModelError::NotFound {
            path: single,
            hint: format!(
                "`{}` has neither `{WEIGHTS_FILE}` nor `{INDEX_FILE}`",
                dir.display()
            ),
        });
    }
    let json = read_json(&index)?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::config(&index, "weight_map", "missing or not an object"))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| ModelError::config(&index, name, "expected a file name"))?;
        let path = dir.join(file);
        if Path::new(file).components().count() != 1 {
            return Err(ModelError::config(
                &index,
                name,
                format!("`{file}` is not a plain file name"),
            ));
        }
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    for f in &files {
        if !f.is_file() {
            return Err(ModelError::NotFound {
                path: f.clone(),
                hint: format!("listed in `{}`", index.display()),
            });
        }
    }
    Ok(WeightFiles {
        manifest: index,
        files,
    })
}

/// Loads the tensors `cfg` needs from `dir`, converted to `dtype` on `device`.
pub fn load_tensors(
    dir: &Path,
    cfg: &ModelConfig,
    dtype: DType,
    device: &Device,
) -> ModelResult<HashMap<String, Tensor>> {
    let files = weight_files(dir)?;
    let expected: HashMap<String, Vec<usize>> = cfg.parameter_shapes().into_iter().collect();
    let mut out = HashMap::with_capacity(expected.len());
    for file in &files.files {
        read_file_into(file, &expected, dtype, device, &mut out)?;
    }
    let mut missing: Vec<(&String, &Vec<usize>)> = expected
        .iter()
        .filter(|(n, _)| !out.contains_key(*n))
        .collect();
    missing.sort();
    if let Some((name, shape)) = missing.first() {
        return Err(ModelError::MissingTensor {
            path: files.manifest.clone(),
            name: (*name).clone(),
            expected: (*shape).clone(),
        });
    }
    Ok(out)
}

/// Reads the expected tensors of one safetensors file into `out`.
fn read_file_into(
    file: &Path,
    expected: &HashMap<String, Vec<usize>>,
    dtype: DType,
    device: &Device,
    out: &mut HashMap<String, Tensor>,
) -> ModelResult<()> {
    let bytes = std::fs::read(file).map_err(|e| ModelError::io("reading", file, e))?;
    let corrupt = |message: String| ModelError::Safetensors {
        path: file.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    for (name, view) in st.iter() {
        let Some(shape) = expected.get(name) else {
            continue; // not a parameter of this config
        };
        if out.contains_key(name) {
            continue;
        }
        if view.shape() != shape.as_slice() {
            return Err(ModelError::ShapeMismatch {
                path: file.to_path_buf(),
                name: name.to_string(),
                expected: shape.clone(),
                found: view.shape().to_vec(),
            });
        }
        use safetensors::Dtype as S;
        if !matches!(view.dtype(), S::F32 | S::F16 | S::BF16 | S::F64) {
            return Err(corrupt(format!(
                "tensor `{name}` has dtype {:?}; only float checkpoints (f32, f16, bf16, f64) \
                 are supported",
                view.dtype()
            )));
        }
        let t = view
            .load(&Device::Cpu)
            .map_err(|e| corrupt(format!("tensor `{name}`: {e}")))?
            .to_dtype(dtype)?
            .to_device(device)?;
        out.insert(name.to_string(), t);
    }
    Ok(())
}

/// Writes `tensors` to one safetensors file in `dtype`, with the `{"format": "pt"}` metadata
/// transformers expects.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    dtype: DType,
) -> ModelResult<()> {
    let mut host: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in tensors {
        let t = t
            .detach()
            .to_dtype(dtype)?
            .to_device(&Device::Cpu)?
            .contiguous()?;
        host.insert(name.clone(), t);
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(host.iter(), Some(metadata), path).map_err(|e| {
        ModelError::Safetensors {
            path: path.to_path_buf(),
            message: format!("writing failed: {e}"),
        }
    })
}

/// The `torch_dtype` string transformers uses for `dtype`.
pub fn torch_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float32",
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}
