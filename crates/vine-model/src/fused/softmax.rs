//! Causal, left-padding-aware softmax over one row of attention scores, and its backward.
//!
//! The mask is never materialised: query `i` of a row whose first real token is `start` sees
//! keys `start..=i`, and a padding query (`i < start`) sees itself only, so no row is empty —
//! the rule of [`crate::cache::attention_mask`]. The composed formulation adds
//! [`crate::cache::MASK_VALUE`] to hidden scores, whose exponentials are then exactly 0; here
//! hidden entries are set to 0 and never exponentiated. Visible entries go through the same
//! `exp(x − max) / Σ` as `candle_nn::ops::softmax`.

use std::ops::Range;

#[cfg(test)]
use super::dot;
use super::simd::{self, multiversion};

/// The keys query `i` sees in a row whose first real token is `start`.
pub(crate) fn visible(i: usize, start: usize) -> Range<usize> {
    if i < start {
        i..i + 1
    } else {
        start..i + 1
    }
}

/// The first key any of the queries `rows` sees.
pub(crate) fn first_visible(rows: &Range<usize>, start: usize) -> usize {
    rows.start.min(start)
}

multiversion! {
    /// In place: `row` holds the scores of keys `lo..lo + row.len()`; afterwards it holds the
    /// probabilities over `vis` (a subrange) and 0 elsewhere.
    pub(crate) fn softmax_row<T: Real>(row: &mut [T], lo: usize, vis: Range<usize>) {
        let (a, b) = (vis.start - lo, vis.end - lo);
        let m = simd::max(&row[a..b]);
        for x in &mut row[a..b] {
            *x = (*x - m).exp();
        }
        let total = simd::sum(&row[a..b]);
        for x in &mut row[a..b] {
            *x /= total;
        }
        row[..a].iter_mut().for_each(|x| *x = T::zero());
        row[b..].iter_mut().for_each(|x| *x = T::zero());
    }
}

multiversion! {
    /// In place: `dp` (the gradient of the probabilities `p`) becomes the gradient of the
    /// scores, `p ⊙ (dp − δ)` with `δ = Σ_j p_j dp_j`, passed in as `delta` (it equals
    /// `dO · O`).
    pub(crate) fn softmax_grad_row<T: Real>(p: &[T], dp: &mut [T], delta: T) {
        for (g, &p) in dp.iter_mut().zip(p) {
            *g = p * (*g - delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_rows_sum_to_one_over_their_visible_keys() {
        // Keys 2..7 of a row whose first real token is 3: query 5 sees 3..=5.
        let mut row = vec![0.5f64, 9.0, 1.0, -2.0, 4.0];
        softmax_row(&mut row, 2, visible(5, 3));
        assert_eq!(row[0], 0.0);
        assert_eq!(row[4], 0.0);
        let e = [9.0f64.exp(), 1.0f64.exp(), (-2.0f64).exp()];
        let z: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((row[1 + k] - e[k] / z).abs() < 1e-15);
        }
        // A padding query sees only itself.
        let mut pad = vec![3.0f64, -1.0, 2.0];
        softmax_row(&mut pad, 0, visible(1, 2));
        assert_eq!(pad, vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn grad_is_orthogonal_to_the_constant_shift() {
        // softmax is invariant to adding a constant to every visible score, so the score
        // gradient sums to zero.
        let mut p = vec![0.3f64, -0.2, 1.1, 0.7];
        softmax_row(&mut p, 0, 0..4);
        let mut dp = vec![0.5f64, -1.0, 2.0, 0.25];
        let delta = dot(&p, &dp);
        softmax_grad_row(&p, &mut dp, delta);
        assert!(dp.iter().sum::<f64>().abs() < 1e-15);
        let long: Vec<f64> = (0..21).map(|i| i as f64).collect();
        assert_eq!(
            dot(&long, &long),
            (0..21).map(|i| (i * i) as f64).sum::<f64>()
        );
    }
}
