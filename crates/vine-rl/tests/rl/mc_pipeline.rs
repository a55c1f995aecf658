//! The VinePPO value pipeline driven by a scripted policy whose success probability from every
//! state is known.

use std::collections::HashMap;

use vine_rl::batch::SplitMix64;
use vine_rl::credit::vine::{
    advantages, estimate_values, step_advantages, McRollouts, RolloutOutcome,
};
use vine_rl::{Episode, RlError, VineParams};

use crate::common::episode;

/// A policy whose rollouts from a prefix succeed with probability `last token / 100` and hit the
/// length limit with probability `truncate`. A truncated rollout still reports reward 1 when it
/// "would have" succeeded, so the pipeline must be what scores it 0.
struct Scripted {
    truncate: f64,
    rng: SplitMix64,
    /// How many times each prefix was requested.
    seen: HashMap<Vec<u32>, usize>,
}

impl Scripted {
    fn new(truncate: f64, seed: u64) -> Self {
        Self {
            truncate,
            rng: SplitMix64::new(seed),
            seen: HashMap::new(),
        }
    }
}

fn p_of(prefix: &[u32]) -> f64 {
    f64::from(*prefix.last().unwrap()) / 100.0
}

impl McRollouts for Scripted {
    type Error = RlError;

    fn rollout(
        &mut self,
        prefixes: &[Vec<u32>],
        k: usize,
    ) -> Result<Vec<Vec<RolloutOutcome>>, RlError> {
        let mut out = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            *self.seen.entry(prefix.clone()).or_default() += 1;
            let p = p_of(prefix);
            let outcomes = (0..k)
                .map(|_| RolloutOutcome {
                    reward: f32::from(u8::from(self.rng.next_f64() < p)),
                    truncated: self.rng.next_f64() < self.truncate,
                })
                .collect();
            out.push(outcomes);
        }
        Ok(out)
    }
}

/// Episodes whose states have success probabilities spread over [0.05, 0.95]: prompt token
/// `50` (p = 0.5), then response tokens that each encode the p of the state after them.
fn spread_episodes() -> Vec<Episode> {
    (0..6u32)
        .map(|e| {
            let resp: Vec<u32> = (0..5)
                .map(|i| 5 + (e * 17 + i * 29) % 91)
                .chain([2])
                .collect();
            episode(e as usize, &[1, 50 + e], &resp, true, 1.0, &[0, 1, 2, 3, 4])
        })
        .collect()
}

/// Every estimate is within 5σ of its p (σ = sqrt(p(1−p)/K)), and the RMS of the standardised
/// errors is close to 1, i.e. the error shrinks like 1/sqrt(K). With a fixed seed the test is
/// deterministic; with any seed a 5σ miss among 30 states has probability below 1e-5, and the
/// RMS bounds [0.5, 2.0] for a χ²₃₀-distributed sum fail with probability below 1e-6.
#[test]
fn estimates_converge_to_the_success_probability() {
    let episodes = spread_episodes();
    let mut errors_by_k = Vec::new();
    for k in [16usize, 4096] {
        let mut policy = Scripted::new(0.0, 20_240_611 + k as u64);
        let params = VineParams {
            mc_rollouts: k,
            max_value_steps: None,
        };
        let v = estimate_values(&episodes, &params, &mut policy).unwrap();
        let mut sq = 0.0;
        let mut abs = 0.0;
        let mut n = 0.0;
        for (ep, values) in episodes.iter().zip(&v.values) {
            for (i, &value) in values[..ep.n_steps()].iter().enumerate() {
                let p = p_of(&ep.state_prefix(i));
                let sigma = (p * (1.0 - p) / k as f64).sqrt();
                let err = f64::from(value) - p;
                assert!(
                    err.abs() <= 5.0 * sigma + 1e-6,
                    "K={k} state {i}: {value} vs p={p}"
                );
                sq += (err / sigma).powi(2);
                abs += err.abs();
                n += 1.0;
            }
            assert_eq!(values[ep.n_steps()], 0.0);
        }
        let rms = (sq / n).sqrt();
        assert!(
            (0.5..2.0).contains(&rms),
            "K={k}: standardised RMS error {rms}"
        );
        errors_by_k.push(abs / n);
    }
    assert!(errors_by_k[1] < errors_by_k[0] / 4.0, "{errors_by_k:?}");
}

