use super::*;
use crate::error::Error;
use proptest::prelude::*;

fn params(temperature: f32, top_k: usize, top_p: f32) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k,
        top_p,
        ..SamplingParams::greedy(1)
    }
}

/// The definition in the module docs, written the obvious way: full sort, then truncate.
fn naive(logits: &[f32], p: &SamplingParams, u: f64) -> Choice {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if p.is_greedy() {
        let token = logits.iter().position(|&l| l == max).unwrap();
        let z: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
        return Choice {
            token: token as u32,
            logprob: (-(z.ln())) as f32,
        };
    }
    let t = p.temperature;
    let mut w = Vec::new();
    kernels::weights(logits, t, max, &mut w);
    let z = kernels::sum(&w);
    let v = logits.len();
    let k = if p.top_k == 0 { v } else { p.top_k.min(v) };
    let token = if k == v && p.top_p >= 1.0 {
        walk(&w, 0..v as u32, u * z)
    } else {
        let mut order: Vec<u32> = (0..v as u32).collect();
        order.sort_by(|a, b| w[*b as usize].total_cmp(&w[*a as usize]).then(a.cmp(b)));
        order.truncate(k);
        let mut top_k_mask = vec![false; v];
        order.iter().for_each(|&i| top_k_mask[i as usize] = true);
        let in_top_k = |i: u32, _: f32| top_k_mask[i as usize];
        let mut kept = k;
        if p.top_p < 1.0 {
            let total = if k < v {
                kernels::sum_where(&w, in_top_k)
            } else {
                z
            };
            let mut cum = 0.0f64;
            for (i, &tok) in order.iter().enumerate() {
                cum += w[tok as usize] as f64;
                if cum >= p.top_p as f64 * total {
                    kept = i + 1;
                    break;
                }
            }
        }
        let kept_set = &order[..kept];
        let mut kept_mask = vec![false; v];
        kept_set.iter().for_each(|&i| kept_mask[i as usize] = true);
        let mass = kernels::sum_where(&w, |i, _| kept_mask[i as usize]);
        let mut by_id = kept_set.to_vec();
        by_id.sort();
        walk(&w, by_id.into_iter(), u * mass)
    };
    let logprob = ((logits[token as usize] - max) / t) as f64 - z.ln();
    Choice {
        token,
        logprob: logprob as f32,
    }
}

#[test]
fn logprob_is_log_softmax_of_scaled_logits() {
    // Golden values from torch 2.11:
    //   l = torch.tensor([1.0, 2.0, 0.5, -1.0, 2.0, 3.5, -0.25])
    //   torch.log_softmax(l / 0.6, -1).tolist(); torch.log_softmax(l, -1).tolist()
    // Tolerance 1e-5 (f32 arithmetic).
    let l = [1.0, 2.0, 0.5, -1.0, 2.0, 3.5, -0.25];
    let scaled: [f64; 7] = [
        -4.339691162109375,
        -2.6730244159698486,
        -5.1730241775512695,
        -7.6730241775512695,
        -2.6730244159698486,
        -0.17302469909191132,
        -6.4230241775512695,
    ];
    let mut s = Sampler::default();
    let p = params(0.6, 0, 1.0);
    let mut seen = [false; 7];
    let mut rng = SampleRng::new(3, 0);
    for _ in 0..400 {
        let c = s.sample(&l, &p, rng.uniform()).unwrap();
        assert!((c.logprob as f64 - scaled[c.token as usize]).abs() < 1e-5);
        seen[c.token as usize] = true;
    }
    assert!(seen.iter().filter(|&&x| x).count() >= 4);
    // Greedy: argmax with T = 1; the tie between ids 1 and 4 is irrelevant, 5 is the max.
    let c = s.sample(&l, &SamplingParams::greedy(1), 0.99).unwrap();
    assert_eq!(c.token, 5);
    assert!((c.logprob as f64 - -0.4779464602470398).abs() < 1e-5);
}

