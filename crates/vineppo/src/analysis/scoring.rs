//! The numbers of the value analysis, as pure functions over plain data: K-sample MC estimates
//! drawn from a state's ground-truth returns, absolute errors by step, and the ranking test's
//! top-1 and pairwise accuracies.
//!
//! - **K-sample MC** ([`subsample_mean`]): the mean of K of the M ground-truth returns drawn
//!   without replacement, as the reference's `MCValueActionRankingAnalyzer` does
//!   (`rng.sample(returns, K)`), so no extra sampling is needed. One draw per state and K.
//! - **Top-1** ([`top1`]): the predictor picks the alternative it values most; ties are broken
//!   uniformly at random, and the *expected* accuracy is reported (the share of the predictor's
//!   tied favourites that are truly best), so a predictor that cannot tell alternatives apart
//!   scores exactly chance. A pick is correct when its ground-truth value is the highest (any of
//!   several equally best alternatives counts).
//! - **Chance** ([`chance_top1`]): the expected accuracy of a uniform pick, the number of truly
//!   best alternatives over the number of alternatives (1/5 with five distinct values).
//! - **Pairwise** ([`pairwise`]): over pairs with different ground truth, the share the predictor
//!   orders the same way (a predicted tie counts one half), so a constant predictor scores ½.
//!   Deviation: the reference logs `(gt_i − gt_j)(pred_i − pred_j) > 0` over all pairs, which
//!   counts every tie, in truth or prediction, as wrong.
//! - Only *informative* states ([`informative`]) enter the ranking averages: states whose
//!   alternatives do not all have the same ground-truth value. When every alternative is equally
//!   good (all 0 is common for a weak model) any pick is right and the state says nothing.

use serde::Serialize;
use vine_rl::batch::SplitMix64;

/// Mean of `k` of `returns` drawn without replacement with `rng` (a partial Fisher–Yates
/// shuffle of the indices); `k` is clamped to `returns.len()`. `None` when `returns` is empty.
pub fn subsample_mean(returns: &[f32], k: usize, rng: &mut SplitMix64) -> Option<f64> {
    let n = returns.len();
    if n == 0 || k == 0 {
        return None;
    }
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    Some(idx[..k].iter().map(|&i| f64::from(returns[i])).sum::<f64>() / k as f64)
}

/// Mean of all returns (the ground truth); 0 for none, as `mc_value` does.
pub fn mean(returns: &[f32]) -> f64 {
    if returns.is_empty() {
        return 0.0;
    }
    returns.iter().map(|&r| f64::from(r)).sum::<f64>() / returns.len() as f64
}

/// Absolute and signed error of predictions against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorStats {
    /// How many states.
    pub states: usize,
    /// Mean |prediction − truth|.
    pub mae: f64,
    /// Mean (prediction − truth): positive = optimistic.
    pub bias: f64,
}

impl ErrorStats {
    /// Errors of `pred` against `truth` (same length).
    pub fn of(truth: &[f64], pred: &[f64]) -> Option<Self> {
        if truth.is_empty() || truth.len() != pred.len() {
            return None;
        }
        let n = truth.len() as f64;
        let d = truth.iter().zip(pred).map(|(t, p)| p - t);
        let (abs, signed) = d.fold((0.0, 0.0), |(a, s), x| (a + x.abs(), s + x));
        Some(Self {
            states: truth.len(),
            mae: abs / n,
            bias: signed / n,
        })
    }
}

/// Errors overall and for each step index present (`(step, stats)` in increasing step order).
pub fn errors_by_step(
    truth: &[f64],
    pred: &[f64],
    steps: &[usize],
) -> (Option<ErrorStats>, Vec<(usize, ErrorStats)>) {
    let mut distinct: Vec<usize> = steps.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let by = distinct
        .into_iter()
        .filter_map(|s| {
            let (t, p): (Vec<f64>, Vec<f64>) = steps
                .iter()
                .zip(truth.iter().zip(pred))
                .filter(|(&st, _)| st == s)
                .map(|(_, (&t, &p))| (t, p))
                .unzip();
            Some((s, ErrorStats::of(&t, &p)?))
        })
        .collect();
    (ErrorStats::of(truth, pred), by)
}

fn argmax_set(xs: &[f64]) -> Vec<usize> {
    let best = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (0..xs.len()).filter(|&i| xs[i] == best).collect()
}

/// Whether the alternatives of a state differ in ground truth (see the module docs).
pub fn informative(truth: &[f64]) -> bool {
    let lo = truth.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = truth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    truth.len() >= 2 && hi > lo
}

/// Expected top-1 accuracy of `pred` at one state: the share of its argmax set that is truly
/// best. `truth` and `pred` are indexed by alternative.
pub fn top1(truth: &[f64], pred: &[f64]) -> f64 {
    let picks = argmax_set(pred);
    if picks.is_empty() || truth.len() != pred.len() {
        return 0.0;
    }
    let best = argmax_set(truth);
    picks.iter().filter(|i| best.contains(i)).count() as f64 / picks.len() as f64
}

