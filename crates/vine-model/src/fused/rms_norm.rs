//! Fused RMSNorm: `y = (x · r) · w` with `r = 1 / sqrt(Σx² · (1/H) + eps)` per row, and its
//! backward `dx = r · (g·w − x̂ · mean(g·w·x̂))`, `dw = Σ_rows g · x̂` (`x̂ = x·r`).
//!
//! The forward rounds exactly as the composed [`crate::layers::RmsNorm`] (`sqr`,
//! `mean_keepdim`, `+ eps`, `sqrt`, `recip`, two products) except for the order of the sum of
//! squares. Rows run in parallel; `dw` is summed in fixed blocks of rows, then over blocks in
//! order.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::simd::{multiversion, LANES};
use super::{cpu_tensor, dispatch_float, storage_slice, CpuData, Real, REDUCE_BLOCK};

/// RMSNorm of the last dim of `x` `(…, H)` with weight `w` `(H)`. Fused on the CPU in f32/f64;
/// elsewhere (and for half types, whose statistics are taken in f32) the composed ops.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let h = x.dim(D::Minus1)?;
    if w.dims() != [h] {
        candle_core::bail!("rms_norm: weight {:?} for width {h}", w.dims())
    }
    if !(super::supported(x) && w.dtype() == x.dtype()) {
        return composed_rms_norm(x, w, eps);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNormOp { eps })
}

/// The composed formulation (statistics in f32 for half types, as transformers).
pub fn composed_rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x32 = match dtype {
        candle_core::DType::BF16 | candle_core::DType::F16 => {
            x.to_dtype(candle_core::DType::F32)?
        }
        _ => x.clone(),
    };
    let mean_sq = x32.sqr()?.mean_keepdim(D::Minus1)?; // (…, 1)
    let inv_rms = (mean_sq + eps)?.sqrt()?.recip()?;
    x32.broadcast_mul(&inv_rms)?
        .to_dtype(dtype)?
        .broadcast_mul(w)
}

struct RmsNormOp {
    eps: f64,
}

/// `1 / sqrt(Σx² · (1/H) + eps)`, rounded like the composed ops.
fn inv_rms<T: Real>(row: &[T], inv_h: T, eps: T) -> T {
    let ms = super::dot(row, row) * inv_h;
    T::one() / (ms + eps).sqrt()
}

pub(crate) fn forward<T: Real>(x: &[T], w: &[T], eps: f64) -> Vec<T> {
    let h = w.len();
    let mut y = vec![T::zero(); x.len()];
    if h == 0 {
        return y;
    }
    y.par_chunks_mut(h * REDUCE_BLOCK)
        .zip(x.par_chunks(h * REDUCE_BLOCK))
        .for_each(|(y, x)| forward_rows(x, w, T::from_f64(eps), y));
    y
}

multiversion! {
    /// [`forward`] on consecutive rows.
    fn forward_rows<T: Real>(x: &[T], w: &[T], eps: T, y: &mut [T]) {
        let h = w.len();
        let inv_h = T::from_f64(1.0 / h as f64);
        for (y, x) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
            let r = inv_rms(x, inv_h, eps);
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                *y = x * r * w;
            }
        }
    }
}

/// `(dx, dw)` for inputs `x`, `w` and output gradient `g`.
fn backward<T: Real>(x: &[T], w: &[T], g: &[T], eps: f64) -> (Vec<T>, Vec<T>) {
    let h = w.len();
    let mut dx = vec![T::zero(); x.len()];
    if h == 0 {
        return (dx, Vec::new());
    }
    let block = h * REDUCE_BLOCK;
    let partial: Vec<Vec<T>> = dx
        .par_chunks_mut(block)
        .zip(x.par_chunks(block).zip(g.par_chunks(block)))
        .map(|(dx, (x, g))| {
            let mut dw = vec![T::zero(); h];
            backward_rows(x, w, g, T::from_f64(eps), dx, &mut dw);
            dw
        })
        .collect();
    let mut dw = vec![T::zero(); h];
    for p in partial {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    (dx, dw)
}

multiversion! {
    /// [`backward`] on consecutive rows: writes their `dx`, adds their `dw` into `dw`.
    fn backward_rows<T: Real>(x: &[T], w: &[T], g: &[T], eps: T, dx: &mut [T], dw: &mut [T]) {
        let h = w.len();
        let inv_h = T::from_f64(1.0 / h as f64);
        let mut gw = vec![T::zero(); h];
        let rows = dx.chunks_exact_mut(h).zip(x.chunks_exact(h)).zip(g.chunks_exact(h));
        for ((dx, x), g) in rows {
            let r = inv_rms(x, inv_h, eps);
            for ((gw, &g), &w) in gw.iter_mut().zip(g).zip(w) {
                *gw = g * w;
            }
            for ((dw, &g), &x) in dw.iter_mut().zip(g).zip(x) {
                *dw += g * (x * r);
            }
            // c = mean(g·w·x̂), then dx = r · (g·w − x̂ · c).
            let c = dot_scaled(&gw, x, r) * inv_h;
            for ((dx, &gw), &x) in dx.iter_mut().zip(&gw).zip(x) {
                *dx = r * (gw - x * r * c);
            }
        }
    }
}

/// `Σ a_i · (b_i · r)` in interleaved partial sums.
fn dot_scaled<T: Real>(a: &[T], b: &[T], r: T) -> T {
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * (y[l] * r);
        }
    }
    let s = ra
        .iter()
        .zip(rb)
        .fold(T::zero(), |s, (&x, &y)| s + x * (y * r));
    acc.iter().fold(s, |s, &x| s + x)
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = dispatch_float!(s1.dtype(), F => {
            let y = forward::<F>(storage_slice(s1, l1)?, storage_slice(s2, l2)?, self.eps);
            <F as candle_core::WithDType>::to_cpu_storage_owned(y)
        });
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let data = CpuData::new(&[x, w, grad])?;
        let (dx, dw) = dispatch_float!(x.dtype(), F => data.with::<F, _>(|s| {
            let (dx, dw) = backward::<F>(s[0], s[1], s[2], self.eps);
            Ok((cpu_tensor(dx, x.dims())?, cpu_tensor(dw, w.dims())?))
        })?);
        Ok((Some(dx), Some(dw)))
    }
}
