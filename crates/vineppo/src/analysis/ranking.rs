//! The ranking test: alternative next steps at a state, their ground-truth values, and what the
//! critic and the K-MC estimates think of them (see the module docs of [`super`]).

use anyhow::{Context, Result};
use vine_rl::batch::SplitMix64;
use vine_rollout::{Request, SamplingParams};

use super::alternatives::{distinct, next_step, NextStep};
use super::scoring::{mean, subsample_mean};
use super::states::{ground_truth, State, STAGE_ALTERNATIVES, STAGE_ALTERNATIVE_VALUES};
use super::{Inputs, Settings};
use crate::seeds::{mix, seed_for, Purpose};
use crate::text::TextStops;

/// One alternative next step with its values.
#[derive(Debug, Clone)]
pub struct Alternative {
    /// The step's tokens.
    pub step: NextStep,
    /// Ground-truth value of the state after the step (its reward when terminal).
    pub truth: f64,
    /// The critic's value of the state after the step.
    pub critic: Option<f64>,
    /// K-MC estimates, one per K.
    pub mc: Vec<f64>,
}

/// A state of the ranking test with its distinct alternatives.
#[derive(Debug, Clone)]
pub struct RankedState {
    /// The state.
    pub state: State,
    /// At least `min_distinct` alternatives.
    pub alternatives: Vec<Alternative>,
}

/// K-MC estimates from the returns of item `index` of seed stream `stage`, one per K.
pub fn mc_estimates(
    returns: &[f32],
    ks: &[usize],
    seed: u64,
    stage: u64,
    index: usize,
) -> Vec<f64> {
    ks.iter()
        .map(|&k| {
            let s = seed_for(seed, Purpose::Analysis, stage, mix(index as u64) ^ k as u64);
            subsample_mean(returns, k, &mut SplitMix64::new(s)).unwrap_or(0.0)
        })
        .collect()
}

/// Samples alternatives at `states`, keeps states with enough distinct next steps, and values
/// every kept step.
pub fn rank(
    inputs: &Inputs<'_>,
    settings: &Settings,
    states: &[&State],
) -> Result<Vec<RankedState>> {
    let options = alternatives(inputs, settings, states)?;
    let kept: Vec<(&State, Vec<NextStep>)> = states
        .iter()
        .zip(options)
        .filter(|(_, o)| o.len() >= settings.min_distinct)
        .map(|(s, o)| (*s, o))
        .collect();
    value_steps(inputs, settings, kept)
}

/// Ground truth, critic and K-MC values of every step: the state after the step is rolled out
/// M times unless the step ends the response (then its reward is its value).
fn value_steps(
    inputs: &Inputs<'_>,
    settings: &Settings,
    kept: Vec<(&State, Vec<NextStep>)>,
) -> Result<Vec<RankedState>> {
    let (mut rolled, mut owners, mut all) = (Vec::new(), Vec::new(), Vec::new());
    for (s, steps) in &kept {
        for step in steps {
            let mut p = s.prefix.clone();
            p.extend_from_slice(&step.tokens);
            if step.terminal_reward.is_none() {
                rolled.push(p.clone());
                owners.push((*s).clone());
            }
            all.push(p);
        }
    }
    let stage = STAGE_ALTERNATIVE_VALUES;
    let mut returns = ground_truth(inputs, settings, &owners, &rolled, stage)?.into_iter();
    let critic = super::critic::predict(inputs.critic, &all)?;
    let mut index = 0;
    let mut ranked = Vec::with_capacity(kept.len());
    for (s, steps) in kept {
        let mut alternatives = Vec::with_capacity(steps.len());
        for step in steps {
            let r = match step.terminal_reward {
                Some(reward) => vec![reward; settings.ground_truth],
                None => returns
                    .next()
                    .context("the engine returned fewer rollout lists than steps")?,
            };
            alternatives.push(Alternative {
                truth: mean(&r),
                critic: critic.as_ref().map(|c| f64::from(c[index])),
                mc: mc_estimates(&r, &settings.ks, settings.seed, stage, index),
                step,
            });
            index += 1;
        }
        ranked.push(RankedState {
            state: s.clone(),
            alternatives,
        });
    }
    Ok(ranked)
}

/// Distinct next steps of `alternatives` continuations per state, sampled at the alternative
/// temperature with the run's other sampling settings.
fn alternatives(
    inputs: &Inputs<'_>,
    settings: &Settings,
    states: &[&State],
) -> Result<Vec<Vec<NextStep>>> {
    let params = SamplingParams {
        temperature: settings.alternative_temperature as f32,
        ..inputs.sampling.clone()
    };
    let requests: Vec<Request> = states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let seed = seed_for(
                settings.seed,
                Purpose::Analysis,
                STAGE_ALTERNATIVES,
                i as u64,
            );
            Request::new(s.prefix.clone(), settings.alternatives, seed)
        })
        .collect();
    let stops = TextStops::new(inputs.tokenizer, &inputs.stop_strings);
    let mut bar = inputs.bars.generation("alternatives");
    let out = inputs.engine.generate(
        inputs.policy,
        &requests,
        &params,
        (!stops.is_empty()).then_some(&stops as _),
        &mut |p| bar.update(p),
    )?;
    drop(bar);
    states
        .iter()
        .zip(out)
        .map(|(s, samples)| {
            let example = &inputs.task.train()[s.example];
            let response = &s.prefix[s.prompt_len..];
            let mut steps = Vec::new();
            for sample in &samples {
                steps.extend(next_step(
                    inputs.task,
                    inputs.tokenizer,
                    example,
                    response,
                    sample,
                )?);
            }
            Ok(distinct(steps))
        })
        .collect()
}