#[test]
fn greedy_breaks_ties_by_lowest_id() {
    let mut s = Sampler::default();
    let c = s
        .sample(&[0.0, 2.0, 1.0, 2.0], &SamplingParams::greedy(1), 0.5)
        .unwrap();
    assert_eq!(c.token, 1);
    assert!((c.logprob - (-(2.0f32.exp() * 2.0 + 1.0 + 1.0f32.exp()).ln() + 2.0)).abs() < 1e-6);
}

/// Draws `n` tokens with a fixed seed and returns the count of every token.
fn histogram(logits: &[f32], p: &SamplingParams, n: usize) -> Vec<usize> {
    let mut s = Sampler::default();
    let mut rng = SampleRng::new(11, 5);
    let mut counts = vec![0; logits.len()];
    for _ in 0..n {
        counts[s.sample(logits, p, rng.uniform()).unwrap().token as usize] += 1;
    }
    counts
}

fn ln(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&x| x.ln() as f32).collect()
}

#[test]
fn top_k_restricts_support_and_renormalises() {
    // Probabilities 0.3, 0.1, 0.25, 0.05, 0.2, 0.1: top-3 = {0, 2, 4}, renormalised
    // 0.3/0.75 = 0.4, 0.25/0.75 = 0.333, 0.2/0.75 = 0.267. 8000 draws: the standard error is
    // about 0.0055, the tolerance 0.025 (4.5 sigma).
    let logits = ln(&[0.3, 0.1, 0.25, 0.05, 0.2, 0.1]);
    let counts = histogram(&logits, &params(1.0, 3, 1.0), 8000);
    assert_eq!(counts[1] + counts[3] + counts[5], 0, "{counts:?}");
    for (tok, want) in [(0, 0.4), (2, 1.0 / 3.0), (4, 0.2 / 0.75)] {
        let got = counts[tok] as f64 / 8000.0;
        assert!((got - want).abs() < 0.025, "token {tok}: {got} vs {want}");
    }
}

#[test]
fn top_p_keeps_the_smallest_nucleus() {
    // Probabilities 0.5, 0.3, 0.15, 0.05 with top-p 0.75: 0.5 < 0.75 <= 0.8, nucleus {0, 1},
    // renormalised 0.625 / 0.375. Same tolerance as above.
    let logits = ln(&[0.15, 0.5, 0.05, 0.3]);
    let counts = histogram(&logits, &params(1.0, 0, 0.75), 8000);
    assert_eq!(counts[0] + counts[2], 0, "{counts:?}");
    assert!((counts[1] as f64 / 8000.0 - 0.625).abs() < 0.025);
    // top-k 3 then top-p 0.6 on the renormalised top-3 (0.526, 0.316, 0.158): nucleus {1, 3}.
    let counts = histogram(&logits, &params(1.0, 3, 0.6), 4000);
    assert_eq!(counts[0] + counts[2], 0, "{counts:?}");
    // Temperature sharpens before truncation: at T = 0.25 token 1 has 0.5^4 / Σ p^4 = 0.88 of
    // the mass, so top-p 0.75 keeps it alone.
    let counts = histogram(&logits, &params(0.25, 0, 0.75), 500);
    assert_eq!(counts[1], 500);
}

#[test]
fn full_distribution_matches_softmax() {
    // No truncation, T = 2: p ∝ exp(l / 2). 20000 draws, tolerance 0.015 (> 4 sigma).
    let logits = [0.0f32, 1.0, 2.0, -3.0];
    let counts = histogram(&logits, &params(2.0, 0, 1.0), 20000);
    let w: Vec<f64> = logits.iter().map(|&l| (l as f64 / 2.0).exp()).collect();
    let z: f64 = w.iter().sum();
    for (tok, wi) in w.iter().enumerate() {
        let got = counts[tok] as f64 / 20000.0;
        assert!(
            (got - wi / z).abs() < 0.015,
            "token {tok}: {got} vs {}",
            wi / z
        );
    }
}

