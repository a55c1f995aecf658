//! VinePPO credit assignment: Monte-Carlo values at reasoning-step boundaries (spec 1.3–1.5).
//!
//! For an episode with steps `s_0 … s_{n−1}` the value array has `n + 1` entries:
//!
//! ```text
//! V[0]   = V̂(prompt)                          rolled out
//! V[i]   = V̂(prompt + steps 0..i)   1 ≤ i ≤ min(n−1, cap)      rolled out
//! V[i]   = r_i + V[i+1]             cap < i ≤ n−1              filled backwards (= reward)
//! V[n]   = 0                                   terminal, never rolled out
//! A_i    = r_i + V[i+1] − V[i],     r_i = 0 for i < n−1, r_{n−1} = reward,  γ = 1
//! V̂(s)   = mean of K rollout rewards from s; a truncated rollout scores 0; no rollouts → 0
//! ```
//!
//! Every response token takes the advantage of the step it starts in (its index lies in the
//! step's token range); the EOS, present iff the episode finished, copies the last text token's.
//!
//! Pipeline: [`value_states`] lists the states of all episodes and deduplicates identical token
//! prefixes (the samples of one prompt share `V[0]`, and identical partial solutions share
//! theirs) → an [`McRollouts`] implementation samples K continuations per unique prefix →
//! [`mc_value`] → [`fill_values`] → [`step_advantages`] → [`token_advantages`].
//! [`estimate_values`] runs the first four; [`advantages`] the last two.
//!
//! Deviations from the reference:
//! - States are **token** prefixes of the trajectory, not text re-tokenised by the server, so a
//!   rollout continues exactly the tokens the policy produced (spec 7.3 recommends this).
//!   Deduplication is therefore by token ids rather than by text.
//! - Unique prefixes are returned in first-appearance order (episode-major, step order), not
//!   shuffled: the engine can prefill a trajectory once and fork its nested prefixes.

use std::collections::HashMap;

use crate::credit::VineParams;
use crate::episode::Episode;
use crate::error::{check_len, Result, RlError};
use crate::stats::Summary;

/// What one MC rollout produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolloutOutcome {
    /// Graded reward of the full solution (prefix steps + continuation).
    pub reward: f32,
    /// The rollout hit the token limit (finish reason `length`); it then scores 0.
    pub truncated: bool,
}

/// The value estimate from K rollouts: their mean reward, with truncated rollouts scoring 0.
/// An empty list gives 0, as in the reference.
pub fn mc_value(outcomes: &[RolloutOutcome]) -> f32 {
    if outcomes.is_empty() {
        return 0.0;
    }
    let sum: f64 = outcomes
        .iter()
        .map(|o| {
            if o.truncated {
                0.0
            } else {
                f64::from(o.reward)
            }
        })
        .sum();
    (sum / outcomes.len() as f64) as f32
}

/// The sampler behind the MC value estimates; the trainer implements it with the engine and the
/// grader, tests with a scripted policy.
pub trait McRollouts {
    /// The implementation's error; it must absorb this crate's errors so that
    /// [`estimate_values`] can report either.
    type Error: From<RlError>;

    /// Samples `k` continuations of every prefix (token ids, BOS included) with the current
    /// policy and the training sampling settings, and grades each. Returns one list of outcomes
    /// per prefix, in order. The lists normally hold `k` outcomes; other lengths are accepted
    /// (an adaptive sampler may stop early) and an empty list means "value 0".
    fn rollout(
        &mut self,
        prefixes: &[Vec<u32>],
        k: usize,
    ) -> std::result::Result<Vec<Vec<RolloutOutcome>>, Self::Error>;
}

/// One value state of one episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRef {
    /// Episode index.
    pub episode: usize,
    /// Value index `i` (0 = prompt only).
    pub step: usize,
    /// Prefix length in tokens: prompt length + start of step `i`.
    pub len: usize,
}

/// The states to roll out for a set of episodes, deduplicated. See [`value_states`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValueStates {
    /// Unique token prefixes, in first-appearance order.
    pub prefixes: Vec<Vec<u32>>,
    /// For each unique prefix, the first state that produced it (the engine can take the
    /// prefix's KV cache from that episode's prefill: `len` tokens of row `episode`).
    pub origins: Vec<StateRef>,
    /// For each episode, the index into `prefixes` of `V[0], V[1], …, V[m]`,
    /// `m = min(n − 1, cap)`.
    pub slots: Vec<Vec<usize>>,
}

