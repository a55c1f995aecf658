//! Held-out evaluation with the reference's three metrics (spec §1.9): pass@1 as the mean
//! correctness over `n` samples per problem (`correct_frac`), majority-vote accuracy and pass@n
//! (`once_hit`). Used by `vineppo eval` and by the trainer every `eval.every` iterations.
//!
//! Problem `i` is sampled with seed `(eval seed, i)`, so a problem's samples do not depend on
//! `--limit`, the batch size, or which other problems are evaluated.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use vine_data::{Example, Task};
use vine_model::{CausalLm, Tokenizer};
use vine_rollout::{Engine, FinishReason, Progress, Request, SamplingParams};

use crate::seeds::{seed_for, Purpose};
use crate::text::{encode_prompt, TextStops};

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    /// Samples per problem.
    pub samples: usize,
    /// Temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus threshold.
    pub top_p: f64,
    /// Most new tokens per sample.
    pub max_new_tokens: usize,
    /// Cap on prompt + response tokens.
    pub max_context: usize,
    /// Seed of the evaluation.
    pub seed: u64,
    /// Extra stop strings (the template's are always used).
    pub stop_strings: Vec<String>,
}

/// One sampled response, graded.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// Response text.
    pub text: String,
    /// What the grader extracted, if anything.
    pub extracted: Option<String>,
    /// Grader verdict (false for unfinished responses).
    pub correct: bool,
    /// `stop` or `length`.
    pub finish: &'static str,
    /// Number of generated tokens.
    pub tokens: usize,
}

/// All samples of one problem.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemReport {
    /// Problem id.
    pub id: String,
    /// Question text.
    pub question: String,
    /// Gold answer.
    pub answer: String,
    /// Fraction of correct samples.
    pub correct_frac: f64,
    /// Most frequent extracted answer.
    pub majority_answer: Option<String>,
    /// Whether the majority answer is correct.
    pub majority_correct: bool,
    /// The samples.
    pub samples: Vec<SampleReport>,
}

/// Aggregate metrics and per-problem details.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Task name.
    pub task: String,
    /// Mean correctness over all samples of all problems (pass@1 estimate).
    pub pass1: f64,
    /// Majority-vote accuracy.
    pub majority: f64,
    /// Fraction of problems with at least one correct sample (pass@n).
    pub pass_n: f64,
    /// Problems evaluated.
    pub problems: usize,
    /// Samples per problem.
    pub samples_per_problem: usize,
    /// Mean generated tokens per sample.
    pub mean_tokens: f64,
    /// Fraction of samples cut by a length limit.
    pub truncated_frac: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Generated tokens per second.
    pub tokens_per_s: f64,
    /// Per-problem samples and verdicts.
    pub details: Vec<ProblemReport>,
}

