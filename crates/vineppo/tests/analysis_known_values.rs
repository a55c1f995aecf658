//! The value analysis on a policy whose state values are known exactly.
//!
//! A scripted mock LM (no weights) answers every problem "\n<x>\nc\n#### <n>": the first step
//! picks a letter x ∈ {a, b, d, e, f} uniformly, and the final answer is the correct 5 with a
//! probability that depends only on x (0.9, 0.7, 0.5, 0.3, 0.1), else 6. So V(prompt) = 0.5 and
//! V(prompt + "\nx") = p(x) exactly, and the best next step at the prompt is the letter with the
//! highest p among those sampled. Against that: the M-rollout ground truth must land on the
//! exact values, a critic that knows them must pick the best step every time and one that
//! inverts them never, K = M must reproduce the ground truth, and chance must be 1 / (number of
//! distinct alternatives).

use std::path::Path;
use std::sync::Arc;

use vine_data::{Example, PromptConfig, PromptPreset, Splits, Task, TaskKind};
use vine_model::Tokenizer;
use vine_rollout::mock::{MockLm, IMPOSSIBLE};
use vine_rollout::{Engine, EngineConfig, SamplingParams};
use vineppo::analysis::critic::StateValues;
use vineppo::analysis::summary::{summarize, Source, Summary};
use vineppo::analysis::{analyze, Inputs, Settings, ValueAnalysis};
use vineppo::progress::Bars;

// Token ids in the fixture tokenizer (checked in `tokens_are_single`).
const EOS: u32 = 1;
const COLON: u32 = 28;
const NL: u32 = 201;
const C: u32 = 69;
const HASH: u32 = 299;
const SPACE: u32 = 223;
const FIVE: u32 = 23;
const SIX: u32 = 24;
const SOLUTION: u32 = 294;
/// First-step letters and the probability that the answer after each is correct.
const LETTERS: [(u32, f64); 5] = [(67, 0.9), (68, 0.7), (70, 0.5), (71, 0.3), (72, 0.1)];

fn tokenizer() -> Tokenizer {
    Tokenizer::from_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures/llama"),
    )
    .unwrap()
}

/// The letter chosen after "Solution:\n", if the history has got that far.
fn letter(history: &[u32]) -> Option<u32> {
    let s = history.iter().rposition(|&t| t == SOLUTION)?;
    history.get(s + 3).copied()
}

fn p_correct(letter: u32) -> f64 {
    LETTERS.iter().find(|l| l.0 == letter).map_or(0.0, |l| l.1)
}

/// The true value of a state: p(letter) once the letter is chosen, 0.5 before.
fn true_value(prefix: &[u32]) -> f64 {
    letter(prefix).map_or(0.5, p_correct)
}

fn policy() -> MockLm {
    MockLm::from_fn(
        320,
        Arc::new(|h: &[u32], out: &mut [f32]| {
            out.fill(IMPOSSIBLE);
            let n = h.len();
            let last = h[n - 1];
            let prev = if n > 1 { h[n - 2] } else { 0 };
            let mut set = |t: u32, p: f64| out[t as usize] = p.ln() as f32;
            match last {
                COLON => set(NL, 1.0),
                NL if prev == COLON => LETTERS.iter().for_each(|l| set(l.0, 0.2)),
                NL if prev == C => set(HASH, 1.0),
                NL => set(C, 1.0),
                C => set(NL, 1.0),
                HASH => set(SPACE, 1.0),
                SPACE => {
                    let p = letter(h).map_or(0.0, p_correct);
                    set(FIVE, p);
                    set(SIX, 1.0 - p);
                }
                t if LETTERS.iter().any(|l| l.0 == t) => set(NL, 1.0),
                _ => set(EOS, 1.0),
            }
        }),
    )
}

fn task() -> Task {
    let ex = |i: usize| Example {
        id: format!("q{i}"),
        question: format!("Problem number {i}: what is two plus three?"),
        solution: "\na\nc\n#### 5".into(),
        answer: "5".into(),
        level: None,
        subject: None,
    };
    let splits = Splits {
        train: (0..6).map(ex).collect(),
        test: vec![ex(99)],
    };
    Task::new(
        TaskKind::Gsm8k,
        splits,
        &PromptConfig::preset(PromptPreset::Reference),
    )
    .unwrap()
}

/// A critic that knows the true values, or inverts them.
struct Oracle {
    inverted: bool,
}

impl StateValues for Oracle {
    fn values(&self, prefixes: &[Vec<u32>]) -> anyhow::Result<Vec<f32>> {
        Ok(prefixes
            .iter()
            .map(|p| {
                let v = true_value(p);
                (if self.inverted { 1.0 - v } else { v }) as f32
            })
            .collect())
    }
}

