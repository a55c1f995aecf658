//! RestEM's decisions, as pure functions: which problems validate, which samples to train on,
//! and which epoch's model samples the next iteration (spec §2.2; reference
//! `math_restem_episode_generator.py`, `restem_trainer.py::evaluate_checkpoints`).
//!
//! - **Validation split.** `restem.validation_size` problems drawn by a seeded shuffle of the
//!   training split are held out and never trained on. Deviation: the reference reads a
//!   prepared validation file (MATH: 500 problems, GSM8K: about 373, split off its training
//!   set beforehand); here the same sizes are carved at start-up, after over-long prompts are
//!   dropped, so any task gets one.
//! - **Filtering.** Keep the correct responses (reward ≥ 1; rewards are 0/1 here), at most `M`
//!   per problem: the first `M` in sampling order, as the reference (no random choice).
//! - **Epoch selection.** The candidates are the untrained copy of the initial model (epoch 0;
//!   the reference checkpoints it before training and evaluates it with the others) and the
//!   model after each epoch. `restem_paper_original` walks them in order and stops at the first
//!   epoch whose validation accuracy is not strictly higher than the previous one's; the last
//!   improving epoch is chosen. `choose_best` takes the highest accuracy (the first on ties).
//!
//! Deviation: the reference trains all epochs and evaluates every checkpoint afterwards. Under
//! the first-drop rule nothing after the first drop can be chosen, so training stops there
//! ([`wants_more_epochs`]); the choice is the same and the remaining epochs are not paid for.

use anyhow::{bail, Result};

use crate::config::restem::EpochSelection;
use crate::sampled::Graded;
use crate::seeds::{seed_for, Purpose};

/// Splits the `n` training problems into `(training pool, validation)`, both ascending: `size`
/// problems of a shuffle seeded by `(seed, Validation)` are held out.
pub fn carve_validation(n: usize, size: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if size >= n {
        bail!("invalid config: `restem.validation_size` = {size} leaves nothing to train on out of {n} training problems; lower it");
    }
    let order = vine_rl::batch::shuffled(n, seed_for(seed, Purpose::Validation, 0, 0));
    let mut validation = order[..size].to_vec();
    let mut pool = order[size..].to_vec();
    validation.sort_unstable();
    pool.sort_unstable();
    Ok((pool, validation))
}

/// Indices into `graded` of the responses RestEM trains on: the correct ones, at most
/// `max_per_problem` per problem (the first sampled), in sampling order.
pub fn keep_correct(graded: &[Graded], max_per_problem: Option<usize>) -> Vec<usize> {
    let mut per_problem: std::collections::HashMap<usize, usize> = Default::default();
    let mut kept = Vec::new();
    for (i, g) in graded.iter().enumerate() {
        if !g.correct {
            continue;
        }
        let count = per_problem.entry(g.problem).or_insert(0);
        if max_per_problem.is_none_or(|m| *count < m) {
            *count += 1;
            kept.push(i);
        }
    }
    kept
}

/// The chosen epoch given the validation accuracies of epochs `0..accuracies.len()` (epoch 0 is
/// the untrained copy). Empty input chooses epoch 0.
pub fn chosen_epoch(rule: EpochSelection, accuracies: &[f64]) -> usize {
    match rule {
        EpochSelection::FirstDrop => {
            let mut chosen = 0;
            for i in 1..accuracies.len() {
                if accuracies[i] > accuracies[i - 1] {
                    chosen = i;
                } else {
                    break;
                }
            }
            chosen
        }
        EpochSelection::Best => {
            let mut best = 0;
            for i in 1..accuracies.len() {
                if accuracies[i] > accuracies[best] {
                    best = i;
                }
            }
            best
        }
    }
}

