//! The whole SwiGLU MLP `down(silu(x W_gateᵀ) ⊙ (x W_upᵀ))` as one graph node.
//!
//! Forward: one GEMM against the stacked `[W_gate; W_up]` `(2I, H)` gives `z = [gate | up]`
//! `(N, 2I)`, the gate is applied in place (`a = silu(gate) · up`, keeping `e = 1 + exp(−gate)`),
//! and a second GEMM gives `y = a W_downᵀ`. The op keeps `z`, `e` and `a` for its backward (the
//! composed graph keeps as many `(N, I)` tensors), so the backward computes no exponential:
//! `da = g W_down`, `dW_down = gᵀ a`, `dz = [da·up·(σ(1 − s) + s) | da·s]` with `s = gate / e`,
//! `σ = 1 / e` (candle's silu backward), `dx = dz [W_gate; W_up]`, `d[W_gate; W_up] = dzᵀ x`.
//! Compared with three linear nodes and a gate node it saves three `(N, I)` gradient tensors
//! and their accumulation per layer.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::gemm::{parallelism, product, View};
use super::simd::multiversion;
use super::{cpu_tensor, dispatch_float, storage_slice, CpuData, Real};

/// Rows per parallel task of the element-wise gate.
const ROWS: usize = 32;

/// `down(silu(x gateᵀ) · (x upᵀ))` for `x` `(…, H)`, `gate`/`up` `(I, H)`, `down` `(O, I)`.
/// One fused op on the CPU in f32/f64; composed ops elsewhere.
pub fn swiglu_mlp(x: &Tensor, gate: &Tensor, up: &Tensor, down: &Tensor) -> Result<Tensor> {
    let (i, h) = gate.dims2()?;
    let (o, di) = down.dims2()?;
    let last = x.dims().last().copied().unwrap_or(0);
    if up.dims() != [i, h] || di != i || last != h {
        candle_core::bail!(
            "swiglu_mlp: x {:?}, gate {:?}, up {:?}, down {:?} do not chain",
            x.dims(),
            gate.dims(),
            up.dims(),
            down.dims()
        )
    }
    let same = [gate, up, down].iter().all(|w| w.dtype() == x.dtype());
    if !(super::supported(x) && same) {
        return composed_swiglu_mlp(x, gate, up, down);
    }
    let stacked = Tensor::cat(&[gate, up], 0)?; // (2I, H)
    let op = MlpOp {
        out_dim: o,
        saved: OnceLock::new(),
    };
    x.contiguous()?.apply_op3(&stacked, &down.contiguous()?, op)
}

/// The composed formulation: three linear maps and `silu(gate) · up`.
pub fn composed_swiglu_mlp(
    x: &Tensor,
    gate: &Tensor,
    up: &Tensor,
    down: &Tensor,
) -> Result<Tensor> {
    let g = super::composed_linear(x, gate)?;
    let u = super::composed_linear(x, up)?;
    super::composed_linear(&super::composed_swiglu(&g, &u)?, down)
}

/// What the forward keeps for the backward: `z` `(N, 2I)`, `e` and `a` `(N, I)`.
struct Saved {
    z: CpuStorage,
    e: CpuStorage,
    a: CpuStorage,
}

struct MlpOp {
    out_dim: usize,
    saved: OnceLock<Saved>,
}

multiversion! {
    /// Rows of `z = [gate | up]` `(·, 2I)` (`I = i`) → `a = silu(gate) · up` and
    /// `e = 1 + exp(−gate)`.
    fn gate_rows<T: Real>(i: usize, z: &[T], a: &mut [T], e: &mut [T]) {
        if i == 0 {
            return;
        }
        let rows = z.chunks_exact(2 * i).zip(a.chunks_exact_mut(i)).zip(e.chunks_exact_mut(i));
        for ((z, a), e) in rows {
            let (gate, up) = z.split_at(i);
            for (e, &g) in e.iter_mut().zip(gate) {
                *e = T::one() + (-g).exp();
            }
            for (((a, &g), &u), &e) in a.iter_mut().zip(gate).zip(up).zip(e.iter()) {
                *a = g / e * u;
            }
        }
    }
}

multiversion! {
    /// Rows of `dz` `(·, 2I)` from `da` `(·, I)` and the saved `z`, `e` (`I = i`).
    fn gate_grad_rows<T: Real>(i: usize, da: &[T], z: &[T], e: &[T], dz: &mut [T]) {
        if i == 0 {
            return;
        }
        let rows = da.chunks_exact(i).zip(z.chunks_exact(2 * i)).zip(e.chunks_exact(i));
        for (((da, z), e), dz) in rows.zip(dz.chunks_exact_mut(2 * i)) {
            let (gate, up) = z.split_at(i);
            let (dg, du) = dz.split_at_mut(i);
            let lanes = dg.iter_mut().zip(du.iter_mut()).zip(da.iter().zip(e));
            for (((dg, du), (&d, &e)), (&g, &u)) in lanes.zip(gate.iter().zip(up)) {
                let (sig, s) = (T::one() / e, g / e);
                *dg = (d * u) * (sig * (T::one() - s) + s);
                *du = d * s;
            }
        }
    }
}

