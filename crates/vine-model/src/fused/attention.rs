//! Fused causal self-attention for the training forward: RoPE, scale, grouped-query scores,
//! the causal/left-padding mask, softmax and the weighted sum of values in one op, with a
//! written backward.
//!
//! Inputs are the projections as the linear layers produce them: `q` `(B, T, n_heads·d)`,
//! `k`/`v` `(B, T, n_kv·d)`; the output is `(B, T, n_heads·d)`, ready for `o_proj`. For every
//! row and query head the op computes, in blocks of [`QUERY_BLOCK`] queries,
//! `P = softmax_masked(rope(q)·s · rope(k)ᵀ)` and `O = P v` with one small GEMM per block that
//! only covers the keys the block can see (half the work of the full square on average). The
//! op keeps `P` `(B, heads, T, T)` for its backward (as the composed graph keeps its
//! probabilities; recomputing them would double the exponentials) and uses `δ_i = dO_i · O_i`: `dS = P ⊙ (dP − δ)`, `dq = ropeᵀ(s · dS k)`, `dk = ropeᵀ(Σ_group dSᵀ q)`,
//! `dv = Σ_group Pᵀ dO`. Rows of the batch run in parallel; each row's key/value gradients
//! are summed over its query heads in a fixed order.
//!
//! This is the formulation of [`crate::attention::Attention`] in `Mode::Train` without a
//! cache (which [`composed_attention`] spells out in candle ops); only sums are associated
//! differently.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType, D};

use super::attention_kernels::{backward, forward, Geom};
use super::rope::Tables;
use super::{cpu_tensor, dispatch_float, storage_slice, CpuData};
use crate::rope::RopeTables;

/// Head counts and the score scale of one attention layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionSpec {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Head width `d` (even).
    pub head_dim: usize,
    /// Multiplies `q` after RoPE (`1/sqrt(d)`).
    pub scale: f64,
}

/// Causal self-attention of `q` `(B, T, n_heads·d)`, `k`, `v` `(B, T, n_kv·d)` with RoPE
/// tables `(B, T, d/2)` and `left_pad[b]` padding tokens leading row `b` (empty: none) →
/// `(B, T, n_heads·d)`. Fused on the CPU in f32/f64 (see the module docs), composed elsewhere.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spec: &AttentionSpec,
    rope: &RopeTables,
    left_pad: &[usize],
) -> Result<Tensor> {
    let starts = check(q, k, v, spec, rope, left_pad)?;
    if !(super::supported(q) && q.dtype() == k.dtype() && q.dtype() == v.dtype()) {
        return composed_attention(q, k, v, spec, rope, left_pad);
    }
    let op = AttentionOp {
        spec: *spec,
        cos: rope.cos.to_dtype(q.dtype())?.contiguous()?,
        sin: rope.sin.to_dtype(q.dtype())?.contiguous()?,
        starts,
        probs: OnceLock::new(),
    };
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

/// [`attention`] in composed candle ops: per-head layout, `apply_rope`, repeated K/V, an
/// additive mask and `candle_nn::ops::softmax` (the reference the fused op is tested against).
pub fn composed_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spec: &AttentionSpec,
    rope: &RopeTables,
    left_pad: &[usize],
) -> Result<Tensor> {
    let starts = check(q, k, v, spec, rope, left_pad)?;
    let (b, t, _) = q.dims3()?;
    let (h, kv, d) = (spec.n_heads, spec.n_kv_heads, spec.head_dim);
    let heads = |x: &Tensor, n: usize| x.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous();
    let (cos, sin) = rope.full()?; // (B, 1, T, d)
    let (cos, sin) = (cos.to_dtype(q.dtype())?, sin.to_dtype(q.dtype())?);
    let q = (crate::rope::apply_rope(&heads(q, h)?, &cos, &sin)? * spec.scale)?;
    let k = crate::rope::apply_rope(&heads(k, kv)?, &cos, &sin)?;
    let k = crate::attention::repeat_kv(&k, h / kv)?; // (B, h, T, d)
    let v = crate::attention::repeat_kv(&heads(v, kv)?, h / kv)?;
    let mask = crate::cache::attention_mask(&starts, 0, t, q.device())?.to_dtype(q.dtype())?;
    let scores = q.matmul(&k.t()?)?.broadcast_add(&mask)?; // (B, h, T, T)
    let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h * d))
}

