//! The model configuration, read from and written to Hugging Face `config.json`.
//!
//! Supported architectures: `LlamaForCausalLM` (Llama 2/3/3.x, TinyLlama, SmolLM, …) and
//! `Qwen2ForCausalLM` (Qwen2, Qwen2.5). Missing fields take the defaults of the transformers
//! config classes, so a config that transformers loads means the same model here. Fields that
//! would change the computation in a way we do not implement (a non-SiLU activation, Qwen2's
//! sliding window, RoPE types other than `default`/`linear`/`llama3`, partial rotary factors)
//! are errors that name the field, never silently ignored.
//!
//! [`ModelConfig::to_hf_json`] writes RoPE in the legacy top-level layout (`rope_theta`,
//! `rope_scaling`), which transformers 4.x and 5.x and vLLM all read; unknown fields of the
//! source config are carried through unchanged.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{read_json, ModelError, ModelResult};
use crate::rope::RopeConfig;

/// Architecture names accepted in `config.json`'s `architectures`.
pub const SUPPORTED_ARCHITECTURES: [&str; 2] = ["LlamaForCausalLM", "Qwen2ForCausalLM"];

/// Which decoder family a config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `LlamaForCausalLM`: optional biases on all attention projections (`attention_bias`) and
    /// on the MLP (`mlp_bias`).
    Llama,
    /// `Qwen2ForCausalLM`: biases on q/k/v only.
    Qwen2,
}

impl Architecture {
    /// The `architectures` entry transformers writes.
    pub fn hf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// The `model_type` transformers writes.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }
}

/// Everything needed to build a decoder and write its `config.json` back.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Decoder family.
    pub architecture: Architecture,
    /// Rows of the embedding and LM head (may exceed the tokenizer's vocabulary).
    pub vocab_size: usize,
    /// Residual stream width `H`.
    pub hidden_size: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Per-head width (`head_dim` override or `hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding parameters.
    pub rope: RopeConfig,
    /// Longest sequence the model was trained for.
    pub max_position_embeddings: usize,
    /// LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v projections.
    pub qkv_bias: bool,
    /// Bias on the attention output projection.
    pub o_bias: bool,
    /// Biases on gate/up/down projections.
    pub mlp_bias: bool,
    /// Std of the normal init of fresh weights.
    pub initializer_range: f64,
    /// `bos_token_id` of the config.
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` of the config (an int or a list in the JSON).
    pub eos_token_ids: Vec<u32>,
    /// `pad_token_id` of the config.
    pub pad_token_id: Option<u32>,
    /// Fields we do not interpret, written back unchanged.
    pub extra: Map<String, Value>,
}

/// Keys this module reads or rewrites; everything else goes to `extra`.
const KNOWN_KEYS: &[&str] = &[
    "architectures",
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "partial_rotary_factor",
    "max_position_embeddings",
    "tie_word_embeddings",
    "attention_bias",
    "mlp_bias",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "use_sliding_window",
    "torch_dtype",
    "dtype",
];

/// Typed access to a config object with errors that name the file and field.
pub(crate) struct Fields<'a> {
    pub(crate) obj: &'a Map<String, Value>,
    pub(crate) path: &'a Path,
}

impl Fields<'_> {
    /// The value of `key`, treating JSON `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn err(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::config(self.path, key, message)
    }

    pub(crate) fn usize_or(&self, key: &str, default: usize) -> ModelResult<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|x| x as usize).ok_or_else(|| {
                self.err(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    pub(crate) fn opt_usize(&self, key: &str) -> ModelResult<Option<usize>> {
        self.get(key).map(|_| self.usize_or(key, 0)).transpose()
    }

    pub(crate) fn f64_or(&self, key: &str, default: f64) -> ModelResult<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(key, format!("expected a number, found {v}"))),
        }
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> ModelResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    pub(crate) fn str_or<'s>(&'s self, key: &str, default: &'s str) -> ModelResult<&'s str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.err(key, format!("expected a string, found {v}"))),
        }
    }

    /// A token id field holding an int, a list of ints, or nothing.
    pub(crate) fn token_ids(&self, key: &str) -> ModelResult<Vec<u32>> {
        let bad = || self.err(key, "expected a token id or a list of token ids");
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|x| u32::try_from(x).ok())
                        .ok_or_else(bad)
                })
                .collect(),
            Some(v) => Ok(vec![v
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(bad)?]),
        }
    }
}

impl ModelConfig {
    /// Reads `dir/config.json`.
    pub fn from_dir(dir: impl AsRef<Path>) -> ModelResult<Self> {
        Self::from_file(dir.as_ref().join("config.json"))
    }

