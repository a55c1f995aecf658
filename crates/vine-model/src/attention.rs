//! Causal self-attention with grouped-query heads, RoPE and an optional external KV cache.
//!
//! `softmax(q kᵀ / sqrt(d) + mask) v`, per head, where every `n_heads / n_kv_heads` query heads
//! share one key/value head (GQA). Scores are soft-maxed in f32 whatever the weight dtype
//! (transformers does the same in its eager path). The scale is applied to `q` before the
//! product, which differs from transformers only in rounding.
//!
//! - Without a cache, on the CPU in f32/f64 (either mode): one [`fused::attention`] op (RoPE,
//!   scale, GQA, mask, softmax, weighted sum, with a written backward) on the projections'
//!   `(B, T, heads·d)` layout. Prefilling an empty cache in `Mode::Infer` runs the same op and
//!   also stores the chunk's rotated keys and its values.
//! - `Mode::Train` otherwise (another device, half types, a cache, or [`Kernels::Composed`])
//!   repeats K/V to every query head and uses only differentiable ops. With a cache, the keys
//!   of earlier steps come from the cache (constants) and the current step's keys stay in the
//!   graph.
//! - `Mode::Infer` with a cache never materialises repeated K/V: `q` `(B, n_heads, T, d)` is viewed as
//!   `(B, n_kv, groups·T, d)` so one batched GEMM per kv head serves its whole group, and it
//!   uses candle's fused RoPE and softmax kernels.

use candle_core::{DType, Result, Tensor, D};

use crate::cache::KvCache;
use crate::fused::{self, AttentionSpec, Kernels};
use crate::layers::{Linear, Mode};
use crate::rope::{apply_rope, apply_rope_fused, RopeTables};

/// Per-forward inputs shared by every layer.
#[derive(Debug, Clone)]
pub struct StepInputs {
    /// Half-width RoPE tables `(B, T, d/2)`.
    pub rope: RopeTables,
    /// Full-width RoPE tables `(B, 1, T, d)` for the composed differentiable path.
    pub rope_full: Option<(Tensor, Tensor)>,
    /// Additive mask `(B or 1, 1, T, past + T)`, f32; `None` when only the fused path runs.
    pub mask: Option<Tensor>,
    /// Leading padding tokens of every row (empty: none).
    pub left_pad: Vec<usize>,
    /// Kernel choice (the fused kernels run without a cache, in either mode).
    pub kernels: Kernels,
}

impl StepInputs {
    /// True when a forward without a cache runs the fused kernels for inputs like `x`.
    pub fn fuses(&self, x: &Tensor) -> bool {
        self.kernels.fuses(x)
    }
}

/// One attention block with Hugging Face projection names.
#[derive(Debug, Clone)]
pub struct Attention {
    /// (n_heads·d, H)
    pub q_proj: Linear,
    /// (n_kv·d, H)
    pub k_proj: Linear,
    /// (n_kv·d, H)
    pub v_proj: Linear,
    /// (H, n_heads·d)
    pub o_proj: Linear,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Head width `d`.
    pub head_dim: usize,
}

