//! Fused SwiGLU gate: `y = silu(a) · b` with `silu(a) = a / (1 + exp(−a))`, and its backward
//! `da = (g·b) · (σ(a)·(1 − silu(a)) + silu(a))`, `db = g · silu(a)`: the formulas (and
//! roundings) of candle's `silu`, its backward and `mul`'s, in one pass each way.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::simd::multiversion;
use super::{cpu_tensor, dispatch_float, storage_slice, CpuData, Real};

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// `silu(gate) · up` for tensors of one shape. Fused on the CPU in f32/f64, composed elsewhere.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.dims() != up.dims() {
        candle_core::bail!(
            "swiglu: gate {:?} and up {:?} differ",
            gate.dims(),
            up.dims()
        )
    }
    if !(super::supported(gate) && up.dtype() == gate.dtype()) {
        return composed_swiglu(gate, up);
    }
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwigluOp)
}

/// The composed formulation: `gate.silu() * up`.
pub fn composed_swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

struct SwigluOp;

/// Elements whose `exp(−a)` are computed together before the vectorised arithmetic.
const TILE: usize = 64;

pub(super) fn forward<T: Real>(a: &[T], b: &[T]) -> Vec<T> {
    let mut y = vec![T::zero(); a.len()];
    y.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(y, (a, b))| forward_chunk(a, b, y));
    y
}

multiversion! {
    /// `y = a / (1 + exp(−a)) · b`, as candle's `silu` then `mul`.
    fn forward_chunk<T: Real>(a: &[T], b: &[T], y: &mut [T]) {
        let mut e = [T::zero(); TILE];
        for ((y, a), b) in y.chunks_mut(TILE).zip(a.chunks(TILE)).zip(b.chunks(TILE)) {
            for (e, &a) in e.iter_mut().zip(a) {
                *e = (-a).exp();
            }
            for (((y, &a), &b), &e) in y.iter_mut().zip(a).zip(b).zip(&e) {
                *y = a / (T::one() + e) * b;
            }
        }
    }
}

fn backward<T: Real>(a: &[T], b: &[T], g: &[T]) -> (Vec<T>, Vec<T>) {
    let mut da = vec![T::zero(); a.len()];
    let mut db = vec![T::zero(); a.len()];
    da.par_chunks_mut(CHUNK)
        .zip(db.par_chunks_mut(CHUNK))
        .zip(
            a.par_chunks(CHUNK)
                .zip(b.par_chunks(CHUNK))
                .zip(g.par_chunks(CHUNK)),
        )
        .for_each(|((da, db), ((a, b), g))| backward_chunk(a, b, g, da, db));
    (da, db)
}

multiversion! {
    /// `da = (g·b) · (σ·(1 − y) + y)`, `db = g · y` with `y = silu(a)`, `σ = 1 / (1 + e)`,
    /// `e = exp(−a)`: candle's silu backward (`recip(e + 1)`, `(1 − y)`, …) and mul's.
    fn backward_chunk<T: Real>(a: &[T], b: &[T], g: &[T], da: &mut [T], db: &mut [T]) {
        let mut e = [T::zero(); TILE];
        let tiles = da.chunks_mut(TILE).zip(db.chunks_mut(TILE));
        let inputs = a.chunks(TILE).zip(b.chunks(TILE)).zip(g.chunks(TILE));
        for ((da, db), ((a, b), g)) in tiles.zip(inputs) {
            for (e, &a) in e.iter_mut().zip(a) {
                *e = T::one() + (-a).exp();
            }
            let lanes = da.iter_mut().zip(db.iter_mut()).zip(a.iter().zip(b).zip(g).zip(&e));
            for ((da, db), (((&a, &b), &g), &e1)) in lanes {
                let (s, y) = (T::one() / e1, a / e1);
                *da = (g * b) * (s * (T::one() - y) + y);
                *db = g * y;
            }
        }
    }
}

impl CustomOp2 for SwigluOp {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = dispatch_float!(s1.dtype(), F => {
            let y = forward::<F>(storage_slice(s1, l1)?, storage_slice(s2, l2)?);
            <F as candle_core::WithDType>::to_cpu_storage_owned(y)
        });
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let data = CpuData::new(&[a, b, grad])?;
        let (da, db) = dispatch_float!(a.dtype(), F => data.with::<F, _>(|s| {
            let (da, db) = backward::<F>(s[0], s[1], s[2]);
            Ok((cpu_tensor(da, a.dims())?, cpu_tensor(db, b.dims())?))
        })?);
        Ok((Some(da), Some(db)))
    }
}
