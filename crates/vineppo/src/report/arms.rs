//! An experiment's numbers per arm, over seeds: what `summary.json` holds and `report.md` lays
//! out ([`super::experiment`]). Final accuracy as mean ± sample std with every seed's value, the
//! mean curve's peak, where each arm's mean curve first reaches the baseline's peak (and the
//! baseline's steps and wall-clock to its peak over the arm's: the paper's "fewer steps, less
//! wall-clock"), KL at the end, training seconds per iteration and the share spent estimating
//! values. The math is in [`super::aggregate`].

use std::path::PathBuf;

use serde::Serialize;

use super::aggregate::{
    aggregate, eval_points, final_kl, first_reaching, peak, seconds_per_iteration,
    value_time_share, SeedPoint, Spread,
};
use super::RunData;

/// The runs of one arm that exist so far.
#[derive(Debug, Clone)]
pub struct ArmRuns {
    /// Arm name (directory prefix and legend label).
    pub name: String,
    /// Seeds the experiment asks for.
    pub seeds: Vec<u64>,
    /// `(seed, run, complete)` for every seed whose run has logged metrics.
    pub runs: Vec<(u64, RunData, bool)>,
}

/// One seed's run in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    /// The seed.
    pub seed: u64,
    /// Run directory.
    pub dir: PathBuf,
    /// Whether the run has finished.
    pub complete: bool,
    /// Last iteration logged.
    pub iterations: u64,
    /// Last held-out pass@1.
    pub final_pass1: Option<f64>,
    /// Wall-clock seconds so far.
    pub elapsed_s: Option<f64>,
}

/// When an arm's mean curve first reaches the baseline's peak.
#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    /// Evaluation iteration.
    pub iteration: u64,
    /// Mean optimizer steps there.
    pub steps: f64,
    /// Mean wall-clock seconds there.
    pub elapsed_s: f64,
    /// Baseline steps to its peak over this arm's (`> 1`: fewer steps than the baseline).
    pub steps_ratio: Option<f64>,
    /// Baseline wall-clock to its peak over this arm's.
    pub time_ratio: Option<f64>,
}

/// One arm in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ArmSummary {
    /// Arm name.
    pub name: String,
    /// Every run found.
    pub runs: Vec<SeedSummary>,
    /// Seeds the experiment asks for.
    pub seeds: usize,
    /// Last held-out pass@1 over seeds.
    pub final_pass1: Option<Spread>,
    /// The best point of the mean curve.
    pub peak: Option<SeedPoint>,
    /// Where the mean curve first reaches the baseline's peak; `None`: not reached (or no
    /// baseline).
    pub reach_baseline_peak: Option<Reach>,
    /// Last KL to the reference over seeds.
    pub final_kl: Option<Spread>,
    /// Training seconds per iteration, mean over seeds.
    pub seconds_per_iteration: Option<f64>,
    /// Share of an iteration spent estimating values, mean over seeds.
    pub value_time_share: Option<f64>,
    /// The mean curve with its spread at every shared evaluation.
    pub curve: Vec<SeedPoint>,
}

/// What `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    /// Report title.
    pub title: String,
    /// The arm whose peak the efficiency comparison targets.
    pub baseline: Option<String>,
    /// The baseline's peak (mean curve).
    pub baseline_peak: Option<SeedPoint>,
    /// Every arm, in experiment order.
    pub arms: Vec<ArmSummary>,
}

/// `base / arm`, when both points lie after training started (a peak before any update gives
/// no meaningful ratio).
fn ratio(target: &SeedPoint, reach: &SeedPoint, x: fn(&SeedPoint) -> f64) -> Option<f64> {
    let trained = |p: &SeedPoint| p.iteration > 0 && x(p) > 0.0;
    (trained(target) && trained(reach)).then(|| x(target) / x(reach))
}

/// Aggregates every arm and compares each with `baseline`'s peak.
pub fn summarize(arms: &[ArmRuns], title: &str, baseline: Option<&str>) -> ExperimentSummary {
    let curve = |a: &ArmRuns| {
        let curves: Vec<_> = a.runs.iter().map(|(_, r, _)| eval_points(r)).collect();
        aggregate(&curves)
    };
    let baseline_peak = baseline
        .and_then(|b| arms.iter().find(|a| a.name == b))
        .and_then(|a| peak(&curve(a)).copied());
    let arms = arms
        .iter()
        .map(|a| {
            let curve = curve(a);
            let reach = baseline_peak.and_then(|target| {
                let p = first_reaching(&curve, target.pass1.mean)?;
                Some(Reach {
                    iteration: p.iteration,
                    steps: p.steps,
                    elapsed_s: p.elapsed_s,
                    steps_ratio: ratio(&target, p, |q| q.steps),
                    time_ratio: ratio(&target, p, |q| q.elapsed_s),
                })
            });
            arm_summary(a, curve, reach)
        })
        .collect();
    ExperimentSummary {
        title: title.to_string(),
        baseline: baseline.map(str::to_string),
        baseline_peak,
        arms,
    }
}

fn arm_summary(a: &ArmRuns, curve: Vec<SeedPoint>, reach: Option<Reach>) -> ArmSummary {
    let runs: Vec<SeedSummary> = a
        .runs
        .iter()
        .map(|(seed, r, complete)| {
            let last = r.metrics.last();
            SeedSummary {
                seed: *seed,
                dir: r.dir.clone(),
                complete: *complete,
                iterations: last.and_then(|m| m.get("iteration")).unwrap_or(0.0) as u64,
                final_pass1: eval_points(r).last().map(|p| p.pass1),
                elapsed_s: last.and_then(|m| m.get("time/elapsed_s")),
            }
        })
        .collect();
    let per_seed = |f: &dyn Fn(&RunData) -> Option<f64>| -> Vec<f64> {
        a.runs.iter().filter_map(|(_, r, _)| f(r)).collect()
    };
    let mean = |v: Vec<f64>| Spread::of(&v).map(|s| s.mean);
    let finals: Vec<f64> = runs.iter().filter_map(|s| s.final_pass1).collect();
    ArmSummary {
        name: a.name.clone(),
        final_pass1: Spread::of(&finals),
        peak: peak(&curve).copied(),
        reach_baseline_peak: reach,
        final_kl: Spread::of(&per_seed(&final_kl)),
        seconds_per_iteration: mean(per_seed(&seconds_per_iteration)),
        value_time_share: mean(per_seed(&value_time_share)),
        curve,
        runs,
        seeds: a.seeds.len(),
    }
}
