//! Masked statistics and advantage normalisation, on tensors and on per-episode slices.
//!
//! Whitening (spec 1.7, the reference's `masked_whiten(..., unbiased_variance=True)`):
//!
//! ```text
//! μ  = Σ m·A / Σ m                              token-weighted mean over valid tokens
//! σ² = Σ m·(A − μ)² / Σ m · N/(N − 1),  N = Σ m   unbiased variance
//! Â  = (A − μ) / sqrt(σ² + 1e-8)                 [+ μ with AdvantageNorm::WhitenKeepMean]
//! ```
//!
//! The reference whitens the advantages of every minibatch on its own, just before the loss,
//! and keeps the mean subtracted (`shift_mean=True`); that is [`AdvantageNorm::Whiten`].
//! `WhitenKeepMean` is its `shift_mean=False` (used there for reward whitening) and `ScaleOnly`
//! its "grayen" option (divide by σ only).
//!
//! Deviations: fewer than two valid tokens give σ² = 0 instead of a division by zero (the
//! reference raises or returns NaN), an empty mask gives μ = 0, and whitened tensors are 0 at
//! masked positions (the reference leaves `−μ/σ` there, which the loss masks anyway).

use candle_core::{Result as CResult, Tensor};
use serde::Deserialize;

/// The ε under the square root of whitening, as in the reference.
pub const WHITEN_EPS: f64 = 1e-8;

/// How advantages are normalised over a minibatch. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageNorm {
    /// Leave advantages as they are.
    Off,
    /// `(A − μ) / σ`: the reference's setting.
    #[default]
    Whiten,
    /// `(A − μ) / σ + μ`.
    WhitenKeepMean,
    /// `A / σ`.
    ScaleOnly,
}

/// Mean of a slice, accumulated in f64; 0 for an empty slice.
pub fn mean(xs: &[f32]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
}

/// Variance of a slice around `mean`; with `unbiased` divides by `N − 1`. 0 when `N < 2`.
pub fn var(xs: &[f32], mean: f64, unbiased: bool) -> f64 {
    let n = xs.len();
    if n < 2 {
        return 0.0;
    }
    let ss: f64 = xs.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum();
    ss / if unbiased { (n - 1) as f64 } else { n as f64 }
}

/// Normalises per-episode token values (e.g. advantages) jointly over all their entries, every
/// entry being one valid token. Use it on the episodes of one minibatch before collation.
pub fn normalize(rows: &[Vec<f32>], norm: AdvantageNorm) -> Vec<Vec<f32>> {
    if norm == AdvantageNorm::Off {
        return rows.to_vec();
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let mu = mean(&flat);
    let inv = 1.0 / (var(&flat, mu, true) + WHITEN_EPS).sqrt();
    let f = |x: f32| -> f32 {
        let x = f64::from(x);
        let y = match norm {
            AdvantageNorm::Off => x,
            AdvantageNorm::Whiten => (x - mu) * inv,
            AdvantageNorm::WhitenKeepMean => (x - mu) * inv + mu,
            AdvantageNorm::ScaleOnly => x * inv,
        };
        y as f32
    };
    rows.iter()
        .map(|r| r.iter().map(|&x| f(x)).collect())
        .collect()
}

/// `values` where `mask` (0/1 float, same shape) is set, 0 elsewhere. Unlike `values * mask`,
/// non-finite values at masked positions do not leak (`inf · 0 = NaN`), forward or backward.
pub fn masked(values: &Tensor, mask: &Tensor) -> CResult<Tensor> {
    let keep = mask.gt(0.5)?;
    keep.where_cond(values, &values.zeros_like()?)
}

/// Number of valid positions, `Σ mask`, as a scalar tensor.
pub fn mask_count(mask: &Tensor) -> CResult<Tensor> {
    mask.sum_all()
}

/// Masked mean over all positions, a scalar tensor; 0 when the mask is empty.
pub fn masked_mean(values: &Tensor, mask: &Tensor) -> CResult<Tensor> {
    let count = mask_count(mask)?.maximum(1.0)?;
    masked(values, mask)?.sum_all()?.div(&count)
}

/// Masked variance over all positions, a scalar tensor; with `unbiased` multiplied by
/// `N / (N − 1)`. 0 when fewer than two positions are valid.
pub fn masked_var(values: &Tensor, mask: &Tensor, unbiased: bool) -> CResult<Tensor> {
    let mu = masked_mean(values, mask)?;
    let centered = values.broadcast_sub(&mu)?;
    let n = mask_count(mask)?;
    let ss = masked(&centered.sqr()?, mask)?.sum_all()?;
    let denom = if unbiased { (&n - 1.0)? } else { n };
    // N < 2: the sum of squares is 0, so clamping the denominator to 1 gives 0.
    ss.div(&denom.maximum(1.0)?)
}

/// Normalises `values` over the valid positions of `mask` (any shape, typically `(B, T)`); the
/// result is 0 at masked positions. The statistics are detached from the graph.
pub fn masked_whiten(values: &Tensor, mask: &Tensor, norm: AdvantageNorm) -> CResult<Tensor> {
    if norm == AdvantageNorm::Off {
        return masked(values, mask);
    }
    let v = values.detach();
    let mu = masked_mean(&v, mask)?;
    let inv = (masked_var(&v, mask, true)? + WHITEN_EPS)?
        .sqrt()?
        .recip()?;
    let out = match norm {
        AdvantageNorm::Off => values.clone(),
        AdvantageNorm::Whiten => values.broadcast_sub(&mu)?.broadcast_mul(&inv)?,
        AdvantageNorm::WhitenKeepMean => values
            .broadcast_sub(&mu)?
            .broadcast_mul(&inv)?
            .broadcast_add(&mu)?,
        AdvantageNorm::ScaleOnly => values.broadcast_mul(&inv)?,
    };
    masked(&out, mask)
}

/// Summary statistics of a list of numbers, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Mean (0 when empty).
    pub mean: f64,
    /// Population standard deviation (÷ N, numpy's default; 0 when empty).
    pub std: f64,
    /// Minimum (0 when empty).
    pub min: f64,
    /// Maximum (0 when empty).
    pub max: f64,
}

impl Summary {
    /// Summarises `xs`.
    pub fn of(xs: &[f32]) -> Self {
        if xs.is_empty() {
            return Self::default();
        }
        let mu = mean(xs);
        let (min, max) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(f64::from(x)), hi.max(f64::from(x)))
            });
        Self {
            count: xs.len(),
            mean: mu,
            std: var(xs, mu, false).sqrt(),
            min,
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn tensor_and_slice_whitening_agree() {
        let rows = vec![vec![1.0f32, 2.0, 4.0], vec![-1.0, 0.5]];
        let w = normalize(&rows, AdvantageNorm::Whiten);
        let vals = Tensor::new(&[[1.0f32, 2.0, 4.0], [-1.0, 0.5, 77.0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &Device::Cpu).unwrap();
        let t = masked_whiten(&vals, &mask, AdvantageNorm::Whiten)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (a, b) in w.iter().flatten().zip(t[0].iter().chain(&t[1][..2])) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(t[1][2], 0.0);
    }

    #[test]
    fn degenerate_inputs_stay_finite() {
        let one = normalize(&[vec![3.0]], AdvantageNorm::Whiten);
        assert_eq!(one, vec![vec![0.0]]);
        let empty: Vec<Vec<f32>> = normalize(&[vec![]], AdvantageNorm::Whiten);
        assert_eq!(empty, vec![Vec::<f32>::new()]);
        let s = Summary::of(&[]);
        assert_eq!(s.count, 0);
    }
}
