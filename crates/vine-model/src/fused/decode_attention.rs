//! The decode step's attention: one new query per head over the row's cached positions,
//! `out (d) = softmax(K q) · V` with `K`, `V` `(s × d)` and `q` already scaled.
//!
//! The arithmetic is light (two FMAs per cached element); the cost is reading the cache, some
//! 30 MB per step at batch 32, which does not fit any cache level, so the kernels are written
//! for memory bandwidth. [`attend`] takes `H` heads of a row at once and walks their keys, then
//! their values, as `H` concurrent streams: one sequential stream per thread drew ~25 GB/s from
//! this machine's memory, two or more ~29. Each head's arithmetic, and so its result, is the
//! same whatever `H`: scores as 16 lanes summed pairwise, softmax, then the weighted sum of
//! values accumulated position by position.

use super::fast_exp::softmax_in_place;
use super::simd::dot;

/// Attention of `H` query heads of one row: `out[h] = softmax(k[h] q[h]) · v[h]`, `k[h]`,
/// `v[h]` `(s × d)` row-major, every `q[h]` (`d`) already scaled; `scores` is scratch space.
/// Heads sharing a key/value head (GQA) may pass the same `k`, `v`.
pub(crate) fn attend<const H: usize>(
    q: [&[f32]; H],
    k: [&[f32]; H],
    v: [&[f32]; H],
    scores: &mut Vec<f32>,
    out: [&mut [f32]; H],
) {
    let d = q.first().map_or(0, |q| q.len());
    let s = k.first().map_or(0, |k| k.len() / d.max(1));
    assert!(
        (0..H).all(|h| q[h].len() == d && k[h].len() >= s * d && v[h].len() >= s * d),
        "attention: heads of different shapes"
    );
    scores.clear();
    scores.resize(H * s, 0.0);
    #[cfg(target_arch = "x86_64")]
    if d % 8 == 0 {
        use super::skinny::{x86_level, X86};
        // SAFETY: the features each copy is compiled with are present; the sizes were checked.
        match x86_level() {
            X86::Avx512Vl => return unsafe { attend_avx512vl(q, k, v, scores, out, s) },
            X86::Avx2 => return unsafe { attend_avx2(q, k, v, scores, out, s) },
            X86::Baseline => {}
        }
    }
    for h in 0..H {
        let sc = &mut scores[h * s..][..s];
        for (p, sc) in sc.iter_mut().enumerate() {
            *sc = dot(q[h], &k[h][p * d..][..d]);
        }
        softmax_in_place(sc);
        out[h].fill(0.0);
        for (p, &w) in sc.iter().enumerate() {
            for (o, &x) in out[h].iter_mut().zip(&v[h][p * d..][..d]) {
                *o += w * x;
            }
        }
    }
}

/// Defines `$name::<H>`, [`kernel`] compiled with `$features` and `$regs` vector registers.
macro_rules! kernel_with {
    ($(#[$doc:meta])* $name:ident, $features:literal, $regs:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must have the features; `d` (the length of every `q[h]`) is a multiple of 8
        /// and `k[h]`, `v[h]` hold `s·d` elements.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const H: usize>(
            q: [&[f32]; H],
            k: [&[f32]; H],
            v: [&[f32]; H],
            scores: &mut [f32],
            out: [&mut [f32]; H],
            s: usize,
        ) {
            kernel::<H>(q, k, v, scores, out, s, $regs)
        }
    };
}

kernel_with!(
    /// [`kernel`] with AVX2 and FMA (16 registers).
    attend_avx2,
    "avx2,fma",
    16
);
kernel_with!(
    /// [`kernel`] with AVX-512VL too, whose 32 registers hold twice the value accumulators.
    attend_avx512vl,
    "avx2,fma,avx512f,avx512vl",
    32
);