impl ValueStates {
    /// Number of states before deduplication.
    pub fn queries(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Number of unique prefixes (what is actually rolled out).
    pub fn unique(&self) -> usize {
        self.prefixes.len()
    }
}

/// Number of rolled-out states of an episode with `n_steps` steps: `1 + min(n − 1, cap)`.
pub fn queried_states(n_steps: usize, max_value_steps: Option<usize>) -> usize {
    let internal = n_steps.saturating_sub(1);
    1 + max_value_steps.map_or(internal, |cap| internal.min(cap))
}

/// Lists the value states `V[0..=min(n−1, cap)]` of every episode and deduplicates identical
/// token prefixes across all of them.
pub fn value_states(episodes: &[Episode], max_value_steps: Option<usize>) -> ValueStates {
    let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut states = ValueStates {
        prefixes: Vec::new(),
        origins: Vec::new(),
        slots: Vec::with_capacity(episodes.len()),
    };
    for (e, ep) in episodes.iter().enumerate() {
        let m = queried_states(ep.n_steps(), max_value_steps);
        let mut slots = Vec::with_capacity(m);
        for step in 0..m {
            let prefix = ep.state_prefix(step);
            let slot = match index.get(&prefix) {
                Some(&slot) => slot,
                None => {
                    let slot = states.prefixes.len();
                    let len = prefix.len();
                    index.insert(prefix.clone(), slot);
                    states.prefixes.push(prefix);
                    states.origins.push(StateRef {
                        episode: e,
                        step,
                        len,
                    });
                    slot
                }
            };
            slots.push(slot);
        }
        states.slots.push(slots);
    }
    states
}

/// Completes the value array of one episode from its rolled-out values `V[0..=m]`:
/// `V[n] = 0`, and `V[i] = r_i + V[i+1]` for `m < i < n`. Returns `n + 1` values.
pub fn fill_values(episode: &Episode, queried: &[f32]) -> Result<Vec<f32>> {
    let n = episode.n_steps();
    if queried.is_empty() || queried.len() > n {
        return Err(RlError::Invalid(format!(
            "{} queried values for an episode with {n} steps; pass V[0..=m] with m < {n}",
            queried.len()
        )));
    }
    let mut values = vec![0.0f32; n + 1];
    values[..queried.len()].copy_from_slice(queried);
    for i in (queried.len()..n).rev() {
        values[i] = step_reward(episode, i) + values[i + 1];
    }
    Ok(values)
}

/// `r_i`: the episode's reward on the last step, 0 elsewhere.
fn step_reward(episode: &Episode, i: usize) -> f32 {
    if i + 1 == episode.n_steps() {
        episode.reward()
    } else {
        0.0
    }
}

/// MC values of a set of episodes, with statistics for logging.
#[derive(Debug, Clone, PartialEq)]
pub struct VineValues {
    /// Per episode, `V[0..=n]` (`n + 1` entries, terminal 0, capped states filled backwards).
    pub values: Vec<Vec<f32>>,
    /// What the estimation cost and found.
    pub stats: McStats,
}

/// Statistics of one MC value estimation.
#[derive(Debug, Clone, PartialEq)]
pub struct McStats {
    /// States before deduplication.
    pub queries: usize,
    /// Unique prefixes rolled out.
    pub unique: usize,
    /// Total rollouts sampled.
    pub rollouts: usize,
    /// Rollouts that hit the token limit (scored 0).
    pub truncated: usize,
    /// Summary of `V̂` over the unique states.
    pub values: Summary,
}

/// Runs the whole VinePPO value pipeline: states → dedup → `K` rollouts per unique prefix →
/// `V̂` → full value arrays.
pub fn estimate_values<R: McRollouts>(
    episodes: &[Episode],
    params: &VineParams,
    rollouts: &mut R,
) -> std::result::Result<VineValues, R::Error> {
    let states = value_states(episodes, params.max_value_steps);
    let outcomes = if states.prefixes.is_empty() {
        Vec::new()
    } else {
        rollouts.rollout(&states.prefixes, params.mc_rollouts)?
    };
    Ok(values_from_outcomes(episodes, &states, &outcomes)?)
}

/// The second half of [`estimate_values`], for callers that run the rollouts themselves:
/// turns one outcome list per unique prefix into full value arrays.
pub fn values_from_outcomes(
    episodes: &[Episode],
    states: &ValueStates,
    outcomes: &[Vec<RolloutOutcome>],
) -> Result<VineValues> {
    if outcomes.len() != states.prefixes.len() {
        return Err(RlError::Rollouts {
            expected: states.prefixes.len(),
            got: outcomes.len(),
        });
    }
    check_len("value state slots", states.slots.len(), episodes.len())?;
    let unique: Vec<f32> = outcomes.iter().map(|o| mc_value(o)).collect();
    let values = episodes
        .iter()
        .zip(&states.slots)
        .enumerate()
        .map(|(e, (ep, slots))| {
            let queried = slots
                .iter()
                .map(|&s| unique.get(s).copied())
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| {
                    RlError::Invalid(format!(
                        "value state slots of episode {e} point past the {} unique prefixes",
                        unique.len()
                    ))
                })?;
            fill_values(ep, &queried).map_err(|err| err.at_episode(e))
        })
        .collect::<Result<Vec<_>>>()?;
    let stats = McStats {
        queries: states.queries(),
        unique: states.unique(),
        rollouts: outcomes.iter().map(Vec::len).sum(),
        truncated: outcomes.iter().flatten().filter(|o| o.truncated).count(),
        values: Summary::of(&unique),
    };
    Ok(VineValues { values, stats })
}

