//! The fused decode step's building blocks: GEMMs over Hugging Face weights, RoPE, RMSNorm
//! and attention over the cache, on plain row-major `f32` buffers.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::fused::{self, CpuData};
use crate::layers::Linear;

/// `yᵢ (m × nᵢ) = x (m × k) · Wᵢᵀ + bᵢ` for Hugging Face `(nᵢ, k)` weights sharing the input
/// `x` (one parallel region for all of them).
pub(super) fn project<const N: usize>(
    x: &[f32],
    m: usize,
    maps: [&Linear; N],
) -> Result<[Vec<f32>; N]> {
    let k = maps.first().map_or(Ok(0), |l| l.weight.dim(1))?;
    let mut ys: [Vec<f32>; N] = std::array::from_fn(|_| Vec::new());
    for (y, l) in ys.iter_mut().zip(&maps) {
        *y = vec![0.0f32; m * l.weight.dim(0)?];
    }
    let weights: Vec<&Tensor> = maps.iter().map(|l| &l.weight).collect();
    CpuData::new(&weights)?.with::<f32, _>(|ws| {
        let mut jobs: Vec<_> = ws
            .iter()
            .zip(ys.iter_mut())
            .zip(&maps)
            .map(|((w, y), l)| (*w, l.weight.dims()[0], y.as_mut_slice()))
            .collect();
        fused::matmul_wt_many(x, m, k, &mut jobs);
        Ok(())
    })?;
    for (y, l) in ys.iter_mut().zip(&maps) {
        if let Some(b) = &l.bias {
            CpuData::new(&[b])?.with::<f32, _>(|b| {
                for row in y.chunks_exact_mut(b[0].len()) {
                    add_assign(row, b[0]);
                }
                Ok(())
            })?;
        }
    }
    Ok(ys)
}

/// `x += y`, element-wise.
pub(super) fn add_assign(x: &mut [f32], y: &[f32]) {
    for (x, &y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

/// Rotates every head of `x` `(B, heads·d)` in place: `x' = x·cos + rotate_half(x)·sin` with the
/// row's half-width tables `cos`, `sin` `(B, d/2)`.
pub(super) fn rope(x: &mut [f32], heads: usize, d: usize, cos: &[f32], sin: &[f32]) {
    let half = d / 2;
    for (b, row) in x.chunks_exact_mut(heads * d).enumerate() {
        let (c, s) = (&cos[b * half..][..half], &sin[b * half..][..half]);
        for head in row.chunks_exact_mut(d) {
            let (x1, x2) = head.split_at_mut(half);
            for i in 0..half {
                let (a, b) = (x1[i], x2[i]);
                x1[i] = a * c[i] - b * s[i];
                x2[i] = b * c[i] + a * s[i];
            }
        }
    }
}

/// The shapes one attention call needs.
#[derive(Clone, Copy)]
pub(super) struct Heads {
    pub n_heads: usize,
    pub n_kv: usize,
    pub d: usize,
    /// Physical positions per cached row (the buffers' third dim).
    pub cap: usize,
    /// Physical length after this step's append.
    pub end: usize,
    /// Cache row of the first query row.
    pub row0: usize,
}

/// `softmax(q Kᵀ) V` for one new query per row over the row's valid cached positions
/// `starts[b]..end`. `q` `(r, n_heads·d)` (cache rows `row0..row0 + r`) already scaled; `k`,
/// `v` `(B, n_kv, cap, d)`; `starts` of the `r` rows; returns `(r, n_heads·d)`. Rows run in parallel, heads two at a time (their keys and values
/// stream from memory together).
pub(super) fn attend(q: &[f32], k: &[f32], v: &[f32], starts: &[usize], s: Heads) -> Vec<f32> {
    let (d, groups) = (s.d, s.n_heads / s.n_kv);
    let mut out = vec![0.0f32; q.len()];
    out.par_chunks_mut(s.n_heads * d)
        .zip(q.par_chunks(s.n_heads * d))
        .enumerate()
        .for_each_init(Vec::new, |scores, (b, (out, q))| {
            let first = starts[b];
            // This row's keys and values of query head `h`'s kv head at `first..end`: (S, d).
            let kv = |h: usize| {
                let base = ((s.row0 + b) * s.n_kv + h / groups) * s.cap * d;
                let range = base + first * d..base + s.end * d;
                (&k[range.clone()], &v[range])
            };
            let mut heads = out.chunks_exact_mut(d).zip(q.chunks_exact(d)).enumerate();
            while let Some((h, (o0, q0))) = heads.next() {
                let (k0, v0) = kv(h);
                match heads.next() {
                    Some((_, (o1, q1))) => {
                        let (k1, v1) = kv(h + 1);
                        fused::attend::<2>([q0, q1], [k0, k1], [v0, v1], scores, [o0, o1]);
                    }
                    None => fused::attend::<1>([q0], [k0], [v0], scores, [o0]),
                }
            }
        });
    out
}

/// RMSNorm of every row of `x` `(B, H)` with weight `w` `(H)`.
pub(super) fn rms_norm(x: &[f32], w: &Tensor, eps: f64) -> Result<Vec<f32>> {
    CpuData::new(&[w])?.with::<f32, _>(|w| Ok(fused::rms_norm_rows(x, w[0], eps)))
}
