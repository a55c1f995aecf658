//! `vineppo analyze-values`: how accurate are value estimates? The paper's value-prediction
//! analysis (spec §4.4, paper §6 / Fig. 6–8) on a checkpoint of a run.
//!
//! 1. **States.** Trajectories are sampled by the checkpoint's policy on training problems with
//!    the run's sampling settings; their value states are the prompt and every internal step
//!    boundary, deduplicated token prefixes exactly as VinePPO's (`vine_rl::credit::vine`). A
//!    seeded subset of `states` of them is kept.
//! 2. **Ground truth.** Each state gets `M` MC rollouts (256 in the paper), one engine request
//!    with `n = M` so the state is prefilled once; its value is their mean reward (a rollout cut by
//!    a length limit scores 0, as in training).
//! 3. **Predictions.** The critic's value at the state's last token when the run has one (PPO),
//!    and K-sample MC estimates for every K in `ks`, drawn from the same M returns without
//!    replacement (the reference analyzer's way: no extra sampling). Reported: mean absolute
//!    error and bias overall and by step index (Fig. 7's "MAE over reasoning steps"; the paper
//!    finds 0.11 for PPO's critic vs 0.03 for VinePPO's MC on DeepSeekMath 7B).
//! 4. **Ranking test.** At each of `ranking_states` states, `alternatives` continuations are
//!    sampled at `alternative_temperature` (1 in the paper) and cut at the end of their first
//!    step ([`alternatives`]); states with at least `min_distinct` distinct next steps are kept.
//!    Each next step's value is its own M-rollout MC estimate (a step that ends the response is
//!    worth its reward); the critic and the K-MC estimates each pick their favourite and are
//!    scored on picking the truly best one (top-1 of 5: Fig. 6, where PPO's critic "barely
//!    outperforms a random baseline" of 20%), with chance level and pairwise accuracy beside it
//!    ([`scoring`]).
//!
//! Deviations from the reference analyzers: states and steps are token prefixes (spec §7.3);
//! ground-truth rollouts use the run's training sampling settings (the reference samples them at
//! temperature 1), so the truth is the value of the policy that training samples from, which is
//! what both the critic and VinePPO's MC estimates target; the prompt state is included in the
//! ranking test (the reference starts at the first step boundary); top-1 is averaged over
//! informative states with ties broken in expectation (see [`scoring`]).

pub mod alternatives;
pub mod critic;
pub mod ranking;
pub mod report;
pub mod scoring;
pub mod states;
pub mod summary;

use std::time::Instant;

use anyhow::{bail, Result};
use vine_data::Task;
use vine_model::{CausalLm, Tokenizer};
use vine_rollout::{Engine, SamplingParams};

use crate::progress::Bars;
use critic::StateValues;
use ranking::RankedState;
use states::{State, TrajectoryStats};

/// What to measure and how much to sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// Value states to evaluate.
    pub states: usize,
    /// MC rollouts per state for the ground truth (M).
    pub ground_truth: usize,
    /// Sample sizes of the K-MC estimates (each at most M).
    pub ks: Vec<usize>,
    /// Alternative continuations sampled per state in the ranking test.
    pub alternatives: usize,
    /// Fewest distinct next steps for a state to enter the ranking test.
    pub min_distinct: usize,
    /// States used in the ranking test (the first of the evaluated states).
    pub ranking_states: usize,
    /// Sampling temperature of the alternatives.
    pub alternative_temperature: f64,
    /// Seed of everything sampled.
    pub seed: u64,
}

impl Settings {
    /// Fails with the flag to fix when the settings cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.states == 0 || self.ground_truth == 0 {
            bail!("--states and --ground-truth must be at least 1");
        }
        if let Some(k) = self.ks.iter().find(|&&k| k == 0 || k > self.ground_truth) {
            bail!(
                "--ks: K = {k} must be between 1 and --ground-truth = {} (K-MC estimates are drawn from the ground-truth returns)",
                self.ground_truth
            );
        }
        if self.alternatives < 2 || self.min_distinct < 2 || self.min_distinct > self.alternatives {
            bail!(
                "--alternatives = {} and --min-distinct = {}: need 2 ≤ min-distinct ≤ alternatives (the paper: 5 and 3)",
                self.alternatives,
                self.min_distinct
            );
        }
        if !(self.alternative_temperature > 0.0 && self.alternative_temperature.is_finite()) {
            bail!("--alternative-temperature must be > 0");
        }
        Ok(())
    }
}

/// The model, task and machinery the analysis samples with.
pub struct Inputs<'a> {
    /// The checkpoint's policy.
    pub policy: &'a dyn CausalLm,
    /// The checkpoint's critic, if the run trains one.
    pub critic: Option<&'a dyn StateValues>,
    /// Tokenizer of the policy.
    pub tokenizer: &'a Tokenizer,
    /// The run's task (training problems are analysed).
    pub task: &'a Task,
    /// Generation engine.
    pub engine: &'a Engine,
    /// The run's training sampling settings (trajectories and ground-truth rollouts).
    pub sampling: SamplingParams,
    /// Stop strings (the prompt template's and the run's).
    pub stop_strings: Vec<String>,
    /// EOS id, appended to finished trajectories.
    pub eos: u32,
    /// Progress bars.
    pub bars: Bars,
}

/// A state with its ground truth and predictions.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The state.
    pub state: State,
    /// Mean of the M ground-truth returns.
    pub truth: f64,
    /// The critic's prediction.
    pub critic: Option<f64>,
    /// K-MC estimate for each K of [`Settings::ks`].
    pub mc: Vec<f64>,
}

/// Everything the analysis measured; [`summary`] turns it into numbers and files.
#[derive(Debug, Clone)]
pub struct ValueAnalysis {
    /// The settings used.
    pub settings: Settings,
    /// What sampling the trajectories gave.
    pub trajectories: TrajectoryStats,
    /// The evaluated states.
    pub states: Vec<Evaluated>,
    /// States the ranking test tried.
    pub ranking_tried: usize,
    /// States with enough distinct alternatives.
    pub ranked: Vec<RankedState>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Runs the whole analysis (see the module docs).
pub fn analyze(inputs: &Inputs<'_>, settings: &Settings) -> Result<ValueAnalysis> {
    settings.validate()?;
    let start = Instant::now();
    let (states, trajectories) = states::sample_states(inputs, settings)?;
    if states.is_empty() {
        bail!("the sampled trajectories gave no value states (every response was empty or could not be split into steps)");
    }
    let prefixes: Vec<Vec<u32>> = states.iter().map(|s| s.prefix.clone()).collect();
    let returns = states::ground_truth(inputs, settings, &states, &prefixes, states::STAGE_STATES)?;
    let critic = critic::predict(inputs.critic, &prefixes)?;
    let evaluated: Vec<Evaluated> = states
        .iter()
        .zip(&returns)
        .enumerate()
        .map(|(i, (s, r))| Evaluated {
            state: s.clone(),
            truth: scoring::mean(r),
            critic: critic.as_ref().map(|c| f64::from(c[i])),
            mc: ranking::mc_estimates(r, &settings.ks, settings.seed, states::STAGE_STATES, i),
        })
        .collect();
    let ranked_from: Vec<&State> = states.iter().take(settings.ranking_states).collect();
    let ranked = ranking::rank(inputs, settings, &ranked_from)?;
    Ok(ValueAnalysis {
        settings: settings.clone(),
        trajectories,
        states: evaluated,
        ranking_tried: ranked_from.len(),
        ranked,
        seconds: start.elapsed().as_secs_f64(),
    })
}