    /// Reads a `config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> ModelResult<Self> {
        let path = path.as_ref();
        Self::from_hf_json(&read_json(path)?, path)
    }

    /// Parses a `config.json` value; `path` names the source in errors.
    pub fn from_hf_json(value: &Value, path: &Path) -> ModelResult<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| ModelError::config(path, "<root>", "expected a JSON object"))?;
        let f = Fields { obj, path };
        let architecture = parse_architecture(&f)?;
        let llama = architecture == Architecture::Llama;
        let hidden_size = f.usize_or("hidden_size", 4096)?;
        let (num_attention_heads, num_key_value_heads, head_dim) =
            parse_heads(&f, llama, hidden_size)?;
        let max_position_embeddings =
            f.usize_or("max_position_embeddings", if llama { 2048 } else { 32768 })?;
        reject_unsupported(&f, llama)?;
        let attention_bias = f.bool_or("attention_bias", false)?;
        let (bos_token_id, eos_token_ids, pad_token_id) = parse_special_ids(&f, llama)?;
        let cfg = ModelConfig {
            architecture,
            vocab_size: f.usize_or("vocab_size", if llama { 32000 } else { 151936 })?,
            hidden_size,
            intermediate_size: f
                .usize_or("intermediate_size", if llama { 11008 } else { 22016 })?,
            num_hidden_layers: f.usize_or("num_hidden_layers", 32)?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: f.f64_or("rms_norm_eps", 1e-6)?,
            rope: RopeConfig::from_hf(&f, max_position_embeddings)?,
            max_position_embeddings,
            tie_word_embeddings: f.bool_or("tie_word_embeddings", false)?,
            qkv_bias: if llama { attention_bias } else { true },
            o_bias: llama && attention_bias,
            mlp_bias: llama && f.bool_or("mlp_bias", false)?,
            initializer_range: f.f64_or("initializer_range", 0.02)?,
            bos_token_id,
            eos_token_ids,
            pad_token_id,
            extra: obj
                .iter()
                .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self, path: &Path) -> ModelResult<()> {
        let err = |field: &str, msg: String| Err(ModelError::config(path, field, msg));
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 {
                return err(field, "must be positive".into());
            }
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return err(
                "num_key_value_heads",
                format!(
                    "{} query heads are not a multiple of {} key/value heads",
                    self.num_attention_heads, self.num_key_value_heads
                ),
            );
        }
        if self.head_dim % 2 != 0 {
            return err(
                "head_dim",
                format!("{} is odd; RoPE needs pairs", self.head_dim),
            );
        }
        if self.rms_norm_eps <= 0.0 {
            return err("rms_norm_eps", "must be positive".into());
        }
        Ok(())
    }

    /// Query heads per key/value head.
    pub fn gqa_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Every parameter tensor with its Hugging Face name and shape, in checkpoint order. The
    /// tied LM head is not listed (it is `model.embed_tokens.weight`).
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (h, hd, i) = (self.hidden_size, self.head_dim, self.intermediate_size);
        let (q, kv) = (self.num_attention_heads * hd, self.num_key_value_heads * hd);
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            vec![self.vocab_size, h],
        )];
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut push = |name: &str, shape: Vec<usize>| out.push((format!("{p}.{name}"), shape));
            push("input_layernorm.weight", vec![h]);
            for (proj, rows) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
                push(&format!("self_attn.{proj}.weight"), vec![rows, h]);
                if self.qkv_bias {
                    push(&format!("self_attn.{proj}.bias"), vec![rows]);
                }
            }
            push("self_attn.o_proj.weight", vec![h, q]);
            if self.o_bias {
                push("self_attn.o_proj.bias", vec![h]);
            }
            push("post_attention_layernorm.weight", vec![h]);
            for (proj, shape) in [
                ("gate_proj", vec![i, h]),
                ("up_proj", vec![i, h]),
                ("down_proj", vec![h, i]),
            ] {
                let rows = shape[0];
                push(&format!("mlp.{proj}.weight"), shape);
                if self.mlp_bias {
                    push(&format!("mlp.{proj}.bias"), vec![rows]);
                }
            }
        }
        out.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), vec![self.vocab_size, h]));
        }
        out
    }

    /// Number of parameters (tied weights counted once).
    pub fn num_parameters(&self) -> usize {
        self.parameter_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// The config as `config.json` (legacy RoPE layout, see the module docs); `torch_dtype` is
    /// the dtype the weights are saved in (`"float32"`, `"bfloat16"`, …).
    pub fn to_hf_json(&self, torch_dtype: &str) -> Value {
        let mut o = self.extra.clone();
        let arch = self.architecture;
        let mut set = |k: &str, v: Value| {
            o.insert(k.to_string(), v);
        };
        set("architectures", Value::from(vec![arch.hf_name()]));
        set("model_type", arch.model_type().into());
        set("vocab_size", self.vocab_size.into());
        set("hidden_size", self.hidden_size.into());
        set("intermediate_size", self.intermediate_size.into());
        set("num_hidden_layers", self.num_hidden_layers.into());
        set("num_attention_heads", self.num_attention_heads.into());
        set("num_key_value_heads", self.num_key_value_heads.into());
        set("head_dim", self.head_dim.into());
        set("hidden_act", "silu".into());
        set("rms_norm_eps", self.rms_norm_eps.into());
        set(
            "max_position_embeddings",
            self.max_position_embeddings.into(),
        );
        set("tie_word_embeddings", self.tie_word_embeddings.into());
        set("initializer_range", self.initializer_range.into());
        set("torch_dtype", torch_dtype.into());
        if arch == Architecture::Llama {
            set("attention_bias", self.qkv_bias.into());
            set("mlp_bias", self.mlp_bias.into());
        } else {
            set("use_sliding_window", false.into());
        }
        set(
            "bos_token_id",
            self.bos_token_id.map_or(Value::Null, Value::from),
        );
        set("eos_token_id", token_ids_json(&self.eos_token_ids));
        if let Some(pad) = self.pad_token_id {
            set("pad_token_id", pad.into());
        }
        self.rope.to_hf(&mut o);
        Value::Object(o)
    }

    /// A small Llama config for tests and benchmarks: `layers` layers of width `hidden`,
    /// `heads` query heads over `kv_heads` key/value heads, SwiGLU width `intermediate`.
    pub fn tiny_llama(
        vocab_size: usize,
        hidden: usize,
        layers: usize,
        heads: usize,
        kv_heads: usize,
        intermediate: usize,
    ) -> Self {
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size,
            hidden_size: hidden,
            intermediate_size: intermediate,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim: hidden / heads,
            rms_norm_eps: 1e-5,
            rope: RopeConfig::default(),
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            initializer_range: 0.02,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
            pad_token_id: None,
            extra: Map::new(),
        }
    }
}

