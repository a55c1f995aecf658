//! Alternative next steps at a state, for the ranking test (spec §4.4): sample continuations of
//! the state and cut each at the end of its first reasoning step.
//!
//! A state is a token prefix ending where a step starts, as VinePPO's value states are. A
//! continuation is decoded together with the state's response tokens and split with the task's
//! splitter; the token step starts are derived as in training (a token belongs to the step in
//! which it starts, `vine_data::spans`). The alternative is kept only if the state's end is still
//! a step start in the continued text (otherwise the continuation has merged into the state's
//! last step and takes no step of its own); it is the tokens from there to the next step start.
//!
//! If that step is the last one, the continuation ends within it: when the continuation finished
//! (EOS or a stop string) the step is terminal and its value is the graded reward, known
//! exactly; when a length limit cut it, the step is incomplete and the alternative is dropped.
//!
//! Deviation from the reference (`ActionRankingAnalyzer`): it cuts text and re-tokenises
//! `state + step`; here the step is the continuation's own tokens, so its value is estimated from
//! exactly the prefix the policy produced (spec §7.3).

use anyhow::{Context, Result};
use vine_data::spans::step_token_starts;
use vine_data::{Example, Task};
use vine_model::Tokenizer;
use vine_rollout::{FinishReason, Sample};

/// One alternative next step.
#[derive(Debug, Clone, PartialEq)]
pub struct NextStep {
    /// The step's tokens (the first tokens of the continuation).
    pub tokens: Vec<u32>,
    /// For a terminal step (the response finished within it), its graded reward.
    pub terminal_reward: Option<f32>,
}

/// Cuts `sample`, a continuation of a state whose response so far is `state_response`, at the
/// end of its first step; `None` when it takes no complete step of its own (see the module docs).
pub fn next_step(
    task: &Task,
    tokenizer: &Tokenizer,
    example: &Example,
    state_response: &[u32],
    sample: &Sample,
) -> Result<Option<NextStep>> {
    if sample.tokens.is_empty() {
        return Ok(None);
    }
    let p = state_response.len();
    let mut ids = state_response.to_vec();
    ids.extend_from_slice(&sample.tokens);
    let (text, offsets) = tokenizer
        .decode_with_offsets(&ids)
        .context("decoding an alternative continuation")?;
    let Some(ranges) = task.split_steps(&text) else {
        return Ok(None);
    };
    let starts = step_token_starts(&offsets, &ranges).context("mapping steps to tokens")?;
    let Some(i) = starts.iter().position(|&s| s == p) else {
        return Ok(None);
    };
    match starts.get(i + 1) {
        Some(&end) => Ok(Some(NextStep {
            tokens: ids[p..end].to_vec(),
            terminal_reward: None,
        })),
        None if matches!(sample.finish, FinishReason::Stop(_)) => Ok(Some(NextStep {
            tokens: sample.tokens.clone(),
            terminal_reward: Some(task.grade(&text, example).reward()),
        })),
        None => Ok(None),
    }
}

/// Distinct steps, in first-appearance order (identical token sequences are one alternative).
pub fn distinct(steps: Vec<NextStep>) -> Vec<NextStep> {
    let mut out: Vec<NextStep> = Vec::with_capacity(steps.len());
    for s in steps {
        if !out.iter().any(|o| o.tokens == s.tokens) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use vine_data::{PromptConfig, PromptPreset, Splits};
    use vine_rollout::StopKind;

    fn tokenizer() -> Tokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures/llama");
        Tokenizer::from_dir(&dir).unwrap()
    }

    fn task() -> (Task, Example) {
        let ex = Example {
            id: "p".into(),
            question: "What is 2 + 3?".into(),
            solution: "2 + 3 = 5\n#### 5".into(),
            answer: "5".into(),
            level: None,
            subject: None,
        };
        let splits = Splits {
            train: vec![ex.clone()],
            test: vec![ex.clone()],
        };
        let prompt = PromptConfig::preset(PromptPreset::Reference);
        let task = Task::new(vine_data::TaskKind::Gsm8k, splits, &prompt).unwrap();
        (task, ex)
    }

    fn sample(tk: &Tokenizer, text: &str, finished: bool) -> Sample {
        let tokens = tk.encode(text, false).unwrap();
        Sample {
            logprobs: vec![0.0; tokens.len()],
            tokens,
            finish: if finished {
                FinishReason::Stop(StopKind::Token(1))
            } else {
                FinishReason::Length
            },
        }
    }

    fn text(tk: &Tokenizer, ids: &[u32]) -> String {
        tk.decode(ids, false).unwrap()
    }

    #[test]
    fn continuations_are_cut_at_their_first_step() {
        let tk = tokenizer();
        let (task, ex) = task();
        let state = tk.encode("\n2 + 3 = 5", false).unwrap();
        // From the prompt, the first step is the first line.
        let s = sample(&tk, "\n2 + 3 = 5\n5 * 1 = 5\n#### 5", true);
        let step = next_step(&task, &tk, &ex, &[], &s).unwrap().unwrap();
        assert_eq!(text(&tk, &step.tokens), "\n2 + 3 = 5");
        assert_eq!(step.terminal_reward, None);
        // From after the first line, the rest is the final step: terminal, graded.
        let s = sample(&tk, "\n5 * 1 = 5\n#### 5", true);
        let step = next_step(&task, &tk, &ex, &state, &s).unwrap().unwrap();
        assert_eq!(text(&tk, &step.tokens), "\n5 * 1 = 5\n#### 5");
        assert_eq!(step.terminal_reward, Some(1.0));
        let wrong = sample(&tk, "\n5 * 1 = 6\n#### 6", true);
        let wrong = next_step(&task, &tk, &ex, &state, &wrong).unwrap().unwrap();
        assert_eq!(wrong.terminal_reward, Some(0.0));
        // GSM8K's splitter puts the last line before the answer marker into the final step, so
        // an answer right after the state merges with the state's last line: no step of its own.
        let s = sample(&tk, "\n#### 5", true);
        assert_eq!(next_step(&task, &tk, &ex, &state, &s).unwrap(), None);
        // A final step cut by the length limit is incomplete.
        let cut = sample(&tk, "\nso the answer", false);
        assert_eq!(next_step(&task, &tk, &ex, &state, &cut).unwrap(), None);
        // ... but a cut continuation that completed a step still offers that step.
        let s = sample(&tk, "\n5 * 1 = 5\nand then", false);
        let step = next_step(&task, &tk, &ex, &state, &s).unwrap().unwrap();
        assert_eq!(text(&tk, &step.tokens), "\n5 * 1 = 5");
        // A continuation that extends the state's last line takes no step of its own.
        let s = sample(&tk, "0\n#### 50", true);
        assert_eq!(next_step(&task, &tk, &ex, &state, &s).unwrap(), None);
        // Nothing generated, nothing to rank; a second answer marker cannot be split.
        assert_eq!(
            next_step(&task, &tk, &ex, &state, &sample(&tk, "", true)).unwrap(),
            None
        );
        let twice = sample(&tk, "\n#### 5\n#### 5", true);
        assert_eq!(next_step(&task, &tk, &ex, &state, &twice).unwrap(), None);
    }

    #[test]
    fn distinct_keeps_first_appearances() {
        let s = |t: &[u32], r| NextStep {
            tokens: t.to_vec(),
            terminal_reward: r,
        };
        let d = distinct(vec![s(&[1, 2], None), s(&[3], Some(1.0)), s(&[1, 2], None)]);
        assert_eq!(d, vec![s(&[1, 2], None), s(&[3], Some(1.0))]);
    }
}
