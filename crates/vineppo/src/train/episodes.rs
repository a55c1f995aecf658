//! Sampling trajectories and turning them into scored [`Episode`]s (spec §1.1 steps 1–4, §1.6).
//!
//! - Prompts: the training split is shuffled with `(seed, iteration)` and the first P problems
//!   are taken, without replacement within an iteration (reference: `seed + iteration`).
//! - Each prompt is one engine request with `n = samples_per_prompt`, so its samples share one
//!   prefill of the prompt.
//! - Reward: 1 if the response finished (EOS or a stop string) and grades correct, else 0.
//!   Unfinished responses (a length limit) score 0 and get **no EOS** ("EOS trick"); finished
//!   ones get EOS appended.
//! - Steps: the task's splitter cuts the decoded text; a token belongs to the step in which it
//!   starts (spec §1.5).
//! - Deviation, as the reference: responses that cannot be split (GSM8K's marker twice) or are
//!   empty are dropped, then the iteration is refilled to its full size by repeating seeded
//!   random episodes (`fill_missing_episodes`).

use anyhow::{Context, Result};
use vine_data::spans::step_token_starts;
use vine_data::Task;
use vine_model::Tokenizer;
use vine_rl::Episode;
use vine_rollout::{FinishReason, Sample};

use crate::metrics::Metrics;
use crate::seeds::{seed_for, Purpose};
use crate::text::decode_response;

/// One sampled response before scoring.
pub struct Rollout {
    /// Index of the problem in the training split.
    pub example: usize,
    /// Index of the prompt within the iteration (GRPO/RLOO group).
    pub group: usize,
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// What the engine returned.
    pub sample: Sample,
}

/// A scored episode plus what the trainer logs about it.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The episode (EOS appended iff finished).
    pub episode: Episode,
    /// Index of the problem in the training split.
    pub example: usize,
    /// Whether the answer was correct (and the response finished).
    pub correct: bool,
}

/// Counts of one iteration's scoring.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScoreStats {
    /// Responses sampled.
    pub sampled: usize,
    /// Responses that finished (EOS or stop string).
    pub finished: usize,
    /// Finished and correct.
    pub correct: usize,
    /// Dropped: empty or unsplittable.
    pub dropped: usize,
    /// Response tokens (EOS excluded).
    pub tokens: usize,
    /// Reasoning steps over kept episodes.
    pub steps: usize,
}

/// Grades, splits and builds episodes; returns the kept ones and the counts.
pub fn score(
    rollouts: Vec<Rollout>,
    task: &Task,
    tokenizer: &Tokenizer,
    eos: u32,
) -> Result<(Vec<Scored>, ScoreStats)> {
    let mut stats = ScoreStats {
        sampled: rollouts.len(),
        ..ScoreStats::default()
    };
    let mut kept = Vec::with_capacity(rollouts.len());
    for r in rollouts {
        let finished = matches!(r.sample.finish, FinishReason::Stop(_));
        let decoded = decode_response(tokenizer, &r.sample.tokens)?;
        let ex = &task.train()[r.example];
        let correct = finished && task.grade(&decoded.text, ex).correct;
        stats.finished += finished as usize;
        stats.correct += correct as usize;
        stats.tokens += r.sample.tokens.len();
        let steps = match task.split_steps(&decoded.text) {
            Some(steps) if !r.sample.tokens.is_empty() => steps,
            _ => {
                stats.dropped += 1;
                continue;
            }
        };
        let starts = step_token_starts(&decoded.starts, &steps)
            .context("mapping reasoning steps to tokens")?;
        stats.steps += starts.len();
        let mut response = r.sample.tokens;
        if finished {
            response.push(eos);
        }
        let reward = if correct { 1.0 } else { 0.0 };
        let episode = Episode::new(r.group, r.prompt, response, finished, reward, starts)
            .context("building an episode")?;
        kept.push(Scored {
            episode,
            example: r.example,
            correct,
        });
    }
    Ok((kept, stats))
}

/// Repeats seeded random episodes (with their per-token values) until there are `target`.
pub fn refill<T: Clone>(items: &mut Vec<T>, target: usize, seed: u64, iteration: u64) {
    let n = items.len();
    if n == 0 || n >= target {
        return;
    }
    let mut rng = vine_rl::batch::SplitMix64::new(seed_for(seed, Purpose::Refill, iteration, 0));
    for _ in n..target {
        let pick = rng.below(n);
        items.push(items[pick].clone());
    }
}

/// Logs the scoring counts under `reward/*` and `response/*`.
pub fn log_scores(m: &mut Metrics, s: &ScoreStats, kept: &[Scored]) {
    let n = s.sampled.max(1) as f64;
    m.set("reward/mean", s.correct as f64 / n);
    m.set("reward/finished_frac", s.finished as f64 / n);
    m.set("response/truncated_frac", 1.0 - s.finished as f64 / n);
    m.set("response/length_mean", s.tokens as f64 / n);
    m.set("response/dropped", s.dropped as f64);
    m.set(
        "response/steps_mean",
        s.steps as f64 / kept.len().max(1) as f64,
    );
    m.set("response/episodes", kept.len() as f64);
    m.set("response/sampled", s.sampled as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_repeats_deterministically_and_never_shrinks() {
        let mut a: Vec<u32> = (0..5).collect();
        let mut b = a.clone();
        refill(&mut a, 8, 7, 3);
        refill(&mut b, 8, 7, 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        assert!(a[5..].iter().all(|x| *x < 5));
        let mut c: Vec<u32> = Vec::new();
        refill(&mut c, 4, 0, 0);
        assert!(c.is_empty());
    }
}