#[test]
fn tiny_temperatures_act_like_greedy() {
    let mut s = Sampler::default();
    for t in [1e-30f32, 1e-8, 1e-3] {
        let c = s
            .sample(&[1e30, 3.0e30, -2.0, 2.9e30], &params(t, 0, 0.9), 0.7)
            .unwrap();
        assert_eq!((c.token, c.logprob), (1, 0.0), "T = {t}");
    }
}

#[test]
fn unusable_logits_are_errors() {
    let mut s = Sampler::default();
    let p = params(1.0, 0, 1.0);
    for bad in [
        vec![0.0, f32::NAN],
        vec![f32::INFINITY, 0.0],
        vec![f32::NEG_INFINITY; 3],
        vec![],
    ] {
        assert!(matches!(s.sample(&bad, &p, 0.5), Err(Error::BadLogits(_))));
    }
    // -inf entries are fine: they are never sampled.
    let c = s.sample(&[f32::NEG_INFINITY, 0.0], &p, 0.0).unwrap();
    assert_eq!(c.token, 1);
    assert_eq!(c.logprob, 0.0);
}

#[test]
fn streams_depend_on_seed_and_index_only() {
    let draws = |seed, index| {
        let mut r = SampleRng::new(seed, index);
        (0..4).map(|_| r.uniform()).collect::<Vec<_>>()
    };
    assert_eq!(draws(1, 2), draws(1, 2));
    assert_ne!(draws(1, 2), draws(1, 3));
    assert_ne!(draws(1, 2), draws(2, 2));
    assert!(draws(9, 9).iter().all(|&u| (0.0..1.0).contains(&u)));
}

#[test]
fn large_vocabulary_peaked_and_flat() {
    // 150k tokens: a peaked row (few rounds of selection) and a flat one (many rounds).
    let v = 150_000;
    let mut rng = SampleRng::new(0, 0);
    let peaked: Vec<f32> = (0..v)
        .map(|_| (rng.uniform() as f32).powi(8) * 30.0)
        .collect();
    let flat: Vec<f32> = (0..v).map(|_| rng.uniform() as f32 * 0.01).collect();
    let mut s = Sampler::default();
    for logits in [&peaked, &flat] {
        for (t, k, p) in [(0.6, 0, 0.9), (1.0, 50, 0.95), (0.7, 0, 1.0)] {
            let pr = params(t, k, p);
            for _ in 0..3 {
                let u = rng.uniform();
                assert_eq!(s.sample(logits, &pr, u).unwrap(), naive(logits, &pr, u));
            }
        }
    }
}

/// Logits with many ties and some -inf, over vocabularies that need several selection rounds,
/// on both sides of the radix pass's threshold.
fn logits_strategy() -> impl Strategy<Value = Vec<f32>> {
    let value = prop_oneof![
        6 => (-8i32..8).prop_map(|x| x as f32 * 0.5),
        3 => -10.0f32..10.0,
        1 => Just(f32::NEG_INFINITY),
    ];
    prop::collection::vec(value, 1..2500)
        .prop_filter("one finite logit", |l| l.iter().any(|x| x.is_finite()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The partial-selection sampler returns exactly what full sorting returns.
    #[test]
    fn fast_equals_naive(
        logits in logits_strategy(),
        t in prop_oneof![Just(0.0f32), 0.05f32..3.0],
        k in prop_oneof![Just(0usize), 1usize..500],
        p in prop_oneof![Just(1.0f32), 0.01f32..1.0],
        u in 0.0f64..1.0,
    ) {
        let pr = params(t, k, p);
        let fast = Sampler::default().sample(&logits, &pr, u).unwrap();
        let slow = naive(&logits, &pr, u);
        prop_assert_eq!(fast, slow);
        prop_assert!(logits[fast.token as usize].is_finite());
        prop_assert!(fast.logprob <= 1e-6);
    }
}