/// `eos_token_id` as transformers writes it: an int for one id, a list for several.
fn token_ids_json(ids: &[u32]) -> Value {
    match ids {
        [] => Value::Null,
        [one] => Value::from(*one),
        many => Value::from(many.to_vec()),
    }
}

/// `(num_attention_heads, num_key_value_heads, head_dim)` with transformers' defaults.
fn parse_heads(
    f: &Fields<'_>,
    llama: bool,
    hidden_size: usize,
) -> ModelResult<(usize, usize, usize)> {
    let heads = f.usize_or("num_attention_heads", 32)?;
    if heads == 0 {
        return Err(f.err("num_attention_heads", "must be positive"));
    }
    // transformers: Llama's None means "as many as query heads"; Qwen2's default is 32 but an
    // explicit null also means "as many as query heads".
    let kv = match f.obj.get("num_key_value_heads") {
        Some(Value::Null) => heads,
        _ => f.usize_or("num_key_value_heads", if llama { heads } else { 32 })?,
    };
    Ok((heads, kv, f.usize_or("head_dim", hidden_size / heads)?))
}

/// Errors for settings that change the computation in ways we do not implement.
fn reject_unsupported(f: &Fields<'_>, llama: bool) -> ModelResult<()> {
    let hidden_act = f.str_or("hidden_act", "silu")?;
    if hidden_act != "silu" {
        return Err(f.err(
            "hidden_act",
            format!("`{hidden_act}` is not supported; only `silu` (SwiGLU) is"),
        ));
    }
    if !llama && f.bool_or("use_sliding_window", false)? {
        return Err(f.err(
            "use_sliding_window",
            "sliding-window attention is not supported; set it to false",
        ));
    }
    Ok(())
}

/// `(bos_token_id, eos_token_id list, pad_token_id)`; Llama defaults to BOS 1 and EOS 2.
fn parse_special_ids(
    f: &Fields<'_>,
    llama: bool,
) -> ModelResult<(Option<u32>, Vec<u32>, Option<u32>)> {
    let bos = match f.obj.get("bos_token_id") {
        None if llama => Some(1),
        _ => f.token_ids("bos_token_id")?.first().copied(),
    };
    let eos = match f.obj.get("eos_token_id") {
        None if llama => vec![2],
        _ => f.token_ids("eos_token_id")?,
    };
    Ok((bos, eos, f.token_ids("pad_token_id")?.first().copied()))
}

fn parse_architecture(f: &Fields<'_>) -> ModelResult<Architecture> {
    let unsupported = |found: String| ModelError::UnsupportedArchitecture {
        path: PathBuf::from(f.path),
        found,
        supported: SUPPORTED_ARCHITECTURES.to_vec(),
    };
    if let Some(list) = f.get("architectures") {
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return match names.first().copied() {
            Some("LlamaForCausalLM") => Ok(Architecture::Llama),
            Some("Qwen2ForCausalLM") => Ok(Architecture::Qwen2),
            _ => Err(unsupported(list.to_string())),
        };
    }
    match f.str_or("model_type", "")? {
        "llama" => Ok(Architecture::Llama),
        "qwen2" => Ok(Architecture::Qwen2),
        "" => Err(f.err(
            "architectures",
            format!(
                "missing (and no `model_type`); supported: {}",
                SUPPORTED_ARCHITECTURES.join(", ")
            ),
        )),
        other => Err(unsupported(format!("model_type {other}"))),
    }
}
