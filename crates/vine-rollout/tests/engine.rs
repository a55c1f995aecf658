//! The engine against a naive per-sample loop on the mock model: prefix sharing, forking,
//! chunked prefill, continuous batching and compaction must not change a single sample.

mod common;

use common::{config, naive, run, vine_requests};
use proptest::prelude::*;
use vine_rollout::mock::MockLm;
use vine_rollout::{Engine, EngineConfig, Progress, Request, SamplingParams};

const EOS: u32 = 0;

fn params() -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_p: 0.9,
        top_k: 0,
        max_new_tokens: 12,
        max_context: 40,
        stop_token_ids: vec![EOS],
        ignore_eos: false,
    }
}

#[test]
fn engine_equals_naive_generation_for_every_configuration() {
    let lm = MockLm::hashed(64, 3);
    let requests = vine_requests(64, 4, 3);
    let want = naive(&lm, &requests, &params(), None);
    // Some samples stop on EOS, some run out of budget: both paths are exercised.
    let finishes: Vec<_> = want.iter().flatten().map(|s| s.finish.is_stop()).collect();
    assert!(finishes.contains(&true) && finishes.contains(&false));
    let mut rebuilds = Vec::new();
    for cfg in [
        EngineConfig::default(),
        config(1, 4096, 4096, true),
        config(3, 16, 16, true),
        config(5, 7, 30, false),
        config(7, 1, 1, true),
        config(1000, 100_000, 100_000, false),
    ] {
        let mut last = Progress::default();
        let got = Engine::new(cfg.clone())
            .unwrap()
            .generate(&lm, &requests, &params(), None, &mut |p| last = p)
            .unwrap();
        assert_eq!(got, want, "{cfg:?}");
        rebuilds.push((last.cache_rebuilds, last.refills_in_place));
    }
    // Both refill paths ran: rebuilds beyond the first fill, and writes in place.
    assert!(rebuilds.iter().any(|&(r, _)| r > 1), "{rebuilds:?}");
    assert!(rebuilds.iter().any(|&(_, w)| w > 10), "{rebuilds:?}");
}

#[test]
fn distinct_prompts_decode_in_their_prefilled_cache() {
    // One sample per distinct prompt, all in one chunk and one batch: the batch takes the
    // prefilled cache over (no copy), and the samples are still exactly the naive ones.
    let lm = MockLm::hashed(64, 5);
    let requests: Vec<Request> = (0..6u32)
        .map(|i| Request {
            prefix: (0..3 + i as usize)
                .map(|t| 1 + (i + t as u32 * 7) % 60)
                .collect(),
            n: 1,
            seed: i as u64,
            max_new_tokens: Some(9),
        })
        .collect();
    let want = naive(&lm, &requests, &params(), None);
    let mut last = Progress::default();
    let got = Engine::new(EngineConfig::default())
        .unwrap()
        .generate(&lm, &requests, &params(), None, &mut |p| last = p)
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(last.cache_rebuilds, 0);
}

#[test]
fn samples_do_not_depend_on_batch_composition_or_order() {
    let lm = MockLm::hashed(64, 4);
    let requests = vine_requests(64, 3, 4);
    let all = run(config(6, 64, 64, true), &lm, &requests, &params(), None);
    let mut reversed: Vec<Request> = requests.clone();
    reversed.reverse();
    let mut back = run(config(4, 32, 64, true), &lm, &reversed, &params(), None);
    back.reverse();
    assert_eq!(back, all);
    for (i, r) in requests.iter().enumerate() {
        let alone = run(
            config(2, 64, 64, true),
            &lm,
            std::slice::from_ref(r),
            &params(),
            None,
        );
        assert_eq!(alone[0], all[i], "request {i}");
    }
    // Distinct seeds give distinct samples for the same prefix.
    let twins = [
        Request::new(vec![1, 2, 3], 1, 1),
        Request::new(vec![1, 2, 3], 1, 2),
    ];
    let out = run(EngineConfig::default(), &lm, &twins, &params(), None);
    assert_ne!(out[0][0].tokens, out[1][0].tokens);
}

