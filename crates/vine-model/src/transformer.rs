//! The decoder-only transformer (Llama / Qwen2) and its [`CausalLm`] implementation.
//!
//! Pre-norm blocks: `h = x + attn(norm₁(x))`, `x' = h + mlp(norm₂(h))`, then a final RMSNorm
//! and the LM head (tied to the embedding when `tie_word_embeddings`). Weights carry their
//! Hugging Face names. A model is either *trainable* (every weight a [`Var`] in a [`VarMap`]
//! under its HF name) or *frozen* (plain tensors; no graph is ever recorded).
//!
//! Rows may be left-padded: `left_pad[b]` leading ids of row `b` are padding, masked out of
//! attention, and RoPE positions start at 0 on each row's first real token. Right padding
//! needs nothing, since causal attention never looks ahead.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::attention::{Attention, StepInputs};
use crate::cache::{self, KvCache};
use crate::config::ModelConfig;
use crate::error::{ModelError, ModelResult};
use crate::fused::Kernels;
use crate::layers::{Linear, Mlp, Mode, RmsNorm};
use crate::lm::CausalLm;
use crate::logprobs::target_logprobs;
use crate::rope::Rope;

mod decode;
mod decode_ops;

/// One pre-norm decoder block.
#[derive(Debug, Clone)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// A Llama/Qwen2 decoder. See the module docs.
#[derive(Clone)]
pub struct Transformer {
    config: ModelConfig,
    /// (V, H)
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// (V, H); `None` when tied to `embed_tokens`.
    lm_head: Option<Tensor>,
    rope: Rope,
    /// Every parameter under its HF name, in checkpoint order (tied head omitted).
    params: Vec<(String, Tensor)>,
    vars: Option<VarMap>,
    device: Device,
    dtype: DType,
    /// Kernel choice of the differentiable forward.
    kernels: Kernels,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("architecture", &self.config.architecture)
            .field("parameters", &self.config.num_parameters())
            .field("dtype", &self.dtype)
            .field("device", &self.device)
            .field("trainable", &self.vars.is_some())
            .finish()
    }
}

/// Takes the tensors a config needs out of a name → tensor map.
struct Taker<'a> {
    tensors: HashMap<String, Tensor>,
    vars: Option<&'a VarMap>,
    params: Vec<(String, Tensor)>,
}