fn run(inverted: bool) -> (ValueAnalysis, Summary) {
    let tk = tokenizer();
    let task = task();
    let lm = policy();
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let oracle = Oracle { inverted };
    let inputs = Inputs {
        policy: &lm,
        critic: Some(&oracle),
        tokenizer: &tk,
        task: &task,
        engine: &engine,
        sampling: SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 16,
            max_context: 512,
            stop_token_ids: vec![EOS],
            ignore_eos: false,
        },
        stop_strings: task.prompt().stop().to_vec(),
        eos: EOS,
        bars: Bars::new(false),
    };
    let settings = Settings {
        states: 12,
        ground_truth: 256,
        ks: vec![1, 4, 256],
        alternatives: 5,
        min_distinct: 3,
        ranking_states: 12,
        alternative_temperature: 1.0,
        seed: 5,
    };
    let a = analyze(&inputs, &settings).unwrap();
    let s = summarize(&a, Source::default());
    (a, s)
}

#[test]
fn tokens_are_single() {
    let tk = tokenizer();
    assert_eq!(
        tk.encode("\na\nc\n#### 5", false).unwrap(),
        [NL, 67, NL, C, NL, HASH, SPACE, FIVE]
    );
    assert_eq!(tk.encode("Solution:", false).unwrap(), [SOLUTION, COLON]);
    assert_eq!(tk.encode("6bdef", false).unwrap(), [SIX, 68, 70, 71, 72]);
}

#[test]
fn analysis_recovers_known_values_and_rankings() {
    let (a, s) = run(false);
    // Each trajectory has two steps: states are prompts (step 0) and "\nx" (step 1).
    assert_eq!(a.states.len(), 12);
    assert!(
        a.states.iter().any(|e| e.state.step == 0) && a.states.iter().any(|e| e.state.step == 1)
    );
    assert!(a.states.iter().all(|e| e.state.step <= 1));
    // The 256-rollout ground truth lands on the exact values (std ≤ 0.032; 0.12 is 3.8σ).
    for e in &a.states {
        let v = true_value(&e.state.prefix);
        assert!(
            (e.truth - v).abs() < 0.12,
            "step {}: {} vs {v}",
            e.state.step,
            e.truth
        );
        assert_eq!(e.critic, Some(v as f32 as f64));
    }
    let err = |name: &str| {
        s.errors
            .iter()
            .find(|e| e.name == name)
            .unwrap()
            .overall
            .unwrap()
    };
    assert_eq!(err("mc_k256").mae, 0.0, "K = M is the ground truth itself");
    assert!(err("critic").mae < 0.05, "{:?}", err("critic"));
    // One rollout is a 0/1 draw: E|X − p| = 2p(1 − p), 0.34 on average over the letters.
    assert!(
        (0.15..0.6).contains(&err("mc_k1").mae),
        "{:?}",
        err("mc_k1")
    );

    // Ranking: at the prompt the alternatives are the letters; after a letter only the final
    // step follows (two distinct answers, fewer than min_distinct = 3), so only prompt states
    // are ranked.
    assert!(s.ranking_states_kept > 0);
    assert!(a.ranked.iter().all(|r| r.state.step == 0));
    assert_eq!(s.ranking_states_informative, s.ranking_states_kept);
    for r in &a.ranked {
        for alt in &r.alternatives {
            assert_eq!(alt.step.tokens.len(), 2, "\"\\n\" + letter");
            assert!(alt.step.terminal_reward.is_none());
        }
    }
    let rank = |name: &str| s.ranking.iter().find(|r| r.name == name).unwrap().clone();
    assert_eq!(rank("critic").top1, Some(1.0));
    assert_eq!(rank("critic").pairwise, Some(1.0));
    assert_eq!(rank("mc_k256").top1, Some(1.0));
    let chance: f64 = a
        .ranked
        .iter()
        .map(|r| 1.0 / r.alternatives.len() as f64)
        .sum::<f64>()
        / a.ranked.len() as f64;
    assert!((s.chance_top1.unwrap() - chance).abs() < 1e-12);
    assert!((0.2..=1.0 / 3.0).contains(&chance));

    // A critic with the values upside down always picks the worst step.
    let (_, inv) = run(true);
    let critic = inv.ranking.iter().find(|r| r.name == "critic").unwrap();
    assert_eq!(critic.top1, Some(0.0));
    assert_eq!(critic.pairwise, Some(0.0));
    // Sampling does not depend on the critic: the MC side is identical.
    assert_eq!(
        inv.ranking.iter().find(|r| r.name == "mc_k1").unwrap().top1,
        rank("mc_k1").top1
    );
}