/// Validates shapes; returns the first real position of every row.
fn check(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spec: &AttentionSpec,
    rope: &RopeTables,
    left_pad: &[usize],
) -> Result<Vec<usize>> {
    let (b, t, qw) = q.dims3()?;
    let (h, kv, d) = (spec.n_heads, spec.n_kv_heads, spec.head_dim);
    if kv == 0 || h % kv != 0 || d % 2 != 0 || qw != h * d {
        candle_core::bail!("attention: q width {qw} for {h} heads / {kv} kv heads of width {d}")
    }
    for (name, x) in [("k", k), ("v", v)] {
        if x.dims() != [b, t, kv * d] {
            candle_core::bail!(
                "attention: {name} is {:?}, expected {:?}",
                x.dims(),
                [b, t, kv * d]
            )
        }
    }
    for x in [&rope.cos, &rope.sin] {
        if x.dims() != [b, t, d / 2] {
            candle_core::bail!(
                "attention: RoPE table {:?}, expected {:?}",
                x.dims(),
                [b, t, d / 2]
            )
        }
    }
    match left_pad.len() {
        0 => Ok(vec![0; b]),
        n if n == b && left_pad.iter().all(|&p| p <= t) => Ok(left_pad.to_vec()),
        _ => candle_core::bail!("attention: left_pad {left_pad:?} for {b} rows of {t}"),
    }
}

struct AttentionOp {
    spec: AttentionSpec,
    /// (B, T, d/2), the inputs' dtype.
    cos: Tensor,
    sin: Tensor,
    starts: Vec<usize>,
    /// The forward's probabilities `(B, heads, T, T)` (set once, by the forward).
    probs: OnceLock<CpuStorage>,
}

impl AttentionOp {
    fn geom(&self, t: usize) -> Geom {
        let s = &self.spec;
        Geom {
            t,
            h: s.n_heads,
            kv: s.n_kv_heads,
            d: s.head_dim,
            scale: s.scale,
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention"
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
        let (_, t, _) = l1.shape().dims3()?;
        let g = self.geom(t);
        let tables = CpuData::new(&[&self.cos, &self.sin])?;
        let (out, probs) = dispatch_float!(s1.dtype(), F => tables.with::<F, _>(|tab| {
            let tab = Tables { cos: tab[0], sin: tab[1], half: g.d / 2 };
            let x = [storage_slice(s1, l1)?, storage_slice(s2, l2)?, storage_slice(s3, l3)?];
            let (out, probs) = forward::<F>(&g, &self.starts, x, tab)?;
            Ok((F::to_cpu_storage_owned(out), F::to_cpu_storage_owned(probs)))
        })?);
        // candle runs an op's forward once; were it run again, the backward would still see
        // the first probabilities (and check their size).
        let _ = self.probs.set(probs);
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, t, _) = q.dims3()?;
        let g = self.geom(t);
        let data = CpuData::new(&[q, k, v, res, grad, &self.cos, &self.sin])?;
        let (dq, dk, dv) = dispatch_float!(q.dtype(), F => data.with::<F, _>(|s| {
            let tab = Tables { cos: s[5], sin: s[6], half: g.d / 2 };
            let probs = self.probs.get().ok_or_else(|| {
                candle_core::Error::Msg("fused attention: backward before forward".into())
            })?;
            let probs = probs.as_slice::<F>()?;
            let x = [s[0], s[1], s[2], s[3], s[4]];
            let (dq, dk, dv) = backward::<F>(&g, &self.starts, x, probs, tab)?;
            Ok((cpu_tensor(dq, q.dims())?, cpu_tensor(dk, k.dims())?, cpu_tensor(dv, v.dims())?))
        })?);
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}
