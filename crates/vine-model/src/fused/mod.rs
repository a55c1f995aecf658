//! Fused CPU kernels for the differentiable (training) forward, each with a written backward.
//!
//! candle composes RMSNorm, RoPE, masked softmax and SwiGLU out of many small element-wise
//! ops; on the CPU each one is a separate pass over memory with a fresh allocation, and its
//! backward adds several more (candle accumulates every gradient as `zeros + grad`). At the
//! widths vineppo trains on the CPU those passes, not the GEMMs, dominated a training step.
//! The ops here do the same arithmetic in one pass per row, forward and backward:
//!
//! - [`rms_norm`]: `w · x / sqrt(mean(x²) + eps)`;
//! - [`swiglu`]: `silu(gate) · up`, and [`swiglu_mlp`], the whole SwiGLU MLP (its three GEMMs
//!   and the gate) as one node;
//! - [`attention`]: RoPE on `q`/`k`, the `1/sqrt(d)` scale, grouped-query scores, the causal and
//!   left-padding mask, softmax and the weighted sum of values, reading and writing the
//!   projections' `(B, T, heads·d)` layout directly (no transposes, no repeated K/V, no
//!   `(B, heads, T, T)` tensor in the graph);
//! - [`linear`]: `x Wᵀ` on `(…, in)` inputs without the reshape/transpose nodes around the GEMM.
//!
//! Every op computes what the composed formulation computes, in the same floating-point
//! order per element except for sums, whose association differs (as between any two GEMM
//! implementations). Reductions over rows (weight gradients) use fixed blocks summed in order,
//! so results do not depend on the thread count or on scheduling.
//!
//! The kernels exist for f32 and f64 on the CPU. Anywhere else (CUDA, half precision) the
//! public functions fall back to the composed ops, which have the same semantics; [`Kernels`]
//! also lets a caller force the composed path (tests and A/B benchmarks).

mod attention;
mod attention_kernels;
mod decode_attention;
mod fast_exp;
mod gemm;
mod linear;
mod mlp;
mod rms_norm;
mod rope;
mod simd;
mod skinny;
mod softmax;
mod swiglu;

pub use attention::{attention, composed_attention, AttentionSpec};
pub use fast_exp::exp;
pub use linear::{composed_linear, linear};
pub use mlp::{composed_swiglu_mlp, swiglu_mlp};
pub use rms_norm::{composed_rms_norm, rms_norm};
pub use swiglu::{composed_swiglu, swiglu};

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor, WithDType};

pub(crate) use decode_attention::attend;
pub(crate) use fast_exp::silu_mul;
pub(crate) use rms_norm::forward as rms_norm_rows;
pub(crate) use simd::dot;
pub(crate) use skinny::matmul_wt_many;

/// Which formulation the differentiable forward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Fused CPU kernels where they apply (f32/f64 on the CPU), composed ops elsewhere.
    #[default]
    Fused,
    /// Always the composed candle ops (the reference formulation).
    Composed,
}

/// Environment variable choosing the kernels of newly built models: `fused` (the default) or
/// `composed`, to compare the two or to rule the fused kernels out when chasing a problem.
pub const KERNELS_ENV: &str = "VINEPPO_KERNELS";

impl Kernels {
    /// The choice named by [`KERNELS_ENV`] (`composed` or `fused`; anything else, or unset,
    /// is the default).
    pub fn from_env() -> Self {
        match std::env::var(KERNELS_ENV).as_deref() {
            Ok("composed") => Kernels::Composed,
            _ => Kernels::Fused,
        }
    }

    /// True when the fused kernels run for tensors like `x`.
    pub fn fuses(self, x: &Tensor) -> bool {
        self == Kernels::Fused && supported(x)
    }
}

/// True when the fused kernels can run on `x` (CPU, f32 or f64).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// The float types the kernels run in.
pub(crate) trait Real: WithDType + std::ops::Neg<Output = Self> {
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    const NEG_INFINITY: Self;
}

impl Real for f32 {
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
}

impl Real for f64 {
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
}

/// The contiguous data of a CPU storage under `layout`.
pub(crate) fn storage_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused kernel needs contiguous inputs".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Read access to the data of contiguous CPU tensors (used by backward passes, which see
/// tensors rather than storages).
pub(crate) struct CpuData {
    tensors: Vec<Tensor>,
}

impl CpuData {
    /// Makes every tensor contiguous (a no-op for those already contiguous).
    pub(crate) fn new(tensors: &[&Tensor]) -> Result<Self> {
        let tensors = tensors
            .iter()
            .map(|t| t.contiguous())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { tensors })
    }

    /// Calls `f` with the data of every tensor, in order, as `T`.
    pub(crate) fn with<T: WithDType, R>(&self, f: impl FnOnce(&[&[T]]) -> Result<R>) -> Result<R> {
        let guards: Vec<_> = self
            .tensors
            .iter()
            .map(|t| t.storage_and_layout())
            .collect();
        let mut slices = Vec::with_capacity(guards.len());
        for (storage, layout) in &guards {
            match &**storage {
                Storage::Cpu(cpu) => slices.push(storage_slice::<T>(cpu, layout)?),
                _ => candle_core::bail!("fused kernels run on the CPU only"),
            }
        }
        f(&slices)
    }
}

/// A CPU tensor of `shape` holding `data`.
pub(crate) fn cpu_tensor<T: WithDType>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
}

/// Calls `$body` with `$t` bound to `f32` or `f64` according to `$dtype`.
macro_rules! dispatch_float {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            other => candle_core::bail!("fused kernels support f32 and f64, not {other:?}"),
        }
    };
}
pub(crate) use dispatch_float;

/// Rows per block of row reductions: fixed, so sums do not depend on the thread count.
pub(crate) const REDUCE_BLOCK: usize = 64;
