//! Shared helpers: a naive one-sample-at-a-time generator to compare the engine against.

#![allow(dead_code)]

use vine_rollout::mock::MockLm;
use vine_rollout::sampling::{SampleRng, Sampler};
use vine_rollout::{
    Engine, EngineConfig, FinishReason, Request, Sample, SamplingParams, StopKind, StopStrings,
};

/// Generates one sample the obvious way: ask the mock for the logits of the full history at
/// every step (no cache, no batch), with the same sampler and random stream as the engine.
pub fn naive_sample(
    lm: &MockLm,
    req: &Request,
    j: usize,
    params: &SamplingParams,
    stop: Option<&dyn StopStrings>,
) -> Sample {
    let budget = req.budget(params);
    let mut rng = SampleRng::new(req.seed, j as u64);
    let mut sampler = Sampler::default();
    let (mut tokens, mut logprobs) = (Vec::new(), Vec::new());
    if budget == 0 {
        return Sample {
            tokens,
            logprobs,
            finish: FinishReason::Length,
        };
    }
    let mut history = req.prefix.clone();
    loop {
        let logits = lm.logits_after(&history);
        let c = sampler.sample(&logits, params, rng.uniform()).unwrap();
        if !params.ignore_eos && params.stop_token_ids.contains(&c.token) {
            let finish = FinishReason::Stop(StopKind::Token(c.token));
            return Sample {
                tokens,
                logprobs,
                finish,
            };
        }
        tokens.push(c.token);
        logprobs.push(c.logprob);
        history.push(c.token);
        if let Some(hit) = stop.and_then(|s| s.check(&tokens)) {
            tokens.truncate(hit.keep);
            logprobs.truncate(hit.keep);
            let finish = FinishReason::Stop(StopKind::String(hit.index));
            return Sample {
                tokens,
                logprobs,
                finish,
            };
        }
        if tokens.len() >= budget {
            return Sample {
                tokens,
                logprobs,
                finish: FinishReason::Length,
            };
        }
    }
}

/// All samples of all requests, naively.
pub fn naive(
    lm: &MockLm,
    requests: &[Request],
    params: &SamplingParams,
    stop: Option<&dyn StopStrings>,
) -> Vec<Vec<Sample>> {
    requests
        .iter()
        .map(|r| {
            (0..r.n)
                .map(|j| naive_sample(lm, r, j, params, stop))
                .collect()
        })
        .collect()
}

/// Runs the engine with `config` and no progress reporting.
pub fn run(
    config: EngineConfig,
    lm: &MockLm,
    requests: &[Request],
    params: &SamplingParams,
    stop: Option<&dyn StopStrings>,
) -> Vec<Vec<Sample>> {
    Engine::new(config)
        .unwrap()
        .generate(lm, requests, params, stop, &mut |_| {})
        .unwrap()
}

/// `max_batch`, chunk and pool sizes, and sharing.
pub fn config(max_batch: usize, chunk: usize, pool: usize, sharing: bool) -> EngineConfig {
    EngineConfig {
        max_batch,
        prefill_chunk_tokens: chunk,
        pool_tokens: pool,
        prefix_sharing: sharing,
    }
}

/// VinePPO-shaped requests: a few "trajectories" and, for each, requests for K continuations
/// from the prompt and from several nested prefixes, with distinct seeds.
pub fn vine_requests(vocab: u32, trajectories: usize, k: usize) -> Vec<Request> {
    let mut out = Vec::new();
    let mut seed = 100;
    for t in 0..trajectories {
        let len = 6 + 5 * t;
        let traj: Vec<u32> = (0..len as u32)
            .map(|i| (i * 7 + t as u32 * 3 + 1) % vocab)
            .collect();
        for cut in [3, len / 2, len - 1, len] {
            seed += 1;
            out.push(Request::new(traj[..cut].to_vec(), k, seed));
        }
    }
    // A duplicate prefix with its own seed, and a one-token prefix.
    out.push(Request::new(out[1].prefix.clone(), 2, 7));
    out.push(Request::new(vec![1], 3, 8));
    out
}
