//! The small building blocks of the decoder: linear maps, RMSNorm and the SwiGLU MLP.
//!
//! Every block runs in one of two [`Mode`]s. `Train` uses only ops with a backward: on the CPU
//! the fused kernels of [`crate::fused`] (each with a written backward), elsewhere composed
//! candle ops — never candle-nn's fused `rms_norm`, which silently cuts the graph. `Infer`
//! detaches the weights (no graph is recorded) and may use candle-nn's fused kernels; tests
//! check that all of them agree.

use candle_core::{DType, Result, Tensor};

use crate::fused::{self, Kernels};

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
        self.forward_with(x, mode, Kernels::default())
    }

    /// [`Linear::forward`] with an explicit kernel choice.
    pub fn forward_with(&self, x: &Tensor, mode: Mode, kernels: Kernels) -> Result<Tensor> {
        let w = mode.weight(&self.weight);
        let y = if kernels.fuses(x) {
            fused::linear(x, &w)?
        } else {
            fused::composed_linear(x, &w)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&mode.weight(b)),
            None => Ok(y),
        }
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
        self.forward_with(x, mode, Kernels::default())
    }

    /// [`RmsNorm::forward`] with an explicit kernel choice for `Train` mode.
    pub fn forward_with(&self, x: &Tensor, mode: Mode, kernels: Kernels) -> Result<Tensor> {
        let w = mode.weight(&self.weight);
        match mode {
            Mode::Infer if x.dtype() != DType::F64 => {
                // candle-nn's kernel (no backward): f32 statistics; one rounding instead of
                // two for bf16/f16.
                candle_nn::ops::rms_norm(&x.contiguous()?, &w, self.eps as f32)
            }
            Mode::Train if kernels.fuses(x) => fused::rms_norm(x, &w, self.eps),
            _ => fused::composed_rms_norm(x, &w, self.eps),
        }
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
        self.forward_with(x, mode, Kernels::default())
    }

    /// [`Mlp::forward`] with an explicit kernel choice.
    pub fn forward_with(&self, x: &Tensor, mode: Mode, kernels: Kernels) -> Result<Tensor> {
        let linears = [&self.gate_proj, &self.up_proj, &self.down_proj];
        if kernels.fuses(x) && linears.iter().all(|l| l.bias.is_none()) {
            let [g, u, d] = linears.map(|l| mode.weight(&l.weight));
            return fused::swiglu_mlp(x, &g, &u, &d);
        }
        let gate = self.gate_proj.forward_with(x, mode, kernels)?; // (B, T, I)
        let up = self.up_proj.forward_with(x, mode, kernels)?;
        let act = if kernels.fuses(&gate) {
            fused::swiglu(&gate, &up)?
        } else {
            fused::composed_swiglu(&gate, &up)?
        };
        self.down_proj.forward_with(&act, mode, kernels)
    }
}