/// Whether another epoch can still change the choice: epochs remain (`accuracies` holds epochs
/// `0..=e`, at most `max_epochs` are trained) and, under the first-drop rule, no epoch has
/// failed to improve yet.
pub fn wants_more_epochs(rule: EpochSelection, accuracies: &[f64], max_epochs: usize) -> bool {
    let trained = accuracies.len().saturating_sub(1);
    if trained >= max_epochs {
        return false;
    }
    match rule {
        EpochSelection::FirstDrop => chosen_epoch(rule, accuracies) == trained,
        EpochSelection::Best => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(problem: usize, correct: bool) -> Graded {
        Graded {
            problem,
            tokens: vec![1],
            finished: correct,
            correct,
        }
    }

    #[test]
    fn validation_is_a_seeded_disjoint_split() {
        let (pool, val) = carve_validation(20, 5, 3).unwrap();
        assert_eq!((pool.len(), val.len()), (15, 5));
        let mut all: Vec<usize> = pool.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(carve_validation(20, 5, 3).unwrap().1, val);
        assert_ne!(carve_validation(20, 5, 4).unwrap().1, val);
        let err = format!("{:#}", carve_validation(5, 5, 0).unwrap_err());
        assert!(err.contains("restem.validation_size"), "{err}");
    }

    #[test]
    fn keeps_the_first_correct_responses_up_to_the_cap() {
        // Problem 0: ✓ ✗ ✓ ✓ (cap 2 keeps the first two ✓); problem 1: ✗ ✗; problem 2: ✓.
        let graded = [
            g(0, true),
            g(0, false),
            g(0, true),
            g(0, true),
            g(1, false),
            g(1, false),
            g(2, true),
        ];
        assert_eq!(keep_correct(&graded, Some(2)), vec![0, 2, 6]);
        assert_eq!(keep_correct(&graded, Some(1)), vec![0, 6]);
        assert_eq!(keep_correct(&graded, None), vec![0, 2, 3, 6]);
        // Interleaved problems keep their own counts.
        let mixed = [g(1, true), g(0, true), g(1, true), g(0, true), g(1, true)];
        assert_eq!(keep_correct(&mixed, Some(2)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn first_drop_walks_until_accuracy_stops_improving() {
        let rule = EpochSelection::FirstDrop;
        // 0.30 → 0.35 → 0.40 → 0.38: epoch 3 drops, epoch 2 is chosen, no more training.
        let acc = [0.30, 0.35, 0.40, 0.38];
        assert_eq!(chosen_epoch(rule, &acc), 2);
        assert!(!wants_more_epochs(rule, &acc, 8));
        assert!(wants_more_epochs(rule, &acc[..3], 8));
        // A tie is not an improvement: 0.30 → 0.30 keeps the untrained copy.
        assert_eq!(chosen_epoch(rule, &[0.30, 0.30, 0.50]), 0);
        assert!(!wants_more_epochs(rule, &[0.30, 0.30], 8));
        // A later recovery is never seen: 0.3 → 0.2 → 0.9 chooses epoch 0.
        assert_eq!(chosen_epoch(rule, &[0.3, 0.2, 0.9]), 0);
        // Monotone improvement runs to the last epoch.
        let up = [0.1, 0.2, 0.3];
        assert_eq!(chosen_epoch(rule, &up), 2);
        assert!(!wants_more_epochs(rule, &up, 2));
        assert!(wants_more_epochs(rule, &up, 3));
        assert!(wants_more_epochs(rule, &[0.5], 1));
    }

    #[test]
    fn best_takes_the_first_maximum_after_every_epoch() {
        let rule = EpochSelection::Best;
        assert_eq!(chosen_epoch(rule, &[0.3, 0.2, 0.9, 0.9, 0.1]), 2);
        assert_eq!(chosen_epoch(rule, &[0.3]), 0);
        assert!(wants_more_epochs(rule, &[0.3, 0.1], 3));
        assert!(!wants_more_epochs(rule, &[0.3, 0.1, 0.2, 0.4], 3));
    }

    proptest! {
        /// Kept ⊆ correct, in order, and each problem keeps min(M, its correct count).
        #[test]
        fn filtering_invariants(
            samples in proptest::collection::vec((0usize..5, any::<bool>()), 0..60),
            cap in proptest::option::of(1usize..4),
        ) {
            let graded: Vec<Graded> = samples.iter().map(|&(p, c)| g(p, c)).collect();
            let kept = keep_correct(&graded, cap);
            prop_assert!(kept.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(kept.iter().all(|&i| graded[i].correct));
            for p in 0..5 {
                let correct = graded.iter().filter(|x| x.problem == p && x.correct).count();
                let got = kept.iter().filter(|&&i| graded[i].problem == p).count();
                prop_assert_eq!(got, cap.map_or(correct, |m| correct.min(m)));
            }
        }

        /// The first-drop choice is an epoch where every earlier step improved.
        #[test]
        fn first_drop_choice_is_a_strictly_improving_prefix(
            acc in proptest::collection::vec(0.0f64..1.0, 1..10),
        ) {
            let c = chosen_epoch(EpochSelection::FirstDrop, &acc);
            prop_assert!(acc[..=c].windows(2).all(|w| w[1] > w[0]));
            prop_assert!(c + 1 == acc.len() || acc[c + 1] <= acc[c]);
        }
    }
}