/// `(y, saved)` for `x` `(N, H)`, `w` `(2I, H)`, `down` `(O, I)`.
fn forward<T: Real>(x: &[T], w: &[T], down: &[T], o: usize) -> Result<(Vec<T>, [Vec<T>; 3])> {
    let i = down.len() / o.max(1);
    let h = w.len() / (2 * i).max(1);
    let n = x.len() / h.max(1);
    let par = parallelism(true);
    let z = product(x, View::rows(0, h), w, View::cols(0, h), (n, 2 * i, h), par)?;
    let (mut a, mut e) = (vec![T::zero(); n * i], vec![T::zero(); n * i]);
    if i > 0 {
        a.par_chunks_mut(ROWS * i)
            .zip(e.par_chunks_mut(ROWS * i))
            .zip(z.par_chunks(ROWS * 2 * i))
            .for_each(|((a, e), z)| gate_rows(i, z, a, e));
    }
    let y = product(&a, View::rows(0, i), down, View::cols(0, i), (n, o, i), par)?;
    Ok((y, [z, e, a]))
}

/// `(dx, dw, ddown)`; `s = [x, w, down, g]`, `saved = [z, e, a]`.
fn backward<T: Real>(s: [&[T]; 4], saved: [&[T]; 3], o: usize) -> Result<[Vec<T>; 3]> {
    let [x, w, down, g] = s;
    let [z, e, a] = saved;
    let i = down.len() / o.max(1);
    let h = w.len() / (2 * i).max(1);
    let n = x.len() / h.max(1);
    let par = parallelism(true);
    let (iv, ov) = (View::rows(0, i), View::rows(0, o));
    let da = product(g, ov, down, iv, (n, i, o), par)?;
    let ddown = product(g, View::cols(0, o), a, iv, (o, i, n), par)?;
    let mut dz = vec![T::zero(); n * 2 * i];
    if i > 0 {
        dz.par_chunks_mut(ROWS * 2 * i)
            .zip(da.par_chunks(ROWS * i))
            .zip(z.par_chunks(ROWS * 2 * i).zip(e.par_chunks(ROWS * i)))
            .for_each(|((dz, da), (z, e))| gate_grad_rows(i, da, z, e, dz));
    }
    let (zv, xv) = (View::rows(0, 2 * i), View::rows(0, h));
    let dx = product(&dz, zv, w, xv, (n, h, 2 * i), par)?;
    let dw = product(&dz, View::cols(0, 2 * i), x, xv, (2 * i, h, n), par)?;
    Ok([dx, dw, ddown])
}

impl CustomOp3 for MlpOp {
    fn name(&self) -> &'static str {
        "fused-swiglu-mlp"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let o = self.out_dim;
        let (y, saved) = dispatch_float!(s1.dtype(), F => {
            let x = [storage_slice(s1, l1)?, storage_slice(s2, l2)?, storage_slice(s3, l3)?];
            let (y, [z, e, a]) = forward::<F>(x[0], x[1], x[2], o)?;
            let st = F::to_cpu_storage_owned;
            (st(y), Saved { z: st(z), e: st(e), a: st(a) })
        });
        // candle runs an op's forward once; were it run again, the backward would see the
        // first forward's values (for the same inputs).
        let _ = self.saved.set(saved);
        let mut dims = l1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = o;
        }
        Ok((y, Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        down: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.get().ok_or_else(|| {
            candle_core::Error::Msg("fused swiglu_mlp: backward before forward".into())
        })?;
        let data = CpuData::new(&[x, w, down, grad])?;
        let [dx, dw, dd] = dispatch_float!(x.dtype(), F => data.with::<F, _>(|s| {
            let kept = [saved.z.as_slice::<F>()?, saved.e.as_slice::<F>()?, saved.a.as_slice::<F>()?];
            let [dx, dw, dd] = backward::<F>([s[0], s[1], s[2], s[3]], kept, self.out_dim)?;
            Ok([cpu_tensor(dx, x.dims())?, cpu_tensor(dw, w.dims())?, cpu_tensor(dd, down.dims())?])
        })?);
        Ok((Some(dx), Some(dw), Some(dd)))
    }
}