/// A truncated rollout scores 0 even when it reports reward 1: with truncation probability
/// 0.25 the estimate converges to 0.75·p (5σ bound, K = 8192).
#[test]
fn truncated_rollouts_score_zero() {
    let ep = episode(0, &[1, 80], &[40, 2], true, 1.0, &[0]);
    let mut policy = Scripted::new(0.25, 7);
    let params = VineParams {
        mc_rollouts: 8192,
        max_value_steps: None,
    };
    let v = estimate_values(std::slice::from_ref(&ep), &params, &mut policy).unwrap();
    let want = 0.8 * 0.75;
    let sigma = (want * (1.0 - want) / 8192.0f64).sqrt();
    assert!(
        (f64::from(v.values[0][0]) - want).abs() < 5.0 * sigma,
        "{}",
        v.values[0][0]
    );
    let frac = v.stats.truncated as f64 / v.stats.rollouts as f64;
    assert!((frac - 0.25).abs() < 0.03, "{frac}");
}

/// The 8 samples of a prompt share one prompt state, identical partial solutions share theirs,
/// and nothing is requested twice.
#[test]
fn identical_prefixes_are_rolled_out_once() {
    let mut episodes = Vec::new();
    for s in 0..8u32 {
        // Two distinct first steps ([60] or [70]); the second step differs per sample.
        let first = if s % 2 == 0 { 60 } else { 70 };
        episodes.push(episode(
            0,
            &[1, 30],
            &[first, 10 + s, 2],
            true,
            1.0,
            &[0, 1],
        ));
    }
    episodes.push(episode(1, &[1, 31], &[60, 9], false, 0.0, &[0, 1]));
    let mut policy = Scripted::new(0.0, 1);
    let params = VineParams {
        mc_rollouts: 3,
        max_value_steps: None,
    };
    let v = estimate_values(&episodes, &params, &mut policy).unwrap();
    assert_eq!(v.stats.queries, 18);
    // [1,30], [1,30,60], [1,30,70], [1,31], [1,31,60]
    assert_eq!(v.stats.unique, 5);
    assert_eq!(policy.seen.len(), 5);
    assert!(policy.seen.values().all(|&n| n == 1));
    assert_eq!(policy.seen[&vec![1, 30]], 1);
    assert_eq!(v.stats.rollouts, 15);
    // Shared states get the very same estimate.
    for ep_values in &v.values[1..8] {
        assert_eq!(ep_values[0], v.values[0][0]);
    }
    assert_eq!(v.values[0][1], v.values[2][1]);
}

/// With a cap of 1, only V[0] and V[1] are rolled out; V[2..n] are filled with the return and
/// every step after the cap has advantage 0, so the whole remaining credit lands on step 1.
#[test]
fn the_cap_fills_values_backwards() {
    let ep = episode(0, &[1, 40], &[55, 20, 30, 90, 2], true, 1.0, &[0, 1, 2, 3]);
    let mut policy = Scripted::new(0.0, 3);
    let params = VineParams {
        mc_rollouts: 64,
        max_value_steps: Some(1),
    };
    let v = estimate_values(std::slice::from_ref(&ep), &params, &mut policy).unwrap();
    assert_eq!(v.stats.queries, 2);
    assert_eq!(policy.seen.len(), 2);
    let values = &v.values[0];
    assert_eq!(&values[2..], &[1.0, 1.0, 0.0]);
    let steps = step_advantages(&ep, values).unwrap();
    assert_eq!(&steps[2..], &[0.0, 0.0]);
    assert!((steps[1] - (1.0 - values[1])).abs() < 1e-7);
    let tokens = advantages(std::slice::from_ref(&ep), &v.values).unwrap();
    assert_eq!(tokens[0].len(), 5);
    assert_eq!(&tokens[0][2..], &[0.0, 0.0, 0.0]);

    // An unfinished episode past the cap is filled with its return 0.
    let cut = episode(0, &[1, 40], &[55, 20, 30], false, 0.0, &[0, 1, 2]);
    let v = estimate_values(std::slice::from_ref(&cut), &params, &mut policy).unwrap();
    assert_eq!(&v.values[0][2..], &[0.0, 0.0]);
}

/// A sampler that answers for the wrong number of states is an error, not a panic.
#[test]
fn a_short_answer_from_the_sampler_is_an_error() {
    struct Short;
    impl McRollouts for Short {
        type Error = RlError;
        fn rollout(
            &mut self,
            prefixes: &[Vec<u32>],
            _k: usize,
        ) -> Result<Vec<Vec<RolloutOutcome>>, RlError> {
            Ok(vec![Vec::new(); prefixes.len() - 1])
        }
    }
    let ep = episode(0, &[1, 40], &[55, 20, 2], true, 1.0, &[0, 1]);
    let err = estimate_values(&[ep], &VineParams::default(), &mut Short).unwrap_err();
    assert!(
        matches!(
            err,
            RlError::Rollouts {
                expected: 2,
                got: 1
            }
        ),
        "{err}"
    );
}
