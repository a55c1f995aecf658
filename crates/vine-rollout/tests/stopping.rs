//! Stop conditions and finish reasons, with scripted mocks whose outputs are known.

mod common;

use common::{naive, run};
use vine_rollout::mock::{MockLm, Script};
use vine_rollout::{
    EngineConfig, Error, FinishReason, Request, SamplingParams, StopKind, StopSequences,
};

const EOS: u32 = 2;

/// After a prompt ending in 5 the model says 6 7 8, then EOS; anything else loops on 9.
fn scripted() -> MockLm {
    let s = Script::new(&[(9, 1.0)])
        .after(&[5], &[(6, 1.0)])
        .after(&[6], &[(7, 1.0)])
        .after(&[7], &[(8, 1.0)])
        .after(&[8], &[(EOS, 1.0)]);
    MockLm::scripted(16, s).unwrap()
}

fn params(max_new: usize) -> SamplingParams {
    SamplingParams {
        stop_token_ids: vec![EOS],
        temperature: 1.0,
        top_p: 1.0,
        ..SamplingParams::greedy(max_new)
    }
}

fn one(
    lm: &MockLm,
    prefix: &[u32],
    p: &SamplingParams,
    stop: Option<&StopSequences>,
) -> (Vec<u32>, FinishReason) {
    let req = [Request::new(prefix.to_vec(), 1, 0)];
    let stop = stop.map(|s| s as &dyn vine_rollout::StopStrings);
    let out = run(EngineConfig::default(), lm, &req, p, stop);
    assert_eq!(out, naive(lm, &req, p, stop));
    let s = out[0][0].clone();
    assert_eq!(s.tokens.len(), s.logprobs.len());
    (s.tokens, s.finish)
}

#[test]
fn eos_ends_a_sample_and_is_not_returned() {
    let lm = scripted();
    let (tokens, finish) = one(&lm, &[1, 5], &params(10), None);
    assert_eq!(tokens, vec![6, 7, 8]);
    assert_eq!(finish, FinishReason::Stop(StopKind::Token(EOS)));
    // Certain tokens have log-probability 0.
    let req = [Request::new(vec![1, 5], 1, 0)];
    let out = run(EngineConfig::default(), &lm, &req, &params(10), None);
    assert_eq!(out[0][0].logprobs, vec![0.0; 3]);
}

#[test]
fn eos_on_the_last_allowed_token_is_still_a_stop() {
    // Budget 4 = three tokens + EOS.
    let (tokens, finish) = one(&scripted(), &[5], &params(4), None);
    assert_eq!((tokens.len(), finish.is_stop()), (3, true));
    let (tokens, finish) = one(&scripted(), &[5], &params(3), None);
    assert_eq!((tokens, finish), (vec![6, 7, 8], FinishReason::Length));
}

#[test]
fn ignore_eos_runs_to_the_length_limit() {
    let mut p = params(6);
    p.ignore_eos = true;
    let (tokens, finish) = one(&scripted(), &[5], &p, None);
    assert_eq!(tokens, vec![6, 7, 8, EOS, 9, 9]);
    assert_eq!(finish, FinishReason::Length);
}

#[test]
fn stop_strings_drop_their_tokens() {
    let stop = StopSequences {
        sequences: vec![vec![3, 3], vec![7, 8]],
    };
    let (tokens, finish) = one(&scripted(), &[5], &params(10), Some(&stop));
    assert_eq!(tokens, vec![6]);
    assert_eq!(finish, FinishReason::Stop(StopKind::String(1)));
    // A stop string completed by the last allowed token wins over the length limit.
    let (_, finish) = one(&scripted(), &[5], &params(3), Some(&stop));
    assert_eq!(finish, FinishReason::Stop(StopKind::String(1)));
}

#[test]
fn max_new_tokens_and_its_per_request_override() {
    let lm = scripted();
    let mut reqs = vec![Request::new(vec![1], 2, 0), Request::new(vec![1], 1, 1)];
    reqs[1].max_new_tokens = Some(2);
    let out = run(EngineConfig::default(), &lm, &reqs, &params(5), None);
    assert_eq!(out[0][0].tokens, vec![9; 5]);
    assert_eq!(out[0][1].finish, FinishReason::Length);
    assert_eq!(out[1][0].tokens, vec![9; 2]);
}

#[test]
fn context_cap_limits_prefix_plus_generated() {
    let lm = scripted();
    let mut p = params(100);
    p.max_context = 6;
    let (tokens, finish) = one(&lm, &[1, 1, 1, 1], &p, None);
    assert_eq!((tokens.len(), finish), (2, FinishReason::Length));
    // A prefix that already fills the context finishes at once, without touching the model.
    let lm = scripted();
    let (tokens, finish) = one(&lm, &[1; 6], &p, None);
    assert_eq!((tokens.len(), finish), (0, FinishReason::Length));
    assert_eq!(lm.stats().decode_steps + lm.stats().prefill_calls, 0);
}

#[test]
fn top_p_restricts_the_support_in_the_engine() {
    // Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps tokens 10 and 11 only.
    let lm = MockLm::scripted(
        16,
        Script::new(&[(10, 0.5), (11, 0.3), (12, 0.15), (13, 0.05)]),
    )
    .unwrap();
    let mut p = params(50);
    p.top_p = 0.75;
    let reqs: Vec<Request> = (0..8).map(|s| Request::new(vec![1], 4, s)).collect();
    let out = run(EngineConfig::default(), &lm, &reqs, &p, None);
    let tokens: Vec<u32> = out
        .iter()
        .flatten()
        .flat_map(|s| s.tokens.clone())
        .collect();
    assert_eq!(tokens.len(), 1600);
    assert!(tokens.iter().all(|&t| t == 10 || t == 11));
    // 0.5 / 0.8 = 0.625 of the draws are token 10; standard error 0.012, tolerance 0.05.
    let share = tokens.iter().filter(|&&t| t == 10).count() as f64 / 1600.0;
    assert!((share - 0.625).abs() < 0.05, "{share}");
}

#[test]
fn bad_requests_are_reported_with_their_index() {
    let lm = scripted();
    let engine = vine_rollout::Engine::default();
    let gen = |reqs: &[Request]| engine.generate(&lm, reqs, &params(3), None, &mut |_| {});
    let err = gen(&[Request::new(vec![1], 1, 0), Request::new(vec![], 1, 0)]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest { index: 1, .. }),
        "{err}"
    );
    let err = gen(&[Request::new(vec![1, 16], 1, 0)]).unwrap_err();
    assert!(err.to_string().contains("vocabulary"), "{err}");
    assert!(gen(&[]).unwrap().is_empty());
    assert_eq!(gen(&[Request::new(vec![1], 0, 0)]).unwrap(), vec![vec![]]);
    assert!(vine_rollout::Engine::new(common::config(0, 1, 1, true)).is_err());
}
