//! `y = x Wᵀ` for a few rows of `x`: the decode step's products.
//!
//! A decode step multiplies 1–256 activation rows by every weight of the model. A general GEMM
//! packs both operands into cache-blocked panels first; with few rows that packing is a copy
//! of every weight on every step, as costly as the arithmetic. Here both `x` `(m × k)` and a
//! Hugging Face weight `W` `(n × k)` are read where they lie, row-major with `k` contiguous:
//! each output is a dot product, computed in register tiles of [`MI`] rows of `x` × [`NJ`] rows
//! of `W` with 8-wide FMAs (AVX2 + FMA, detected at run time; a portable loop otherwise), and
//! the columns of `y` are split between threads. Every weight row is read once per tile of
//! rows while it is in L1.

use rayon::prelude::*;

use super::simd::dot;

/// Rows of `x` per register tile.
const MI: usize = 4;
/// Rows of `W` per register tile.
const NJ: usize = 3;
/// Columns of `y` per parallel task (a multiple of [`NJ`]).
const COLS_PER_TASK: usize = 96;

/// A pointer that parallel tasks share to write disjoint elements.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: tasks write disjoint column ranges of `y` (see `matmul_wt`), and `y` outlives them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `y (m × n) = x (m × k) · wᵀ` with `w` `(n × k)`, all row-major; `y` is overwritten.
/// Threads: rayon's pool, whose size candle's thread count also follows.
#[cfg(test)]
pub(crate) fn matmul_wt(x: &[f32], w: &[f32], y: &mut [f32], m: usize, n: usize, k: usize) {
    matmul_wt_many(x, m, k, &mut [(w, n, y)]);
}

/// `yᵢ (m × nᵢ) = x (m × k) · wᵢᵀ` for several weights sharing one input (a layer's q/k/v or
/// gate/up projections), as one parallel region.
pub(crate) fn matmul_wt_many(
    x: &[f32],
    m: usize,
    k: usize,
    jobs: &mut [(&[f32], usize, &mut [f32])],
) {
    assert!(x.len() >= m * k, "skinny gemm: input too short");
    let mut tasks = Vec::new();
    let mut work = 0;
    for (i, (w, n, y)) in jobs.iter().enumerate() {
        assert!(w.len() >= n * k && y.len() >= m * n, "skinny gemm sizes");
        work += m * n * k;
        for t in 0..n.div_ceil(COLS_PER_TASK) {
            tasks.push((i, t * COLS_PER_TASK, ((t + 1) * COLS_PER_TASK).min(*n)));
        }
    }
    let outs: Vec<(&[f32], usize, Out)> = jobs
        .iter_mut()
        .map(|(w, n, y)| (*w, *n, Out(y.as_mut_ptr())))
        .collect();
    let run = |&(i, j0, j1): &(usize, usize, usize)| {
        let (w, n, out) = outs[i];
        // SAFETY: sizes were checked above; each task writes only columns `j0..j1` of its `y`.
        unsafe { columns(x, w, out, m, n, k, j0, j1) }
    };
    if tasks.len() > 1 && work >= 1 << 16 {
        tasks.par_iter().for_each(run);
    } else {
        tasks.iter().for_each(run);
    }
}