impl Attention {
    /// `x` `(B, T, H)` → `(B, T, H)`. With `cache`, this step's keys/values are appended to
    /// layer `layer` (the caller advances the cache after the last layer).
    pub fn forward(
        &self,
        x: &Tensor,
        step: &StepInputs,
        cache: Option<(&mut KvCache, usize)>,
        mode: Mode,
    ) -> Result<Tensor> {
        match cache {
            None if step.fuses(x) => return self.forward_fused(x, step, mode, None),
            // Prefilling an empty cache: attention within the chunk is the uncached forward's;
            // the cache only stores the chunk's keys and values.
            Some((cache, layer)) if cache.is_empty() && mode == Mode::Infer && step.fuses(x) => {
                return self.forward_fused(x, step, mode, Some((cache, layer)));
            }
            _ => {}
        }
        let (b, t, _) = x.dims3()?;
        let d = self.head_dim;
        let kernels = step.kernels;
        let heads = |lin: &Linear, n: usize| -> Result<Tensor> {
            lin.forward_with(x, mode, kernels)?
                .reshape((b, t, n, d))?
                .transpose(1, 2)?
                .contiguous() // (B, n, T, d)
        };
        let q = heads(&self.q_proj, self.n_heads)?;
        let k = heads(&self.k_proj, self.n_kv_heads)?;
        let v = heads(&self.v_proj, self.n_kv_heads)?;
        let (q, k) = match (&step.rope_full, mode) {
            (Some((cos, sin)), Mode::Train) => {
                (apply_rope(&q, cos, sin)?, apply_rope(&k, cos, sin)?)
            }
            _ => (
                apply_rope_fused(&q, &step.rope)?,
                apply_rope_fused(&k, &step.rope)?,
            ),
        };
        let q = (q * (1.0 / (d as f64).sqrt()))?;
        let (k, v) = match cache {
            None => (k, v),
            Some((cache, layer)) => {
                let past = cache.len();
                let (k_all, v_all) = cache.append(layer, &k, &v)?; // (B, n_kv, past + T, d)
                if mode == Mode::Train && past > 0 {
                    // Keep this step's keys/values in the graph; earlier ones are constants.
                    (
                        Tensor::cat(&[&k_all.narrow(2, 0, past)?, &k], 2)?,
                        Tensor::cat(&[&v_all.narrow(2, 0, past)?, &v], 2)?,
                    )
                } else if mode == Mode::Train {
                    (k, v)
                } else {
                    (k_all, v_all)
                }
            }
        };
        let mask = step
            .mask
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("attention: no mask was prepared".into()))?;
        let out = match mode {
            Mode::Train => self.attend_repeated(&q, &k, &v, mask)?,
            Mode::Infer => self.attend_grouped(&q, &k, &v, mask)?,
        }; // (B, n_heads, T, d)
        let out = out.transpose(1, 2)?.reshape((b, t, self.n_heads * d))?;
        self.o_proj.forward_with(&out, mode, kernels)
    }

    /// The forward without a cache through [`fused::attention`]; `x` `(B, T, H)`.
    fn forward_fused(
        &self,
        x: &Tensor,
        step: &StepInputs,
        mode: Mode,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let kernels = step.kernels;
        let q = self.q_proj.forward_with(x, mode, kernels)?; // (B, T, n_heads·d)
        let k = self.k_proj.forward_with(x, mode, kernels)?; // (B, T, n_kv·d)
        let v = self.v_proj.forward_with(x, mode, kernels)?;
        if let Some((cache, layer)) = cache {
            let (b, t, _) = x.dims3()?;
            let heads = |x: &Tensor| -> Result<Tensor> {
                x.reshape((b, t, self.n_kv_heads, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous() // (B, n_kv, T, d)
            };
            let k = apply_rope_fused(&heads(&k)?, &step.rope)?;
            cache.append(layer, &k, &heads(&v)?)?;
        }
        let spec = AttentionSpec {
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            scale: 1.0 / (self.head_dim as f64).sqrt(),
        };
        let out = fused::attention(&q, &k, &v, &spec, &step.rope, &step.left_pad)?;
        self.o_proj.forward_with(&out, mode, kernels)
    }

    /// Differentiable attention with K/V repeated per query head.
    /// `q` (B, n_heads, T, d), `k`/`v` (B, n_kv, S, d), `mask` (B|1, 1, T, S).
    fn attend_repeated(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let groups = self.n_heads / self.n_kv_heads;
        let k = repeat_kv(k, groups)?; // (B, n_heads, S, d)
        let v = repeat_kv(v, groups)?;
        let scores = q.matmul(&k.t()?)?; // (B, n_heads, T, S)
        let dtype = scores.dtype();
        let scores =
            to_softmax_dtype(&scores)?.broadcast_add(&mask.to_dtype(softmax_dtype(dtype))?)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?.to_dtype(dtype)?;
        probs.matmul(&v)
    }

    /// Inference attention: one GEMM per kv head for its whole query group.
    fn attend_grouped(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, _, t, d) = q.dims4()?;
        let groups = self.n_heads / self.n_kv_heads;
        let s = k.dim(2)?;
        let q = q.reshape((b, self.n_kv_heads, groups * t, d))?;
        let scores = q.matmul(&k.t()?)?; // (B, n_kv, groups·T, S)
        let dtype = scores.dtype();
        let scores = to_softmax_dtype(&scores)?
            .reshape((b, self.n_kv_heads, groups, t, s))?
            .broadcast_add(&mask.to_dtype(softmax_dtype(dtype))?.unsqueeze(1)?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?
            .to_dtype(dtype)?
            .reshape((b, self.n_kv_heads, groups * t, s))?;
        probs.matmul(v)?.reshape((b, self.n_heads, t, d))
    }
}

/// The dtype scores are soft-maxed in: f32 for half types, else unchanged.
fn softmax_dtype(dtype: DType) -> DType {
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}

fn to_softmax_dtype(x: &Tensor) -> Result<Tensor> {
    x.to_dtype(softmax_dtype(x.dtype()))
}

/// `(B, n_kv, S, d)` → `(B, n_kv·groups, S, d)`, each kv head repeated for its query group.
pub(crate) fn repeat_kv(x: &Tensor, groups: usize) -> Result<Tensor> {
    if groups == 1 {
        return Ok(x.clone());
    }
    let (b, n_kv, s, d) = x.dims4()?;
    // Concatenating along the sequence dim and reshaping puts `groups` copies of each head
    // next to each other.
    Tensor::cat(&vec![x; groups], 2)?.reshape((b, n_kv * groups, s, d))
}