/// Step advantages `A_i = r_i + V[i+1] − V[i]` of one episode from its `n + 1` values.
pub fn step_advantages(episode: &Episode, values: &[f32]) -> Result<Vec<f32>> {
    let n = episode.n_steps();
    check_len("values", values.len(), n + 1)?;
    Ok((0..n)
        .map(|i| step_reward(episode, i) + values[i + 1] - values[i])
        .collect())
}

/// Broadcasts step advantages to the response tokens: each text token takes its step's value,
/// the EOS (if finished) the last text token's. Returns `response().len()` entries.
pub fn token_advantages(episode: &Episode, step_adv: &[f32]) -> Result<Vec<f32>> {
    check_len("step advantages", step_adv.len(), episode.n_steps())?;
    let mut out = Vec::with_capacity(episode.response().len());
    for (i, &a) in step_adv.iter().enumerate() {
        out.extend(std::iter::repeat_n(a, episode.step_range(i).len()));
    }
    if episode.finished() {
        out.push(step_adv[step_adv.len() - 1]);
    }
    Ok(out)
}

/// Per-token advantages of every episode from its value array (the output of
/// [`estimate_values`]).
pub fn advantages(episodes: &[Episode], values: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    check_len("value arrays", values.len(), episodes.len())?;
    episodes
        .iter()
        .zip(values)
        .enumerate()
        .map(|(e, (ep, v))| {
            let steps = step_advantages(ep, v).map_err(|err| err.at_episode(e))?;
            token_advantages(ep, &steps).map_err(|err| err.at_episode(e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(
        prompt: Vec<u32>,
        resp: Vec<u32>,
        finished: bool,
        reward: f32,
        starts: Vec<usize>,
    ) -> Episode {
        Episode::new(0, prompt, resp, finished, reward, starts).unwrap()
    }

    #[test]
    fn states_are_prompt_and_internal_boundaries() {
        let e = ep(
            vec![1, 2],
            vec![10, 11, 12, 13, 99],
            true,
            1.0,
            vec![0, 1, 3],
        );
        let s = value_states(std::slice::from_ref(&e), None);
        assert_eq!(
            s.prefixes,
            vec![vec![1, 2], vec![1, 2, 10], vec![1, 2, 10, 11, 12]]
        );
        assert_eq!(s.slots, vec![vec![0, 1, 2]]);
        assert_eq!(
            s.origins[2],
            StateRef {
                episode: 0,
                step: 2,
                len: 5
            }
        );
        let capped = value_states(std::slice::from_ref(&e), Some(1));
        assert_eq!(capped.prefixes.len(), 2);
        assert_eq!(
            value_states(std::slice::from_ref(&e), Some(0))
                .prefixes
                .len(),
            1
        );
    }

    #[test]
    fn token_advantages_follow_steps_and_eos_copies_the_last() {
        let e = ep(vec![1], vec![10, 11, 12, 13, 99], true, 1.0, vec![0, 1, 3]);
        let t = token_advantages(&e, &[0.5, -0.25, 0.75]).unwrap();
        assert_eq!(t, vec![0.5, -0.25, -0.25, 0.75, 0.75]);
        let u = ep(vec![1], vec![10, 11, 12], false, 0.0, vec![0, 2]);
        assert_eq!(
            token_advantages(&u, &[1.0, 2.0]).unwrap(),
            vec![1.0, 1.0, 2.0]
        );
    }

    #[test]
    fn mc_value_scores_truncation_zero() {
        let o = |reward, truncated| RolloutOutcome { reward, truncated };
        assert_eq!(mc_value(&[]), 0.0);
        assert_eq!(
            mc_value(&[o(1.0, false), o(1.0, true), o(0.0, false), o(1.0, false)]),
            0.5
        );
    }
}