/// Columns `j0..j1` of `y`.
///
/// # Safety
/// `x`, `w` and `out` must hold `m·k`, `n·k` and `m·n` elements; no other thread may write
/// columns `j0..j1` of `out` meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn columns(
    x: &[f32],
    w: &[f32],
    out: Out,
    m: usize,
    n: usize,
    k: usize,
    j0: usize,
    j1: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        let mut j = j0;
        while j + NJ <= j1 {
            let mut i = 0;
            while i + MI <= m {
                tile_avx2::<MI, NJ>(x, w, out, n, k, i, j);
                i += MI;
            }
            while i < m {
                tile_avx2::<1, NJ>(x, w, out, n, k, i, j);
                i += 1;
            }
            j += NJ;
        }
        for j in j..j1 {
            for i in 0..m {
                tile_avx2::<1, 1>(x, w, out, n, k, i, j);
            }
        }
        return;
    }
    for j in j0..j1 {
        let wj = &w[j * k..][..k];
        for i in 0..m {
            *out.0.add(i * n + j) = dot(&x[i * k..][..k], wj);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `y[i..i+R, j..j+C]` from `R` rows of `x` and `C` rows of `w`, 8 lanes at a time.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the rows must exist (see [`columns`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize, const C: usize>(
    x: &[f32],
    w: &[f32],
    out: Out,
    n: usize,
    k: usize,
    i: usize,
    j: usize,
) {
    use std::arch::x86_64::*;
    let xp = x.as_ptr().add(i * k);
    let wp = w.as_ptr().add(j * k);
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let k8 = k - k % 8;
    let mut p = 0;
    while p < k8 {
        let mut wv = [_mm256_setzero_ps(); C];
        for (c, wv) in wv.iter_mut().enumerate() {
            *wv = _mm256_loadu_ps(wp.add(c * k + p));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let xv = _mm256_loadu_ps(xp.add(r * k + p));
            for (a, &wv) in acc.iter_mut().zip(&wv) {
                *a = _mm256_fmadd_ps(xv, wv, *a);
            }
        }
        p += 8;
    }
    for (r, acc) in acc.iter().enumerate() {
        for (c, &a) in acc.iter().enumerate() {
            let mut v = hsum(a);
            for q in k8..k {
                v += *xp.add(r * k + q) * *wp.add(c * k + q);
            }
            *out.0.add((i + r) * n + j + c) = v;
        }
    }
}

/// One query head's attention over `s` cached positions: `out (d) = softmax(k q) · v` with `k`,
/// `v` `(s × d)` row-major and `q` already scaled; `scores` is scratch space.
pub(crate) fn attend_one(q: &[f32], k: &[f32], v: &[f32], scores: &mut Vec<f32>, out: &mut [f32]) {
    let d = q.len();
    let s = k.len() / d.max(1);
    scores.clear();
    scores.resize(s, 0.0);
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() && d % 8 == 0 {
        // SAFETY: AVX2 and FMA are present; `k`, `v` hold `s·d` elements, `out` and `q` `d`.
        unsafe { attend_one_avx2(q, k, v, scores, out) };
        return;
    }
    for (p, sc) in scores.iter_mut().enumerate() {
        *sc = dot(q, &k[p * d..][..d]);
    }
    let weights = softmax_in_place(scores);
    out.fill(0.0);
    for (p, &w) in weights.iter().enumerate() {
        for (o, &x) in out.iter_mut().zip(&v[p * d..][..d]) {
            *o += w * x;
        }
    }
}

/// `x ← exp(x − max) / Σ`, returning `x`.
fn softmax_in_place(x: &mut [f32]) -> &mut [f32] {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
    x
}

/// [`attend_one`] with 8-wide FMAs; `d` is a multiple of 8.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `k`, `v` hold `scores.len() · d` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_one_avx2(q: &[f32], k: &[f32], v: &[f32], scores: &mut [f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let d = q.len();
    let (qp, kp, vp) = (q.as_ptr(), k.as_ptr(), v.as_ptr());
    for (p, sc) in scores.iter_mut().enumerate() {
        let row = kp.add(p * d);
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= d {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(i)), _mm256_loadu_ps(row.add(i)), a0);
            a1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(qp.add(i + 8)),
                _mm256_loadu_ps(row.add(i + 8)),
                a1,
            );
            i += 16;
        }
        if i < d {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(i)), _mm256_loadu_ps(row.add(i)), a0);
        }
        *sc = hsum(_mm256_add_ps(a0, a1));
    }
    softmax_in_place(scores);
    // Columns in blocks of 64 (8 accumulators) so the sums stay in registers.
    let mut c = 0;
    while c < d {
        let width = (d - c).min(64);
        let mut acc = [_mm256_setzero_ps(); 8];
        for (p, &w) in scores.iter().enumerate() {
            let wv = _mm256_set1_ps(w);
            let row = vp.add(p * d + c);
            for (j, a) in acc.iter_mut().enumerate().take(width / 8) {
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row.add(j * 8)), *a);
            }
        }
        for (j, a) in acc.iter().enumerate().take(width / 8) {
            _mm256_storeu_ps(out.as_mut_ptr().add(c + j * 8), *a);
        }
        c += width;
    }
}

/// The sum of the 8 lanes of `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(a: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_head_attention_matches_the_plain_formula() {
        // Sums of products in a different order: 1e-6 relative on outputs of size ~1.
        for (s, d) in [(1, 8), (5, 64), (37, 128), (9, 24), (3, 6)] {
            let q: Vec<f32> = (0..d).map(|i| ((i * 3) % 7) as f32 * 0.1 - 0.3).collect();
            let k: Vec<f32> = (0..s * d)
                .map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5)
                .collect();
            let v: Vec<f32> = (0..s * d)
                .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
                .collect();
            let raw: Vec<f32> = (0..s)
                .map(|p| (0..d).map(|i| q[i] * k[p * d + i]).sum())
                .collect();
            let max = raw.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let e: Vec<f32> = raw.iter().map(|x| (x - max).exp()).collect();
            let z: f32 = e.iter().sum();
            let mut out = vec![f32::NAN; d];
            attend_one(&q, &k, &v, &mut Vec::new(), &mut out);
            for i in 0..d {
                let want: f32 = (0..s).map(|p| e[p] / z * v[p * d + i]).sum();
                assert!(
                    (out[i] - want).abs() < 1e-6,
                    "s {s} d {d} [{i}]: {} vs {want}",
                    out[i]
                );
            }
        }
    }

    #[test]
    fn matches_the_naive_product_on_ragged_shapes() {
        // Products of small integers are exact in f32 whatever the summation order.
        for (m, n, k) in [
            (1, 1, 1),
            (5, 7, 13),
            (4, 3, 8),
            (33, 200, 67),
            (64, 97, 256),
        ] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 9) as f32 - 4.0).collect();
            let mut y = vec![f32::NAN; m * n];
            matmul_wt(&x, &w, &mut y, m, n, k);
            for i in 0..m {
                for j in 0..n {
                    let naive: f32 = (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum();
                    assert_eq!(y[i * n + j], naive, "({m},{n},{k}) at ({i},{j})");
                }
            }
        }
    }
}
