//! The states of the value analysis and their ground-truth returns.
//!
//! Trajectories are sampled exactly as a training iteration samples them (one request per
//! prompt, graded, split into steps, unsplittable or empty responses dropped), then their value
//! states are listed and deduplicated with `vine_rl::credit::vine::value_states`, so the analysis
//! looks at the states VinePPO estimates in training. Ground-truth rollouts go through the
//! trainer's own `EngineRollouts` (one request with `n = M` per state, graded like training's MC
//! rollouts).

use anyhow::Result;
use serde::Serialize;
use vine_rl::credit::vine::{value_states, McRollouts};
use vine_rl::Episode;
use vine_rollout::Request;

use super::{Inputs, Settings};
use crate::seeds::{seed_for, Purpose};
use crate::text::{encode_prompt, TextStops};
use crate::train::episodes::{score, Rollout, ScoreStats, Scored};
use crate::train::values::EngineRollouts;

/// Seed streams of the analysis (the `iteration` coordinate of [`Purpose::Analysis`] seeds).
pub const STAGE_TRAJECTORIES: u64 = 0;
/// Ground truth of the evaluated states; also their K-MC subsamples.
pub const STAGE_STATES: u64 = 1;
/// Alternative continuations.
pub const STAGE_ALTERNATIVES: u64 = 2;
/// Ground truth of the alternatives; also their K-MC subsamples.
pub const STAGE_ALTERNATIVE_VALUES: u64 = 3;
/// Which states are kept.
pub const STAGE_SUBSET: u64 = 4;

/// One value state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Token prefix (BOS, prompt, response up to the step boundary).
    pub prefix: Vec<u32>,
    /// Prompt length in tokens.
    pub prompt_len: usize,
    /// Training problem.
    pub example: usize,
    /// Value index: 0 = the prompt, `i` = after `i` steps.
    pub step: usize,
}

/// How sampling the trajectories went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrajectoryStats {
    /// Trajectories sampled.
    pub sampled: usize,
    /// Kept (non-empty and splittable).
    pub kept: usize,
    /// Share graded correct.
    pub mean_reward: f64,
    /// Mean reasoning steps of the kept ones.
    pub mean_steps: f64,
    /// Distinct value states they have.
    pub states_found: usize,
}

/// One response per picked training problem, scored as a training iteration scores them.
fn sample_trajectories(
    inputs: &Inputs<'_>,
    settings: &Settings,
) -> Result<(Vec<Scored>, ScoreStats)> {
    let task = inputs.task;
    let seed = settings.seed;
    let picks = vine_data::iteration_sample(task.train().len(), seed, 0, settings.states);
    let prompts = picks
        .iter()
        .map(|&ex| encode_prompt(task, inputs.tokenizer, &task.train()[ex]))
        .collect::<Result<Vec<_>>>()?;
    let requests: Vec<Request> = prompts
        .iter()
        .enumerate()
        .map(|(g, p)| {
            let s = seed_for(seed, Purpose::Analysis, STAGE_TRAJECTORIES, g as u64);
            Request::new(p.clone(), 1, s)
        })
        .collect();
    let stops = TextStops::new(inputs.tokenizer, &inputs.stop_strings);
    let mut bar = inputs.bars.generation("trajectories");
    let out = inputs.engine.generate(
        inputs.policy,
        &requests,
        &inputs.sampling,
        (!stops.is_empty()).then_some(&stops as _),
        &mut |p| bar.update(p),
    )?;
    drop(bar);
    let mut rollouts = Vec::with_capacity(picks.len());
    for (g, (samples, (&example, prompt))) in
        out.into_iter().zip(picks.iter().zip(prompts)).enumerate()
    {
        for sample in samples {
            rollouts.push(Rollout {
                example,
                group: g,
                prompt: prompt.clone(),
                sample,
            });
        }
    }
    score(rollouts, task, inputs.tokenizer, inputs.eos)
}

/// Samples trajectories and returns a seeded subset of `settings.states` of their value states,
/// in first-appearance order.
pub fn sample_states(
    inputs: &Inputs<'_>,
    settings: &Settings,
) -> Result<(Vec<State>, TrajectoryStats)> {
    let (scored, counts) = sample_trajectories(inputs, settings)?;
    let episodes: Vec<Episode> = scored.iter().map(|s| s.episode.clone()).collect();
    let vs = value_states(&episodes, None);
    let mut states: Vec<State> = vs
        .prefixes
        .into_iter()
        .zip(&vs.origins)
        .map(|(prefix, o)| State {
            prefix,
            prompt_len: episodes[o.episode].prompt().len(),
            example: scored[o.episode].example,
            step: o.step,
        })
        .collect();
    let stats = TrajectoryStats {
        sampled: counts.sampled,
        kept: episodes.len(),
        mean_reward: counts.correct as f64 / counts.sampled.max(1) as f64,
        mean_steps: counts.steps as f64 / episodes.len().max(1) as f64,
        states_found: states.len(),
    };
    if states.len() > settings.states {
        let seed = seed_for(settings.seed, Purpose::Analysis, STAGE_SUBSET, 0);
        let order = vine_rl::batch::shuffled(states.len(), seed);
        let mut keep: Vec<usize> = order[..settings.states].to_vec();
        keep.sort_unstable();
        states = keep.into_iter().map(|i| states[i].clone()).collect();
    }
    Ok((states, stats))
}

/// `M` graded rollout returns from every prefix (a truncated rollout returns 0). `states[i]`
/// names the problem and prompt of `prefixes[i]`; `stage` picks the seed stream.
pub fn ground_truth(
    inputs: &Inputs<'_>,
    settings: &Settings,
    states: &[State],
    prefixes: &[Vec<u32>],
    stage: u64,
) -> Result<Vec<Vec<f32>>> {
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    let mut prompts: Vec<(Vec<u32>, usize)> = states
        .iter()
        .map(|s| (s.prefix[..s.prompt_len].to_vec(), s.example))
        .collect();
    prompts.sort();
    prompts.dedup();
    let stops = TextStops::new(inputs.tokenizer, &inputs.stop_strings);
    let mut bar = inputs.bars.generation("truth");
    let mut rollouts = EngineRollouts {
        lm: inputs.policy,
        engine: inputs.engine,
        tokenizer: inputs.tokenizer,
        task: inputs.task,
        params: &inputs.sampling,
        stops: (!stops.is_empty()).then_some(&stops as _),
        prompts: &prompts,
        seed: seed_for(settings.seed, Purpose::Analysis, stage, 0),
        iteration: stage,
        progress: &mut |p| bar.update(p),
        tokens: 0,
    };
    let outcomes = rollouts.rollout(prefixes, settings.ground_truth)?;
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.into_iter()
                .map(|r| if r.truncated { 0.0 } else { r.reward })
                .collect()
        })
        .collect())
}
