//! Branch-free per-row passes over logits and weights, written so the compiler vectorises them.
//!
//! Every sum has one fixed association (eight lanes over chunks of eight, combined pairwise,
//! then the tail in order), so results are reproducible and the reference implementation in the
//! tests can reproduce them exactly by calling the same functions.

use crate::error::{Error, Result};

const LANES: usize = 8;

/// Maximum of a logits row; rejects empty rows, NaN, +inf and rows that are all -inf.
pub(crate) fn checked_max(logits: &[f32]) -> Result<f32> {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut bad = false;
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
            bad |= unusable(x);
        }
    }
    let mut max = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for &x in tail {
        max = if x > max { x } else { max };
        bad |= unusable(x);
    }
    if bad {
        let found = logits.iter().find(|x| unusable(**x)).copied();
        return Err(Error::BadLogits(format!(
            "found {}",
            found.unwrap_or(f32::NAN)
        )));
    }
    if max == f32::NEG_INFINITY {
        return Err(Error::BadLogits(format!(
            "a row of {} logits has no finite value",
            logits.len()
        )));
    }
    Ok(max)
}

/// NaN or +inf (branch-free, so the loop calling it vectorises).
#[inline(always)]
fn unusable(x: f32) -> bool {
    x.is_nan() | (x == f32::INFINITY)
}

/// `out[i] = exp((logits[i] − max) / t)`: every exponent is `≤ 0`, whatever `t > 0` is.
pub(crate) fn weights(logits: &[f32], t: f32, max: f32, out: &mut Vec<f32>) {
    out.clear();
    out.extend(logits.iter().map(|&l| exp_nonpositive((l - max) / t)));
}

/// `e^x` for `x ≤ 0` (including -inf), relative error below 2e-7; 0 below -87 (where `e^x`
/// leaves the normal f32 range). The decode step's branch-free exp ([`vine_model::fused::exp`],
/// the same arithmetic down to −87), so a loop over it vectorises, unlike a call into libm.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    if x < -87.0 {
        0.0
    } else {
        vine_model::fused::exp(x)
    }
}

/// Σ `w[i]` over the `i` where `keep(i, w[i])`, in f64 with the fixed association of the module
/// docs.
#[inline(always)]
pub(crate) fn sum_where(w: &[f32], keep: impl Fn(u32, f32) -> bool) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = w.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        let base = (c * LANES) as u32;
        for (j, (acc, &x)) in lanes.iter_mut().zip(chunk).enumerate() {
            *acc += if keep(base + j as u32, x) {
                x as f64
            } else {
                0.0
            };
        }
    }
    let mut s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    let base = (w.len() - tail.len()) as u32;
    for (j, &x) in tail.iter().enumerate() {
        if keep(base + j as u32, x) {
            s += x as f64;
        }
    }
    s
}

/// Σ `w`; see [`sum_where`].
pub(crate) fn sum(w: &[f32]) -> f64 {
    sum_where(w, |_, _| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.00731;
        }
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(-90.0), 0.0);
    }

    #[test]
    fn sums_and_max_cover_the_tail() {
        let w: Vec<f32> = (0..19).map(|i| i as f32).collect();
        assert_eq!(sum(&w), 171.0);
        assert_eq!(sum_where(&w, |i, _| i % 2 == 1), 81.0);
        assert_eq!(checked_max(&w).unwrap(), 18.0);
        let mut v = w.clone();
        v[17] = f32::NAN;
        assert!(checked_max(&v).is_err());
    }
}
