//! DPO+ preference pairs (spec §2.3; reference `math_dpo_positive_episode_generator.py`).
//!
//! Per problem, a response is *chosen* when its reward is ≥ 0.5 (here: correct) and *rejected*
//! otherwise (wrong, or unfinished). Every chosen × rejected combination is a candidate pair;
//! when there are more than `P`, `P` of them are drawn without replacement. Problems lacking
//! either kind give no pair.
//!
//! Deviation: the reference draws with NumPy's global generator; here the draw for problem `p`
//! for the `g`-th problem of the round is a partial Fisher–Yates shuffle seeded by
//! `(run seed, Pairs, 0, g)`, kept in candidate order (chosen-major).

use vine_rl::batch::SplitMix64;

use crate::sampled::Graded;
use crate::seeds::{seed_for, Purpose};

/// Counts of pair construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Problems with both a chosen and a rejected response.
    pub with_pairs: usize,
    /// Problems whose responses were all correct.
    pub all_correct: usize,
    /// Problems whose responses were all rejected.
    pub all_rejected: usize,
    /// Problems with more candidate pairs than the cap.
    pub capped: usize,
}

/// The pairs of one problem's responses: `(chosen, rejected)` positions into `correct`, all of
/// them, or `max_pairs` drawn with `seed`.
pub fn problem_pairs(correct: &[bool], max_pairs: Option<usize>, seed: u64) -> Vec<(usize, usize)> {
    let chosen: Vec<usize> = (0..correct.len()).filter(|&i| correct[i]).collect();
    let rejected: Vec<usize> = (0..correct.len()).filter(|&i| !correct[i]).collect();
    let candidates: Vec<(usize, usize)> = chosen
        .iter()
        .flat_map(|&c| rejected.iter().map(move |&r| (c, r)))
        .collect();
    match max_pairs {
        Some(p) if candidates.len() > p => {
            let mut idx: Vec<usize> = (0..candidates.len()).collect();
            let mut rng = SplitMix64::new(seed);
            for i in 0..p {
                let j = i + rng.below(idx.len() - i);
                idx.swap(i, j);
            }
            let mut picked = idx[..p].to_vec();
            picked.sort_unstable();
            picked.into_iter().map(|i| candidates[i]).collect()
        }
        _ => candidates,
    }
}

/// Pairs over a round of samples: `graded` holds `per_problem` responses of each problem in turn
/// (as sampled); the result indexes into `graded`. Group `g` draws with `(seed, Pairs, 0, g)`.
pub fn build_pairs(
    graded: &[Graded],
    per_problem: usize,
    max_pairs: Option<usize>,
    seed: u64,
) -> (Vec<(usize, usize)>, PairStats) {
    let mut pairs = Vec::new();
    let mut stats = PairStats::default();
    for (g, group) in graded.chunks(per_problem.max(1)).enumerate() {
        let start = g * per_problem.max(1);
        let correct: Vec<bool> = group.iter().map(|x| x.correct).collect();
        let n_correct = correct.iter().filter(|&&c| c).count();
        if n_correct == correct.len() {
            stats.all_correct += 1;
        } else if n_correct == 0 {
            stats.all_rejected += 1;
        } else {
            stats.with_pairs += 1;
            let n_candidates = n_correct * (correct.len() - n_correct);
            stats.capped += usize::from(max_pairs.is_some_and(|p| n_candidates > p));
            let s = seed_for(seed, Purpose::Pairs, 0, g as u64);
            pairs.extend(
                problem_pairs(&correct, max_pairs, s)
                    .into_iter()
                    .map(|(c, r)| (start + c, start + r)),
            );
        }
    }
    (pairs, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(problem: usize, correct: bool) -> Graded {
        Graded {
            problem,
            tokens: vec![1],
            finished: true,
            correct,
        }
    }

    #[test]
    fn every_chosen_meets_every_rejected_of_its_problem() {
        // Problem 4: ✓ ✗ ✓ ✗ → 4 pairs; problem 7: all ✓ → none; problem 2: all ✗ → none.
        let graded = [
            g(4, true),
            g(4, false),
            g(4, true),
            g(4, false),
            g(7, true),
            g(7, true),
            g(7, true),
            g(7, true),
            g(2, false),
            g(2, false),
            g(2, false),
            g(2, false),
        ];
        let (pairs, stats) = build_pairs(&graded, 4, None, 1);
        assert_eq!(pairs, vec![(0, 1), (0, 3), (2, 1), (2, 3)]);
        assert_eq!(
            stats,
            PairStats {
                with_pairs: 1,
                all_correct: 1,
                all_rejected: 1,
                capped: 0
            }
        );
    }

    #[test]
    fn the_cap_draws_distinct_pairs_deterministically() {
        // 3 chosen × 5 rejected = 15 candidates, capped at 4.
        let correct = [true, false, true, false, false, true, false, false];
        let a = problem_pairs(&correct, Some(4), 9);
        assert_eq!(a.len(), 4);
        assert_eq!(a, problem_pairs(&correct, Some(4), 9));
        assert!(
            a.windows(2).all(|w| w[0] < w[1]),
            "distinct, in candidate order"
        );
        assert!(a.iter().all(|&(c, r)| correct[c] && !correct[r]));
        assert_ne!(a, problem_pairs(&correct, Some(4), 10));
        assert_eq!(problem_pairs(&correct, Some(15), 9).len(), 15);
        let graded: Vec<Graded> = correct.iter().map(|&c| g(0, c)).collect();
        assert_eq!(build_pairs(&graded, 8, Some(4), 3).1.capped, 1);
    }
}
