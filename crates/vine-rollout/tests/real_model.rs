//! The engine on a real (random-init) transformer: forking, prefix sharing, batching and left
//! padding must not change generations beyond float noise.

mod common;

use candle_core::{DType, Device, Tensor};
use common::config;
use vine_model::{CausalLm, ModelConfig, Transformer};
use vine_rollout::{Engine, EngineConfig, Request, Sample, SamplingParams};

const VOCAB: usize = 97;

/// A 2-layer GQA Llama with a larger-than-HF init so attention is far from uniform.
fn model() -> Transformer {
    let mut c = ModelConfig::tiny_llama(VOCAB, 32, 2, 4, 2, 48);
    c.initializer_range = 0.2;
    Transformer::new_random(c, 17, DType::F32, &Device::Cpu, false).unwrap()
}

/// Nested prefixes of two "trajectories", a duplicate and a one-token prefix.
fn requests(n: usize) -> Vec<Request> {
    let traj_a: Vec<u32> = (0..23).map(|i| (i * 13 + 5) % VOCAB as u32).collect();
    let traj_b: Vec<u32> = (0..9).map(|i| (i * 31 + 2) % VOCAB as u32).collect();
    let mut out = Vec::new();
    for (s, cut) in [2, 8, 15, 23].into_iter().enumerate() {
        out.push(Request::new(traj_a[..cut].to_vec(), n, s as u64));
    }
    out.push(Request::new(traj_b.clone(), n, 10));
    out.push(Request::new(traj_b[..4].to_vec(), n, 11));
    out.push(Request::new(traj_a[..8].to_vec(), n, 12));
    out.push(Request::new(vec![1], n, 13));
    out
}

fn generate(
    lm: &Transformer,
    cfg: EngineConfig,
    reqs: &[Request],
    p: &SamplingParams,
) -> Vec<Vec<Sample>> {
    Engine::new(cfg)
        .unwrap()
        .generate(lm, reqs, p, None, &mut |_| {})
        .unwrap()
}

/// Greedy continuation without any cache reuse: every step prefills the whole history on a
/// fresh cache and decodes its last token.
fn naive_greedy(lm: &Transformer, prefix: &[u32], steps: usize) -> (Vec<u32>, Vec<f32>) {
    let mut history = prefix.to_vec();
    let (mut tokens, mut logprobs) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let mut cache = lm.new_cache();
        let n = history.len();
        if n > 1 {
            let ids = Tensor::from_vec(history[..n - 1].to_vec(), (1, n - 1), &Device::Cpu);
            lm.prefill(&ids.unwrap(), &[], &mut cache).unwrap();
        } else {
            cache.set_left_padding(&[0]).unwrap();
        }
        let last = Tensor::from_vec(vec![history[n - 1]], (1, 1), &Device::Cpu).unwrap();
        let logits: Vec<f32> = lm
            .decode_step(&last, &mut cache)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let t = logits.iter().position(|&l| l == max).unwrap();
        let lse = max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
        tokens.push(t as u32);
        logprobs.push(logits[t] - lse);
        history.push(t as u32);
    }
    (tokens, logprobs)
}

/// Same tokens, log-probabilities within `tol`.
fn assert_close(a: &[Vec<Sample>], b: &[Vec<Sample>], tol: f32) {
    for (ra, rb) in a.iter().zip(b) {
        for (sa, sb) in ra.iter().zip(rb) {
            assert_eq!(sa.tokens, sb.tokens);
            assert_eq!(sa.finish, sb.finish);
            for (x, y) in sa.logprobs.iter().zip(&sb.logprobs) {
                assert!((x - y).abs() < tol, "{x} vs {y}");
            }
        }
    }
}

#[test]
fn greedy_with_sharing_equals_without_and_equals_naive_loop() {
    let lm = model();
    let reqs = requests(2);
    let p = SamplingParams::greedy(10);
    let shared = generate(&lm, EngineConfig::default(), &reqs, &p);
    let unshared = generate(&lm, config(64, 4096, 65536, false), &reqs, &p);
    // Tolerance 1e-4: batch composition and padding change only f32 rounding.
    assert_close(&shared, &unshared, 1e-4);
    for (r, samples) in reqs.iter().zip(&shared) {
        let (tokens, logprobs) = naive_greedy(&lm, &r.prefix, 10);
        assert_eq!(samples[0].tokens, tokens, "prefix {:?}", r.prefix);
        assert_eq!(samples[1], samples[0]);
        for (x, y) in samples[0].logprobs.iter().zip(&logprobs) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}

#[test]
fn batched_left_padded_equals_one_at_a_time() {
    let lm = model();
    let reqs = requests(3);
    let p = SamplingParams {
        temperature: 0.7,
        top_p: 0.95,
        stop_token_ids: (0..VOCAB as u32).filter(|t| t % 9 == 4).collect(),
        ..SamplingParams::greedy(9)
    };
    let mut reqs = reqs;
    reqs[2].max_new_tokens = Some(3);
    let one_at_a_time = generate(&lm, config(1, 1, 1, false), &reqs, &p);
    // Rows end at different steps, so slots are refilled and compacted mid-flight.
    let finishes: Vec<bool> = one_at_a_time
        .iter()
        .flatten()
        .map(|s| s.finish.is_stop())
        .collect();
    assert!(finishes.contains(&true) && finishes.contains(&false));
    for cfg in [
        EngineConfig::default(),
        config(5, 40, 40, true),
        config(7, 4096, 4096, false),
    ] {
        assert_close(&generate(&lm, cfg, &reqs, &p), &one_at_a_time, 1e-4);
    }
    // Sampling really happened: the samples of one request differ.
    assert!(one_at_a_time.iter().any(|s| s[0].tokens != s[1].tokens));
}

#[test]
fn reported_logprobs_match_the_trainers_recomputation() {
    // The trainer recomputes log π(token | history) at the sampling temperature with a full
    // forward pass; the engine's numbers must agree (tolerance 1e-4, f32 rounding).
    let lm = model();
    let reqs = requests(2);
    let p = SamplingParams {
        temperature: 0.7,
        top_p: 0.9,
        ..SamplingParams::greedy(8)
    };
    let out = generate(&lm, EngineConfig::default(), &reqs, &p);
    for (r, samples) in reqs.iter().zip(&out) {
        for s in samples {
            let ids: Vec<u32> = r.prefix.iter().chain(&s.tokens).copied().collect();
            let n = ids.len();
            let ids = Tensor::from_vec(ids, (1, n), &Device::Cpu).unwrap();
            let all: Vec<f32> = lm
                .token_logprobs(&ids, &[], 0.7)
                .unwrap()
                .get(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            let generated = &all[all.len() - s.tokens.len()..];
            for (x, y) in s.logprobs.iter().zip(generated) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
        }
    }
}
