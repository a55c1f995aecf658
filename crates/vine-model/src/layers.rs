//! The small building blocks of the decoder: linear maps, RMSNorm and the SwiGLU MLP.
//!
//! Every block runs in one of two [`Mode`]s. `Train` uses only ops with a backward in candle
//! (composed RMSNorm, never candle-nn's fused `rms_norm`, which silently cuts the graph).
//! `Infer` detaches the weights (no graph is recorded) and may use fused kernels; tests check
//! that both agree.

use candle_core::{DType, Result, Tensor, D};

/// Which formulation a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Differentiable ops only; gradients flow to trainable weights.
    Train,
    /// No graph: weights detached, fused kernels where they exist.
    Infer,
}

impl Mode {
    /// The weight as this mode uses it (detached in `Infer`, so no graph is recorded).
    pub fn weight(self, w: &Tensor) -> Tensor {
        match self {
            Mode::Train => w.clone(),
            Mode::Infer => w.detach(),
        }
    }
}

/// `y = x Wᵀ + b` with a Hugging Face `(out, in)` weight.
#[derive(Debug, Clone)]
pub struct Linear {
    /// (out, in)
    pub weight: Tensor,
    /// (out)
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Applies the map to `x` `(…, in)` → `(…, out)`; leading dims are flattened into one GEMM.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let w = mode.weight(&self.weight);
        let (out_dim, in_dim) = w.dims2()?;
        let mut lead = x.dims().to_vec();
        let last = lead.pop().unwrap_or(0);
        if last != in_dim {
            candle_core::bail!("linear: input width {last}, weight expects {in_dim}")
        }
        let n: usize = lead.iter().product();
        let y = x.reshape((n, in_dim))?.matmul(&w.t()?)?; // (N, out)
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&mode.weight(b))?,
            None => y,
        };
        lead.push(out_dim);
        y.reshape(lead)
    }
}

/// Root-mean-square norm: `w · x / sqrt(mean(x²) + eps)`, statistics in f32 (as transformers).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// (H)
    pub weight: Tensor,
    /// Added to the mean square.
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises the last dim of `x` `(…, H)`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let w = mode.weight(&self.weight);
        if mode == Mode::Infer && x.dtype() != DType::F64 {
            // Fused kernel: f32 statistics; one rounding instead of two for bf16/f16.
            return candle_nn::ops::rms_norm(&x.contiguous()?, &w, self.eps as f32);
        }
        let dtype = x.dtype();
        let x32 = match dtype {
            DType::BF16 | DType::F16 => x.to_dtype(DType::F32)?,
            _ => x.clone(),
        };
        let mean_sq = x32.sqr()?.mean_keepdim(D::Minus1)?; // (…, 1)
        let inv_rms = (mean_sq + self.eps)?.sqrt()?.recip()?;
        x32.broadcast_mul(&inv_rms)?
            .to_dtype(dtype)?
            .broadcast_mul(&w)
    }
}

/// SwiGLU feed-forward: `down(silu(gate(x)) ⊙ up(x))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// (I, H)
    pub gate_proj: Linear,
    /// (I, H)
    pub up_proj: Linear,
    /// (H, I)
    pub down_proj: Linear,
}

impl Mlp {
    /// `x` `(B, T, H)` → `(B, T, H)`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let gate = self.gate_proj.forward(x, mode)?.silu()?;
        let up = self.up_proj.forward(x, mode)?;
        self.down_proj.forward(&(gate * up)?, mode)
    }
}