/// Samples and grades `examples` (the first problems of a split).
pub fn evaluate(
    lm: &dyn CausalLm,
    tokenizer: &Tokenizer,
    task: &Task,
    examples: &[Example],
    settings: &EvalSettings,
    engine: &Engine,
    progress: &mut dyn FnMut(Progress),
) -> Result<EvalReport> {
    let start = Instant::now();
    let requests = examples
        .iter()
        .enumerate()
        .map(|(i, ex)| {
            Ok(Request::new(
                encode_prompt(task, tokenizer, ex)?,
                settings.samples,
                seed_for(settings.seed, Purpose::Eval, 0, i as u64),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let params = SamplingParams {
        temperature: settings.temperature as f32,
        top_p: settings.top_p as f32,
        top_k: 0,
        max_new_tokens: settings.max_new_tokens,
        max_context: settings.max_context,
        stop_token_ids: tokenizer.stop_ids().to_vec(),
        ignore_eos: false,
    };
    let mut stop_strings = task.prompt().stop().to_vec();
    stop_strings.extend(settings.stop_strings.iter().cloned());
    let stops = TextStops::new(tokenizer, &stop_strings);
    let outputs = engine
        .generate(
            lm,
            &requests,
            &params,
            (!stops.is_empty()).then_some(&stops as _),
            progress,
        )
        .context("sampling evaluation responses")?;
    let mut details = Vec::with_capacity(examples.len());
    let (mut tokens, mut truncated) = (0usize, 0usize);
    for (ex, samples) in examples.iter().zip(outputs) {
        let mut reports = Vec::with_capacity(samples.len());
        for s in samples {
            let text = tokenizer
                .decode(&s.tokens, false)
                .context("decoding an evaluation response")?;
            let finished = matches!(s.finish, FinishReason::Stop(_));
            let grade = task.grade(&text, ex);
            tokens += s.tokens.len();
            truncated += !finished as usize;
            reports.push(SampleReport {
                text,
                extracted: grade.extracted,
                correct: finished && grade.correct,
                finish: if finished { "stop" } else { "length" },
                tokens: s.tokens.len(),
            });
        }
        details.push(problem_report(ex, reports));
    }
    let n = details.len().max(1) as f64;
    let total_samples = (details.len() * settings.samples).max(1) as f64;
    let seconds = start.elapsed().as_secs_f64();
    Ok(EvalReport {
        task: task.kind().name().to_string(),
        pass1: details.iter().map(|p| p.correct_frac).sum::<f64>() / n,
        majority: details.iter().filter(|p| p.majority_correct).count() as f64 / n,
        pass_n: details
            .iter()
            .filter(|p| p.samples.iter().any(|s| s.correct))
            .count() as f64
            / n,
        problems: details.len(),
        samples_per_problem: settings.samples,
        mean_tokens: tokens as f64 / total_samples,
        truncated_frac: truncated as f64 / total_samples,
        seconds,
        tokens_per_s: tokens as f64 / seconds.max(1e-9),
        details,
    })
}

/// Majority vote over extracted answers: the most frequent one (earliest on ties); samples
/// without an answer do not vote.
fn problem_report(ex: &Example, samples: Vec<SampleReport>) -> ProblemReport {
    let mut counts: HashMap<&str, (usize, usize, bool)> = HashMap::new(); // answer -> (count, first, correct)
    for (i, s) in samples.iter().enumerate() {
        if let Some(a) = s.extracted.as_deref() {
            let e = counts.entry(a).or_insert((0, i, s.correct));
            e.0 += 1;
            e.2 |= s.correct;
        }
    }
    let best = counts
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(a, c)| (a.to_string(), c.2));
    let correct_frac =
        samples.iter().filter(|s| s.correct).count() as f64 / samples.len().max(1) as f64;
    ProblemReport {
        id: ex.id.clone(),
        question: ex.question.clone(),
        answer: ex.answer.clone(),
        correct_frac,
        majority_correct: best.as_ref().is_some_and(|b| b.1),
        majority_answer: best.map(|b| b.0),
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(extracted: Option<&str>, correct: bool) -> SampleReport {
        SampleReport {
            text: String::new(),
            extracted: extracted.map(str::to_string),
            correct,
            finish: "stop",
            tokens: 1,
        }
    }

    #[test]
    fn majority_vote_picks_the_most_frequent_then_the_earliest() {
        let ex = Example {
            id: "p".into(),
            question: "q".into(),
            solution: "s".into(),
            answer: "4".into(),
            level: None,
            subject: None,
        };
        let r = problem_report(
            &ex,
            vec![
                sample(Some("3"), false),
                sample(Some("4"), true),
                sample(Some("4"), true),
                sample(None, false),
            ],
        );
        assert_eq!(r.majority_answer.as_deref(), Some("4"));
        assert!(r.majority_correct);
        assert_eq!(r.correct_frac, 0.5);
        let tie = problem_report(&ex, vec![sample(Some("3"), false), sample(Some("4"), true)]);
        assert_eq!(tie.majority_answer.as_deref(), Some("3"));
        assert!(!tie.majority_correct);
        let none = problem_report(&ex, vec![sample(None, false)]);
        assert!(none.majority_answer.is_none() && !none.majority_correct);
    }
}