impl Taker<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> ModelResult<Tensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: "<tensors>".into(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        if t.dims() != shape {
            return Err(ModelError::ShapeMismatch {
                path: "<tensors>".into(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        let t = match self.vars {
            Some(map) => {
                let var = Var::from_tensor(&t.detach())?;
                let out = var.as_tensor().clone();
                map.data()
                    .lock()
                    .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?
                    .insert(name.to_string(), var);
                out
            }
            None => t.detach(),
        };
        self.params.push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) -> ModelResult<Linear> {
        Ok(Linear {
            weight: self.take(&format!("{prefix}.weight"), &[out, inp])?,
            bias: if bias {
                Some(self.take(&format!("{prefix}.bias"), &[out])?)
            } else {
                None
            },
        })
    }

    fn norm(&mut self, name: &str, h: usize, eps: f64) -> ModelResult<RmsNorm> {
        Ok(RmsNorm {
            weight: self.take(name, &[h])?,
            eps,
        })
    }

    /// Decoder block `l` of `c`.
    fn layer(&mut self, c: &ModelConfig, l: usize) -> ModelResult<Layer> {
        let p = format!("model.layers.{l}");
        let (h, d, eps) = (c.hidden_size, c.head_dim, c.rms_norm_eps);
        let (q, kv, i) = (
            c.num_attention_heads * d,
            c.num_key_value_heads * d,
            c.intermediate_size,
        );
        let input_layernorm = self.norm(&format!("{p}.input_layernorm.weight"), h, eps)?;
        let self_attn = Attention {
            q_proj: self.linear(&format!("{p}.self_attn.q_proj"), q, h, c.qkv_bias)?,
            k_proj: self.linear(&format!("{p}.self_attn.k_proj"), kv, h, c.qkv_bias)?,
            v_proj: self.linear(&format!("{p}.self_attn.v_proj"), kv, h, c.qkv_bias)?,
            o_proj: self.linear(&format!("{p}.self_attn.o_proj"), h, q, c.o_bias)?,
            n_heads: c.num_attention_heads,
            n_kv_heads: c.num_key_value_heads,
            head_dim: d,
        };
        let post_attention_layernorm =
            self.norm(&format!("{p}.post_attention_layernorm.weight"), h, eps)?;
        let mlp = Mlp {
            gate_proj: self.linear(&format!("{p}.mlp.gate_proj"), i, h, c.mlp_bias)?,
            up_proj: self.linear(&format!("{p}.mlp.up_proj"), i, h, c.mlp_bias)?,
            down_proj: self.linear(&format!("{p}.mlp.down_proj"), h, i, c.mlp_bias)?,
        };
        Ok(Layer {
            input_layernorm,
            self_attn,
            post_attention_layernorm,
            mlp,
        })
    }
}

impl Transformer {
    /// Builds a model from tensors named as in a Hugging Face checkpoint (all on one device,
    /// in one float dtype). With `trainable`, every weight becomes a [`Var`] (a copy) in a
    /// fresh [`VarMap`]; otherwise the tensors are used as they are, detached. Extra tensors
    /// are ignored; missing ones and wrong shapes are errors.
    pub fn from_tensors(
        config: ModelConfig,
        tensors: HashMap<String, Tensor>,
        trainable: bool,
    ) -> ModelResult<Self> {
        config.validate(std::path::Path::new("<config>"))?;
        let first =
            tensors
                .get("model.embed_tokens.weight")
                .ok_or_else(|| ModelError::MissingTensor {
                    path: "<tensors>".into(),
                    name: "model.embed_tokens.weight".into(),
                    expected: vec![config.vocab_size, config.hidden_size],
                })?;
        let (device, dtype) = (first.device().clone(), first.dtype());
        let vars = trainable.then(VarMap::new);
        let mut tk = Taker {
            tensors,
            vars: vars.as_ref(),
            params: Vec::new(),
        };
        let c = &config;
        let (h, eps) = (c.hidden_size, c.rms_norm_eps);
        let embed_tokens = tk.take("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let layers = (0..c.num_hidden_layers)
            .map(|l| tk.layer(c, l))
            .collect::<ModelResult<Vec<_>>>()?;
        let norm = tk.norm("model.norm.weight", h, eps)?;
        let lm_head = match c.tie_word_embeddings {
            true => None,
            false => Some(tk.take("lm_head.weight", &[c.vocab_size, h])?),
        };
        for (name, t) in &tk.params {
            if t.dtype() != dtype || !t.device().same_device(&device) {
                return Err(ModelError::config(
                    "<tensors>",
                    name,
                    format!("dtype/device differ from the embedding's ({dtype:?})"),
                ));
            }
        }
        Ok(Self {
            rope: Rope::new(&c.rope, c.head_dim),
            params: tk.params,
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            vars,
            device,
            dtype,
            kernels: Kernels::from_env(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Weight dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The kernels the differentiable forward uses: [`Kernels::Fused`] unless set, or unless
    /// the model was built with `VINEPPO_KERNELS=composed` in the environment.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Chooses the kernels of the differentiable forward: [`Kernels::Composed`] runs the
    /// reference candle ops everywhere (same numbers up to summation order, slower on CPU).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// True when weights are [`Var`]s that receive gradients.
    pub fn is_trainable(&self) -> bool {
        self.vars.is_some()
    }

    /// The variables of a trainable model (HF names), `None` for a frozen one.
    pub fn var_map(&self) -> Option<&VarMap> {
        self.vars.as_ref()
    }

    /// Every parameter under its HF name, in checkpoint order; the tied LM head is omitted.
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Trainable variables in checkpoint order (empty for a frozen model).
    pub fn vars(&self) -> Vec<(String, Var)> {
        let Some(map) = &self.vars else {
            return Vec::new();
        };
        let Ok(data) = map.data().lock() else {
            return Vec::new();
        };
        self.params
            .iter()
            .filter_map(|(n, _)| data.get(n).map(|v| (n.clone(), v.clone())))
            .collect()
    }

    /// A frozen model holding copies of the current weights (the PPO reference policy):
    /// later updates of `self` do not affect it.
    pub fn frozen_copy(&self) -> ModelResult<Self> {
        let tensors = self
            .params
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.detach().copy()?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Self::from_tensors(self.config.clone(), tensors, false)
    }

    /// The mode [`Transformer::forward_hidden`] uses: differentiable for trainable models.
    pub fn default_mode(&self) -> Mode {
        if self.is_trainable() {
            Mode::Train
        } else {
            Mode::Infer
        }
    }

    /// Hidden states after the final norm, `(B, T, H)`, for `ids` `(B, T)` (u32).
    /// Differentiable for a trainable model. With `cache`, the ids are appended to it (see
    /// [`KvCache`]); `left_pad` must then be empty or all zero unless the cache is empty.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        left_pad: &[usize],
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        self.run(ids, left_pad, cache, self.default_mode(), true)
    }

    /// [`Transformer::forward_hidden`] in an explicit [`Mode`].
    pub fn forward_hidden_with(
        &self,
        ids: &Tensor,
        left_pad: &[usize],
        cache: Option<&mut KvCache>,
        mode: Mode,
    ) -> Result<Tensor> {
        self.run(ids, left_pad, cache, mode, true)
    }

    /// Logits `(…, V)` of hidden states `(…, H)`, in the weight dtype.
    pub fn lm_head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head_with(hidden, self.default_mode())
    }

    fn lm_head_with(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor> {
        let weight = self.lm_head.as_ref().unwrap_or(&self.embed_tokens).clone();
        Linear { weight, bias: None }.forward_with(hidden, mode, self.kernels)
    }

    /// Logits `(B, T, V)` for `ids` `(B, T)`; see [`Transformer::forward_hidden`].
    pub fn forward(
        &self,
        ids: &Tensor,
        left_pad: &[usize],
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        self.lm_head(&self.forward_hidden(ids, left_pad, cache)?)
    }

    /// `log p(ids[t+1] | ids[..=t])` at temperature `temperature`, `(B, T−1)` in f32, through
    /// the fused [`target_logprobs`] op (f64 for an f64 model). Differentiable for a trainable model; entries whose
    /// target is left padding are meaningless and must be masked by the caller. Call
    /// `.detach()` on the result when no gradient is needed, so the graph can be freed.
    pub fn token_logprobs(
        &self,
        ids: &Tensor,
        left_pad: &[usize],
        temperature: f64,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t < 2 {
            return Tensor::zeros((b, 0), DType::F32, &self.device);
        }
        let hidden = self
            .forward_hidden(ids, left_pad, None)?
            .narrow(1, 0, t - 1)?; // (B, T-1, H)
        let logits = self
            .lm_head(&hidden)?
            .reshape((b * (t - 1), self.config.vocab_size))?; // (N, V)
        let targets = ids.narrow(1, 1, t - 1)?.contiguous()?.flatten_all()?; // (N)
        target_logprobs(&logits, &targets, temperature)?.reshape((b, t - 1))
    }

    /// The shared forward: embeddings, blocks, and (when `final_norm`) the last RMSNorm.
    fn run(
        &self,
        ids: &Tensor,
        left_pad: &[usize],
        mut cache: Option<&mut KvCache>,
        mode: Mode,
        final_norm: bool,
    ) -> Result<Tensor> {
        let ids = self.check_ids(ids)?;
        let (b, t) = ids.dims2()?;
        let left_pad = resolve_left_pad(left_pad, b, t)?;
        // Without a cache on the CPU (training, or scoring with a frozen model): the fused
        // attention builds its own mask and rotations from `left_pad` and the half-width tables.
        let fused = cache.is_none() && self.kernels.fuses(&self.embed_tokens);
        let (positions, mask) = match cache.as_deref_mut() {
            Some(c) => {
                prepare_cache(c, &left_pad, b, self.config.num_hidden_layers)?;
                (c.positions(t), Some(c.attention_mask(t, &self.device)?))
            }
            None if fused => (cache::positions(&left_pad, 0, t), None),
            None if left_pad.iter().all(|&p| p == 0) => (
                cache::positions(&left_pad, 0, t),
                // One causal mask broadcast over the batch.
                Some(cache::attention_mask(&[0], 0, t, &self.device)?),
            ),
            None => (
                cache::positions(&left_pad, 0, t),
                Some(cache::attention_mask(&left_pad, 0, t, &self.device)?),
            ),
        };
        let rope = self
            .rope
            .tables(&positions, b, t, self.dtype, &self.device)?;
        let rope_full = match mode {
            Mode::Train if !fused => Some(rope.full()?),
            _ => None,
        };
        let step = StepInputs {
            rope,
            rope_full,
            mask,
            left_pad,
            kernels: self.kernels,
        };
        let embed = mode.weight(&self.embed_tokens);
        let mut x =
            embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, self.config.hidden_size))?; // (B, T, H)
        for (l, layer) in self.layers.iter().enumerate() {
            let k = self.kernels;
            let normed = layer.input_layernorm.forward_with(&x, mode, k)?;
            let attn_cache = cache.as_deref_mut().map(|c| (c, l));
            let h = (&x + layer.self_attn.forward(&normed, &step, attn_cache, mode)?)?;
            let normed = layer.post_attention_layernorm.forward_with(&h, mode, k)?;
            x = (&h + layer.mlp.forward_with(&normed, mode, k)?)?;
        }
        if let Some(c) = cache {
            c.advance(t)?;
        }
        if final_norm {
            self.norm.forward_with(&x, mode, self.kernels)
        } else {
            Ok(x)
        }
    }

    /// `ids` as a `(B, T)` u32 tensor with every id below `vocab_size`.
    fn check_ids(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, t) = ids.dims2().map_err(|_| {
            candle_core::Error::Msg(format!(
                "token ids must be (batch, seq), got {:?}",
                ids.shape()
            ))
        })?;
        let ids = match ids.dtype() {
            DType::U32 => ids.clone(),
            DType::U8 | DType::I64 | DType::I32 | DType::I16 => ids.to_dtype(DType::U32)?,
            other => candle_core::bail!("token ids must be integers, got {other:?}"),
        };
        if t > 0 && ids.elem_count() > 0 {
            let max = ids.flatten_all()?.max(0)?.to_scalar::<u32>()?;
            if max as usize >= self.config.vocab_size {
                candle_core::bail!(
                    "token id {max} is out of range for a model with vocab_size {}; \
                     the tokenizer and the checkpoint do not match",
                    self.config.vocab_size
                )
            }
        }
        Ok(ids)
    }
}

/// `left_pad` for `b` rows of length `t` (empty means no padding).
fn resolve_left_pad(left_pad: &[usize], b: usize, t: usize) -> Result<Vec<usize>> {
    if left_pad.is_empty() {
        return Ok(vec![0; b]);
    }
    if left_pad.len() != b {
        candle_core::bail!("left_pad has {} entries for {b} rows", left_pad.len())
    }
    if let Some(p) = left_pad.iter().find(|&&p| p > t) {
        candle_core::bail!("left_pad {p} exceeds the sequence length {t}")
    }
    Ok(left_pad.to_vec())
}

/// Declares the batch on an empty cache, or checks a continuing one.
fn prepare_cache(c: &mut KvCache, left_pad: &[usize], b: usize, layers: usize) -> Result<()> {
    if c.n_layers() != layers {
        candle_core::bail!("cache has {} layers, the model {layers}", c.n_layers())
    }
    if c.is_empty() {
        if c.batch() != b || left_pad.iter().any(|&p| p > 0) {
            c.set_left_padding(left_pad)?;
        }
        return Ok(());
    }
    if c.batch() != b {
        candle_core::bail!("cache holds {} rows, got ids for {b}", c.batch())
    }
    if left_pad.iter().any(|&p| p > 0) {
        candle_core::bail!("left_pad must be zero when continuing a non-empty cache")
    }
    Ok(())
}

impl CausalLm for Transformer {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.num_hidden_layers)
    }

    fn prefill(&self, ids: &Tensor, left_pad: &[usize], cache: &mut KvCache) -> Result<()> {
        self.run(ids, left_pad, Some(cache), Mode::Infer, false)
            .map(|_| ())
    }

    fn decode_step(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t != 1 {
            candle_core::bail!("decode_step takes one token per row, got {t}")
        }
        if self.decodes_fused() {
            let ids = self.check_ids(ids)?.flatten_all()?.to_vec1::<u32>()?;
            return self.decode_fused(&ids, cache); // (B, V)
        }
        let hidden = self.run(ids, &[], Some(cache), Mode::Infer, true)?; // (B, 1, H)
        self.lm_head_with(&hidden.reshape((b, self.config.hidden_size))?, Mode::Infer)?
            .to_dtype(DType::F32) // (B, V)
    }
}