/// Expected top-1 accuracy of a uniformly random pick.
pub fn chance_top1(truth: &[f64]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    argmax_set(truth).len() as f64 / truth.len() as f64
}

/// Share of the pairs with different ground truth that `pred` orders the same way (ties = ½);
/// `None` when every pair is tied in ground truth.
pub fn pairwise(truth: &[f64], pred: &[f64]) -> Option<f64> {
    let (mut score, mut pairs) = (0.0, 0usize);
    for i in 0..truth.len() {
        for j in i + 1..truth.len().min(pred.len()) {
            let t = truth[i] - truth[j];
            if t == 0.0 {
                continue;
            }
            pairs += 1;
            let p = pred[i] - pred[j];
            score += if p == 0.0 {
                0.5
            } else if (p > 0.0) == (t > 0.0) {
                1.0
            } else {
                0.0
            };
        }
    }
    (pairs > 0).then(|| score / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsampling_draws_without_replacement() {
        let returns = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let mut rng = SplitMix64::new(3);
        // K = M uses every return once: exactly the ground truth.
        assert_eq!(subsample_mean(&returns, 8, &mut rng), Some(0.5));
        assert_eq!(subsample_mean(&returns, 99, &mut rng), Some(0.5));
        // K = 1 is one of the returns; with 4 ones and 4 zeros, over many draws about half are 1.
        let ones: usize = (0..4000)
            .map(|_| subsample_mean(&returns, 1, &mut rng).unwrap() as usize)
            .sum();
        assert!((1800..2200).contains(&ones), "{ones}");
        // K = 7 of 8 is 3/7 or 4/7, never anything else (no return is drawn twice).
        for _ in 0..200 {
            let m = subsample_mean(&returns, 7, &mut rng).unwrap();
            assert!(
                (m - 3.0 / 7.0).abs() < 1e-12 || (m - 4.0 / 7.0).abs() < 1e-12,
                "{m}"
            );
        }
        assert_eq!(subsample_mean(&[], 3, &mut rng), None);
        // Same seed, same draws.
        let draw = |s| subsample_mean(&returns, 3, &mut SplitMix64::new(s));
        assert_eq!(draw(11), draw(11));
    }

    #[test]
    fn errors_by_step_group_states() {
        let truth = [0.5, 0.8, 0.2, 0.0];
        let pred = [0.4, 0.8, 0.6, 0.1];
        let steps = [0, 1, 1, 2];
        let (all, by) = errors_by_step(&truth, &pred, &steps);
        let all = all.unwrap();
        assert!((all.mae - 0.15).abs() < 1e-12 && (all.bias - 0.1).abs() < 1e-12);
        assert_eq!(by.len(), 3);
        assert_eq!(by[1].0, 1);
        assert!((by[1].1.mae - 0.2).abs() < 1e-12 && (by[1].1.bias - 0.2).abs() < 1e-12);
        assert_eq!(by[1].1.states, 2);
        assert_eq!(ErrorStats::of(&[], &[]), None);
    }

    #[test]
    fn top1_chance_and_pairwise_on_known_states() {
        // Five alternatives with distinct true values; the best is index 2.
        let truth = [0.1, 0.5, 0.9, 0.3, 0.7];
        assert_eq!(top1(&truth, &[0.0, 0.1, 0.8, 0.2, 0.3]), 1.0);
        assert_eq!(top1(&truth, &[0.9, 0.1, 0.8, 0.2, 0.3]), 0.0);
        assert_eq!(chance_top1(&truth), 0.2);
        // A constant predictor picks uniformly: exactly chance.
        assert_eq!(top1(&truth, &[0.4; 5]), 0.2);
        // A tie between the best and one other: half right.
        assert_eq!(top1(&truth, &[0.0, 0.0, 1.0, 0.0, 1.0]), 0.5);
        // Two truly best alternatives: either pick is right; chance is 2/4.
        let tied = [1.0, 0.0, 1.0, 0.5];
        assert_eq!(top1(&tied, &[0.0, 0.0, 0.9, 0.1]), 1.0);
        assert_eq!(chance_top1(&tied), 0.5);
        assert!(informative(&tied) && !informative(&[0.0, 0.0, 0.0]) && !informative(&[1.0]));
        // Pairwise: the perfect order scores 1, the reversed 0, a constant ½; ground-truth ties
        // are skipped.
        assert_eq!(pairwise(&truth, &truth), Some(1.0));
        assert_eq!(pairwise(&truth, &truth.map(|t| -t)), Some(0.0));
        assert_eq!(pairwise(&truth, &[0.3; 5]), Some(0.5));
        // tied: pairs (0,1) (0,3) (1,2) (1,3) (2,3) differ; pred orders (0,1) wrong (0 vs 0 → ½),
        // (0,3) wrong, (1,2) right, (1,3) right, (2,3) right → 3.5 / 5.
        assert_eq!(pairwise(&tied, &[0.0, 0.0, 0.9, 0.1]), Some(0.7));
        assert_eq!(pairwise(&[0.2, 0.2], &[0.1, 0.3]), None);
    }
}