/// [`attend`] with 8-wide FMAs; inlined into the `kernel_with!` copies. Value columns go in
/// blocks of up to 64 floats per pass, as many as keep `H` heads' sums in half the `regs`
/// registers.
///
/// # Safety
/// As the copies.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel<const H: usize>(
    q: [&[f32]; H],
    k: [&[f32]; H],
    v: [&[f32]; H],
    scores: &mut [f32],
    out: [&mut [f32]; H],
    s: usize,
    regs: usize,
) {
    use super::skinny::hsum;
    use std::arch::x86_64::*;
    let d = q[0].len();
    for p in 0..s {
        for h in 0..H {
            let (qp, row) = (q[h].as_ptr(), k[h].as_ptr().add(p * d));
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
            scores[h * s + p] = hsum(_mm256_add_ps(a0, a1));
        }
    }
    for h in 0..H {
        softmax_in_place(&mut scores[h * s..][..s]);
    }
    // Up to 8 accumulators (64 columns) per head, within half the registers.
    let per_head = (regs / 2 / H).clamp(1, 8);
    let mut c = 0;
    while c < d {
        let vecs = ((d - c) / 8).min(per_head);
        let mut acc = [[_mm256_setzero_ps(); 8]; H];
        for p in 0..s {
            for h in 0..H {
                let wv = _mm256_set1_ps(scores[h * s + p]);
                let row = v[h].as_ptr().add(p * d + c);
                for (j, a) in acc[h].iter_mut().enumerate().take(vecs) {
                    *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row.add(j * 8)), *a);
                }
            }
        }
        for h in 0..H {
            for (j, a) in acc[h].iter().enumerate().take(vecs) {
                _mm256_storeu_ps(out[h].as_mut_ptr().add(c + j * 8), *a);
            }
        }
        c += vecs * 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `softmax(k q) · v` in f64, the plain way.
    fn naive(q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
        let d = q.len();
        let s = k.len() / d;
        let raw: Vec<f64> = (0..s)
            .map(|p| (0..d).map(|i| q[i] as f64 * k[p * d + i] as f64).sum())
            .collect();
        let max = raw.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        let e: Vec<f64> = raw.iter().map(|x| (x - max).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..d)
            .map(|i| (0..s).map(|p| e[p] / z * v[p * d + i] as f64).sum())
            .collect()
    }

    fn data(n: usize, mul: usize, modulo: usize, shift: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * mul) % modulo) as f32 * 0.1 - shift)
            .collect()
    }

    #[test]
    fn heads_match_the_plain_formula_and_each_other() {
        // Sums in another order than f64's: 1e-6 on outputs of size ~1. Two heads at once
        // must give each head exactly what it gets alone.
        for (s, d) in [(1, 8), (5, 64), (37, 128), (9, 24), (3, 6), (130, 64)] {
            let q0 = data(d, 3, 7, 0.3);
            let q1 = data(d, 5, 9, 0.4);
            let (k0, k1) = (data(s * d, 5, 11, 0.5), data(s * d, 7, 5, 0.2));
            let (v0, v1) = (data(s * d, 7, 13, 0.6), data(s * d, 3, 17, 0.8));
            let mut alone = [vec![f32::NAN; d], vec![f32::NAN; d]];
            let mut scratch = Vec::new();
            for (h, (q, k, v)) in [(&q0, &k0, &v0), (&q1, &k1, &v1)].into_iter().enumerate() {
                attend::<1>([q], [k], [v], &mut scratch, [&mut alone[h]]);
                for (i, want) in naive(q, k, v).into_iter().enumerate() {
                    let got = alone[h][i] as f64;
                    assert!(
                        (got - want).abs() < 1e-6,
                        "s {s} d {d} [{i}]: {got} vs {want}"
                    );
                }
            }
            let (mut o0, mut o1) = (vec![f32::NAN; d], vec![f32::NAN; d]);
            attend::<2>(
                [&q0, &q1],
                [&k0, &k1],
                [&v0, &v1],
                &mut scratch,
                [&mut o0, &mut o1],
            );
            assert_eq!(o0, alone[0], "s {s} d {d}");
            assert_eq!(o1, alone[1], "s {s} d {d}");
        }
    }
}
