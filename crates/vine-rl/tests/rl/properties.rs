//! Property tests over random episodes.

use std::collections::BTreeSet;

use candle_core::Device;
use proptest::prelude::*;
use vine_rl::credit::gae::{gae, token_rewards};
use vine_rl::credit::group::{grpo, rloo};
use vine_rl::credit::vine::{
    fill_values, queried_states, step_advantages, token_advantages, value_states,
};
use vine_rl::stats::{mean, normalize, var};
use vine_rl::{AdvantageNorm, Batch, Episode, GrpoParams};

/// A random valid episode: small vocabulary (so prefixes repeat), 1–4 prompt tokens from two
/// prompts, 1–12 text tokens, random step boundaries, EOS iff finished.
fn arb_episode() -> impl Strategy<Value = Episode> {
    (
        0usize..3,
        prop::collection::vec(3u32..6, 1..12),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(group, text, finished, correct, cuts)| {
            let prompt = vec![1, 10 + group as u32];
            let mut response = text.clone();
            if finished {
                response.push(2);
            }
            let starts: Vec<usize> = (0..text.len()).filter(|&i| i == 0 || cuts[i]).collect();
            let reward = if finished && correct { 1.0 } else { 0.0 };
            Episode::new(group, prompt, response, finished, reward, starts).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One advantage per response token, and each text token carries its step's advantage.
    #[test]
    fn token_advantages_cover_the_response(ep in arb_episode(), seed in any::<u64>()) {
        let steps: Vec<f32> = (0..ep.n_steps()).map(|i| (seed.wrapping_add(i as u64) % 7) as f32).collect();
        let t = token_advantages(&ep, &steps).unwrap();
        prop_assert_eq!(t.len(), ep.response().len());
        for (i, &a) in steps.iter().enumerate() {
            for j in ep.step_range(i) {
                prop_assert_eq!(t[j], a);
            }
        }
        if ep.finished() {
            prop_assert_eq!(t[t.len() - 1], t[t.len() - 2]);
        }
    }

    /// Step advantages telescope: Σ_i A_i = reward − V[0] for any values, with or without a cap.
    #[test]
    fn step_advantages_telescope(
        ep in arb_episode(),
        vals in prop::collection::vec(0.0f32..1.0, 13),
        cap in prop::option::of(0usize..4),
    ) {
        let m = queried_states(ep.n_steps(), cap);
        let values = fill_values(&ep, &vals[..m]).unwrap();
        prop_assert_eq!(values.len(), ep.n_steps() + 1);
        prop_assert_eq!(values[ep.n_steps()], 0.0);
        let a = step_advantages(&ep, &values).unwrap();
        let sum: f32 = a.iter().sum();
        prop_assert!((sum - (ep.reward() - values[0])).abs() < 1e-5);
        // After the cap every advantage is 0.
        for &x in &a[m..] {
            prop_assert_eq!(x, 0.0);
        }
    }

    /// Deduplication: every slot points at the episode's own state prefix, unique prefixes are
    /// distinct, and the number of queries is Σ (1 + min(n − 1, cap)).
    #[test]
    fn value_states_dedup_exactly(eps in prop::collection::vec(arb_episode(), 1..10), cap in prop::option::of(0usize..4)) {
        let s = value_states(&eps, cap);
        let distinct: BTreeSet<&Vec<u32>> = s.prefixes.iter().collect();
        prop_assert_eq!(distinct.len(), s.prefixes.len());
        let mut queries = 0;
        for (e, (ep, slots)) in eps.iter().zip(&s.slots).enumerate() {
            prop_assert_eq!(slots.len(), queried_states(ep.n_steps(), cap));
            queries += slots.len();
            for (i, &slot) in slots.iter().enumerate() {
                prop_assert_eq!(&s.prefixes[slot], &ep.state_prefix(i));
                let o = s.origins[slot];
                prop_assert!(o.episode <= e);
                prop_assert_eq!(&eps[o.episode].state_prefix(o.step), &s.prefixes[slot]);
                prop_assert_eq!(o.len, s.prefixes[slot].len());
            }
        }
        prop_assert_eq!(s.queries(), queries);
    }

    /// GRPO and RLOO advantages sum to 0 within every group.
    #[test]
    fn group_advantages_sum_to_zero(
        rewards in prop::collection::vec(0.0f32..1.0, 2..24),
        groups in prop::collection::vec(0usize..4, 24),
    ) {
        let eps: Vec<Episode> = rewards
            .iter()
            .zip(&groups)
            .map(|(&r, &g)| Episode::new(g, vec![1], vec![3, 2], true, r, vec![0]).unwrap())
            .collect();
        let g = grpo(&eps, &GrpoParams::default());
        let r = rloo(&eps);
        for group in 0..4 {
            let members: Vec<usize> = (0..eps.len()).filter(|&i| eps[i].group() == group).collect();
            let sg: f32 = members.iter().map(|&i| g[i]).sum();
            let sr: f32 = members.iter().map(|&i| r[i]).sum();
            prop_assert!(sg.abs() < 1e-3, "grpo group {} sums to {}", group, sg);
            prop_assert!(sr.abs() < 1e-4, "rloo group {} sums to {}", group, sr);
        }
    }

    /// Whitening gives mean 0 and unbiased variance 1 over all tokens of the minibatch.
    #[test]
    fn whitening_standardises(rows in prop::collection::vec(prop::collection::vec(-5.0f32..5.0, 1..20), 2..6)) {
        let flat: Vec<f32> = rows.concat();
        let mu = mean(&flat);
        prop_assume!(var(&flat, mu, true) > 1e-3);
        let w: Vec<f32> = normalize(&rows, AdvantageNorm::Whiten).concat();
        let m = mean(&w);
        prop_assert!(m.abs() < 1e-5, "mean {}", m);
        prop_assert!((var(&w, m, true) - 1.0).abs() < 1e-4);
    }

    /// GAE with γ = λ = 1 and no KL is score − V_t, with returns equal to the score.
    #[test]
    fn gae_with_unit_gamma_lambda_is_score_minus_value(ep in arb_episode(), vals in prop::collection::vec(-1.0f32..1.0, 13)) {
        let r = token_rewards(&ep, None).unwrap();
        let v = &vals[..ep.response().len()];
        let out = gae(&r, v, 1.0, 1.0).unwrap();
        for (t, (&a, &ret)) in out.advantages.iter().zip(&out.returns).enumerate() {
            prop_assert!((a - (ep.reward() - v[t])).abs() < 1e-5);
            prop_assert!((ret - ep.reward()).abs() < 1e-5);
        }
    }

    /// Collation round-trips per-token values for any set of episodes.
    #[test]
    fn align_round_trips(eps in prop::collection::vec(arb_episode(), 1..6)) {
        let batch = Batch::collate(&eps, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = eps.iter().map(|e| (0..e.response().len()).map(|t| t as f32).collect()).collect();
        let t = batch.align(&rows).unwrap();
        prop_assert_eq!(batch.response_rows(&t).unwrap(), rows);
        let mask_sum: f32 = batch.response_mask.sum_all().unwrap().to_scalar().unwrap();
        prop_assert_eq!(mask_sum as usize, batch.n_tokens());
    }
}