#[test]
fn greedy_picks_the_argmax_of_the_history() {
    let lm = MockLm::hashed(64, 5);
    let requests = vine_requests(64, 2, 2);
    let p = SamplingParams::greedy(8);
    let out = run(config(3, 16, 16, true), &lm, &requests, &p, None);
    for (r, samples) in requests.iter().zip(&out) {
        // All samples of a greedy request are identical.
        assert!(samples.windows(2).all(|w| w[0] == w[1]));
        let mut history = r.prefix.clone();
        for &t in &samples[0].tokens {
            let logits = lm.logits_after(&history);
            let max = logits.iter().copied().fold(f32::MIN, f32::max);
            assert_eq!(logits[t as usize], max);
            assert_eq!(logits.iter().position(|&l| l == max), Some(t as usize));
            history.push(t);
        }
        assert_eq!(samples[0].tokens.len(), 8);
    }
}

#[test]
fn finished_rows_cost_no_decode_compute() {
    let lm = MockLm::hashed(64, 6);
    let requests = vine_requests(64, 4, 3);
    let mut last = Progress::default();
    let mut widest = 0;
    Engine::new(config(5, 32, 64, true))
        .unwrap()
        .generate(&lm, &requests, &params(), None, &mut |p| {
            widest = widest.max(p.batch_rows);
            last = p;
        })
        .unwrap();
    let s = lm.stats();
    // Every decoded row produced a sampled token: no dead row was ever decoded.
    assert_eq!(s.decode_rows, last.generated_tokens);
    assert_eq!(widest, 5);
    assert_eq!(last.finished_samples, last.total_samples);
    assert!(last.valid_positions <= last.attended_positions && last.valid_positions > 0);
    assert_eq!(
        last.total_samples,
        requests.iter().map(|r| r.n).sum::<usize>()
    );
}

#[test]
fn prefix_sharing_prefills_each_trajectory_once() {
    let requests = vine_requests(64, 4, 3);
    let lm = MockLm::hashed(64, 7);
    run(EngineConfig::default(), &lm, &requests, &params(), None);
    // Leaves: the four full trajectories (the other prefixes nest inside them).
    let leaves: usize = (0..4).map(|t| 6 + 5 * t - 1).sum();
    assert_eq!(lm.stats().prefill_tokens, leaves);
    let lm = MockLm::hashed(64, 7);
    let cfg = EngineConfig {
        prefix_sharing: false,
        ..EngineConfig::default()
    };
    run(cfg, &lm, &requests, &params(), None);
    let rows: usize = requests.iter().map(|r| r.n * (r.prefix.len() - 1)).sum();
    assert_eq!(lm.stats().prefill_tokens, rows);
}

fn request_strategy() -> impl Strategy<Value = Request> {
    (
        prop::collection::vec(1u32..6, 1..14),
        0usize..4,
        any::<u64>(),
        prop::option::of(0usize..9),
    )
        .prop_map(|(prefix, n, seed, max_new)| Request {
            prefix,
            n,
            seed,
            max_new_tokens: max_new,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Arbitrary requests (many nested and identical prefixes over a 5-token alphabet) and
    /// engine sizes give exactly the naive samples.
    #[test]
    fn arbitrary_requests_match_naive(
        requests in prop::collection::vec(request_strategy(), 0..10),
        max_batch in 1usize..9,
        chunk in 1usize..40,
        pool in 1usize..80,
        sharing in any::<bool>(),
        top_k in 0usize..4,
    ) {
        let lm = MockLm::hashed(16, 9);
        let mut p = params();
        p.top_k = top_k;
        p.max_context = 18;
        let got = run(config(max_batch, chunk, pool, sharing), &lm, &requests, &p, None);
        prop_assert_eq!(got, naive(&lm, &requests, &p, None));
    }
}
