//! `y = x Wᵀ` for `x` `(…, in)` and a Hugging Face `(out, in)` weight as one graph node.
//!
//! The composed version is `reshape → matmul(Wᵀ) → reshape`; each view is a node whose
//! backward allocates and adds a gradient the size of the activations. Here the forward is one
//! GEMM and the backward two (`dx = g W`, `dW = gᵀ x`), all through the `gemm` crate with
//! candle's thread count, as candle's own matmul.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::gemm::{parallelism, product, View};
use super::{cpu_tensor, dispatch_float, storage_slice, CpuData, Real};

/// `x` `(…, in)` times `wᵀ` (`w` `(out, in)`) → `(…, out)`. Fused on the CPU in f32/f64.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (_, in_dim) = w.dims2()?;
    let last = x.dims().last().copied().unwrap_or(0);
    if last != in_dim {
        candle_core::bail!("linear: input width {last}, weight expects {in_dim}")
    }
    if !(super::supported(x) && w.dtype() == x.dtype()) {
        return composed_linear(x, w);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, LinearOp)
}

/// The composed formulation: leading dims flattened into one `matmul` with `wᵀ`.
pub fn composed_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (out_dim, in_dim) = w.dims2()?;
    let mut lead = x.dims().to_vec();
    let last = lead.pop().unwrap_or(0);
    if last != in_dim {
        candle_core::bail!("linear: input width {last}, weight expects {in_dim}")
    }
    let n: usize = lead.iter().product();
    let y = x.reshape((n, in_dim))?.matmul(&w.t()?)?; // (N, out)
    lead.push(out_dim);
    y.reshape(lead)
}

struct LinearOp;

/// `x (n×in) · wᵀ` → `(n×out)`.
fn forward<T: Real>(x: &[T], w: &[T], out_dim: usize) -> Result<Vec<T>> {
    let in_dim = w.len() / out_dim.max(1);
    let n = x.len().checked_div(in_dim).unwrap_or(0);
    let (xv, wt) = (View::rows(0, in_dim), View::cols(0, in_dim));
    product(x, xv, w, wt, (n, out_dim, in_dim), parallelism(true))
}

/// `(dx, dw)`: `g (n×out) · w` and `gᵀ · x`.
fn backward<T: Real>(x: &[T], w: &[T], g: &[T], out_dim: usize) -> Result<(Vec<T>, Vec<T>)> {
    let in_dim = w.len() / out_dim.max(1);
    let n = x.len().checked_div(in_dim).unwrap_or(0);
    let par = parallelism(true);
    let (xv, gv) = (View::rows(0, in_dim), View::rows(0, out_dim));
    let dx = product(g, gv, w, xv, (n, in_dim, out_dim), par)?;
    let dw = product(g, View::cols(0, out_dim), x, xv, (out_dim, in_dim, n), par)?;
    Ok((dx, dw))
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (out_dim, _) = l2.shape().dims2()?;
        let out = dispatch_float!(s1.dtype(), F => {
            let y = forward::<F>(storage_slice(s1, l1)?, storage_slice(s2, l2)?, out_dim)?;
            <F as candle_core::WithDType>::to_cpu_storage_owned(y)
        });
        let mut dims = l1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_dim;
        }
        Ok((out, Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (out_dim, _) = w.dims2()?;
        let data = CpuData::new(&[x, w, grad])?;
        let (dx, dw) = dispatch_float!(x.dtype(), F => data.with::<F, _>(|s| {
            let (dx, dw) = backward::<F>(s[0], s[1], s[2], out_dim)?;
            Ok((cpu_tensor(dx, x.dims())?, cpu_tensor(dw, w.dims())?))
        })?);
        Ok((Some(dx), Some(dw)))
    }
}
