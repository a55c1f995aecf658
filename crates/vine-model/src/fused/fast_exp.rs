//! A vectorisable `exp` for the decode step's element-wise work: SwiGLU's `exp(−gate)` and the
//! attention softmax.
//!
//! libm's `expf` is a call per element and never vectorises; in a decode step at batch 32 the
//! MLP's 88 K exponentials took longer than the down projection's GEMM. [`exp`] is the classic
//! Cody–Waite reduction `x = n·ln 2 + r` with a degree-6 polynomial for `exp(r)`, written
//! without branches so loops over it compile to 8-wide code; its relative error is below 2e-7
//! (libm's is about 6e-8), far inside the 1e-5 the fused step is held to against the composed
//! one. The training kernels keep libm: their results are compared op for op with candle's.

use rayon::prelude::*;

/// The argument range computed: `e^x` is a normal f32 from `LO` (where f32 turns subnormal) up to
/// beyond `HI` (2^127 · e^r stays below f32::MAX).
const HI: f32 = 88.0;
const LO: f32 = -87.33;

/// `e^x` to within 2e-7 relative for `x` in `[−87.33, 88]`; `0` below (where `e^x` is
/// subnormal) and `+∞` above (where the true value, up to 3.4e38, would still be finite: no
/// use here comes near it). NaN in, NaN out. Also the rollout sampler's exponential.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let xc = if x < LO { LO } else { x };
    let xc = if xc > HI { HI } else { xc };
    let shifted = xc * std::f32::consts::LOG2_E + ROUND; // low mantissa bits: round(x·log2 e)
    let n = shifted - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO; // |r| ≤ ln(2)/2
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n, n in [−126, 127], built from the integer held in `shifted`'s bits: no float-to-int
    // conversion, which would not vectorise.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    let y = e * f32::from_bits(biased << 23);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// Elements per parallel task of [`silu_mul`].
const CHUNK: usize = 4096;

/// `silu(a) · b = a / (1 + e^(−a)) · b`, element-wise, chunks in parallel.
pub(crate) fn silu_mul(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; a.len()];
    y.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(y, (a, b))| silu_mul_chunk(a, b, y));
    y
}

/// `x ← softmax(x)`: `e^(x − max) / Σ`.
pub(crate) fn softmax_in_place(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum = exp_shifted(x, max);
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Defines `$name`, dispatching to a copy of `$body` compiled with AVX2 and FMA where the CPU
/// has them (the arithmetic is the same: Rust contracts nothing into FMAs by itself).
macro_rules! with_avx2 {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                if super::simd::has_avx2() && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA, the features `avx2` is compiled with.
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}

with_avx2! {
    /// `y = a / (1 + e^(−a)) · b` on one chunk.
    fn silu_mul_chunk(a: &[f32], b: &[f32], y: &mut [f32]) {
        for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
            *y = a / (1.0 + exp(-a)) * b;
        }
    }
}

with_avx2! {
    /// `x ← e^(x − max)`, returning the sum (eight interleaved partial sums).
    fn exp_shifted(x: &mut [f32], max: f32) -> f32 {
        let mut acc = [0.0f32; 8];
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            for (v, a) in c.iter_mut().zip(acc.iter_mut()) {
                *v = exp(*v - max);
                *a += *v;
            }
        }
        let mut s = 0.0f32;
        for v in chunks.into_remainder() {
            *v = exp(*v - max);
            s += *v;
        }
        acc.iter().fold(s, |s, &a| s + a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_over_the_whole_range() {
        let mut worst = 0.0f64;
        let mut x = LO;
        while x <= HI {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn silu_mul_and_softmax_match_the_formulas() {
        // 1e-6 relative: the exponentials' error plus a division's rounding.
        let a: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5000.0) * 0.0213).collect();
        let b: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7) % 13) as f32 * 0.25 - 1.5)
            .collect();
        let y = silu_mul(&a, &b);
        for i in 0..a.len() {
            let want = (a[i] as f64) / (1.0 + (-(a[i] as f64)).exp()) * b[i] as f64;
            assert!(
                (y[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1e-30),
                "[{i}] {} vs {want}",
                y[i]
            );
        }
        let mut s: Vec<f32> = (0..37).map(|i| ((i * 5) % 11) as f32 * 0.7 - 3.0).collect();
        let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let z: f64 = s.iter().map(|&v| (v as f64 - max).exp()).sum();
        let want: Vec<f64> = s.iter().map(|&v| (v as f64 - max).exp() / z).collect();
        softmax_in_place(&mut s);
        for (g, w) in s.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-6 * w, "{g} vs {w}");
        }
    }
}
