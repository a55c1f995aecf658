//! The analysis' numbers: `summary.json` (errors by predictor and step, ranking accuracies,
//! chance) and `states.jsonl` / `ranking.jsonl` with each state's text, ground truth and
//! predictions. [`super::report`] lays the summary out as `report.md` and plots.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use vine_data::Task;
use vine_model::Tokenizer;

use super::scoring::{chance_top1, errors_by_step, informative, pairwise, top1, ErrorStats};
use super::states::TrajectoryStats;
use super::{Settings, ValueAnalysis};

/// A value predictor under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
    /// The run's critic.
    Critic,
    /// The K-MC estimate with the `i`-th K of the settings.
    Mc(usize),
}

impl Predictor {
    /// `critic` or `mc_kK`.
    pub fn name(self, ks: &[usize]) -> String {
        match self {
            Predictor::Critic => "critic".into(),
            Predictor::Mc(i) => format!("mc_k{}", ks[i]),
        }
    }

    /// This predictor's value among a state's predictions.
    pub fn pick(self, critic: Option<f64>, mc: &[f64]) -> Option<f64> {
        match self {
            Predictor::Critic => critic,
            Predictor::Mc(i) => mc.get(i).copied(),
        }
    }
}

/// Where the analysed checkpoint came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Source {
    /// Run directory.
    pub run: Option<PathBuf>,
    /// Checkpoint name (`iter_000010`).
    pub checkpoint: Option<String>,
    /// Its iteration.
    pub iteration: Option<u64>,
    /// Training method of the run.
    pub method: Option<String>,
}

/// Errors of one predictor.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorErrors {
    /// `critic` or `mc_kK`.
    pub name: String,
    /// Over every state.
    pub overall: Option<ErrorStats>,
    /// By value index (0 = the prompt).
    pub by_step: Vec<StepErrors>,
}

/// Errors at one step index.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepErrors {
    /// Value index (0 = the prompt).
    pub step: usize,
    /// The errors there.
    #[serde(flatten)]
    pub errors: ErrorStats,
}

/// Ranking accuracy of one predictor.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorRanking {
    /// `critic`, `mc_kK`.
    pub name: String,
    /// Mean expected top-1 accuracy over informative states.
    pub top1: Option<f64>,
    /// Mean pairwise accuracy over informative states.
    pub pairwise: Option<f64>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The checkpoint.
    pub source: Source,
    /// The settings.
    pub settings: Settings,
    /// The sampled trajectories.
    pub trajectories: TrajectoryStats,
    /// States evaluated.
    pub states: usize,
    /// Mean ground-truth value.
    pub truth_mean: f64,
    /// Value-prediction errors per predictor.
    pub errors: Vec<PredictorErrors>,
    /// States the ranking test tried.
    pub ranking_states_tried: usize,
    /// With at least `min_distinct` distinct next steps.
    pub ranking_states_kept: usize,
    /// Of those, with alternatives that differ in ground truth.
    pub ranking_states_informative: usize,
    /// Mean distinct alternatives of the kept states.
    pub mean_alternatives: Option<f64>,
    /// Expected top-1 accuracy of a random pick.
    pub chance_top1: Option<f64>,
    /// Ranking accuracy per predictor.
    pub ranking: Vec<PredictorRanking>,
    /// Wall-clock seconds of the analysis.
    pub seconds: f64,
}

fn mean_of(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The predictors present: the critic when it predicted, then every K.
pub fn predictors(a: &ValueAnalysis) -> Vec<Predictor> {
    let critic = a.states.first().is_some_and(|s| s.critic.is_some());
    critic
        .then_some(Predictor::Critic)
        .into_iter()
        .chain((0..a.settings.ks.len()).map(Predictor::Mc))
        .collect()
}

fn errors(a: &ValueAnalysis, p: Predictor) -> PredictorErrors {
    let truth: Vec<f64> = a.states.iter().map(|s| s.truth).collect();
    let steps: Vec<usize> = a.states.iter().map(|s| s.state.step).collect();
    let pred: Vec<f64> = a
        .states
        .iter()
        .map(|s| p.pick(s.critic, &s.mc).unwrap_or(f64::NAN))
        .collect();
    let (overall, by_step) = errors_by_step(&truth, &pred, &steps);
    PredictorErrors {
        name: p.name(&a.settings.ks),
        overall,
        by_step: by_step
            .into_iter()
            .map(|(step, errors)| StepErrors { step, errors })
            .collect(),
    }
}

/// Ranked states whose alternatives differ in ground truth: `(index, truth per alternative)`.
fn informative_states(a: &ValueAnalysis) -> Vec<(usize, Vec<f64>)> {
    a.ranked
        .iter()
        .map(|r| r.alternatives.iter().map(|x| x.truth).collect::<Vec<f64>>())
        .enumerate()
        .filter(|(_, t)| informative(t))
        .collect()
}

fn ranking(a: &ValueAnalysis, p: Predictor, states: &[(usize, Vec<f64>)]) -> PredictorRanking {
    let (mut t1, mut pw) = (Vec::new(), Vec::new());
    for (i, truth) in states {
        let pred: Vec<f64> = a.ranked[*i]
            .alternatives
            .iter()
            .map(|x| p.pick(x.critic, &x.mc).unwrap_or(f64::NAN))
            .collect();
        t1.push(top1(truth, &pred));
        pw.extend(pairwise(truth, &pred));
    }
    PredictorRanking {
        name: p.name(&a.settings.ks),
        top1: mean_of(&t1),
        pairwise: mean_of(&pw),
    }
}

/// Computes every number of the summary.
pub fn summarize(a: &ValueAnalysis, source: Source) -> Summary {
    let preds = predictors(a);
    let informative = informative_states(a);
    let truth: Vec<f64> = a.states.iter().map(|s| s.truth).collect();
    let chance: Vec<f64> = informative.iter().map(|(_, t)| chance_top1(t)).collect();
    let alts: Vec<f64> = a
        .ranked
        .iter()
        .map(|r| r.alternatives.len() as f64)
        .collect();
    Summary {
        source,
        settings: a.settings.clone(),
        trajectories: a.trajectories,
        states: a.states.len(),
        truth_mean: mean_of(&truth).unwrap_or(0.0),
        errors: preds.iter().map(|&p| errors(a, p)).collect(),
        ranking_states_tried: a.ranking_tried,
        ranking_states_kept: a.ranked.len(),
        ranking_states_informative: informative.len(),
        mean_alternatives: mean_of(&alts),
        chance_top1: mean_of(&chance),
        ranking: preds.iter().map(|&p| ranking(a, p, &informative)).collect(),
        seconds: a.seconds,
    }
}

/// Writes every output into `out_dir`; returns the summary.
pub fn write(
    a: &ValueAnalysis,
    source: Source,
    tokenizer: &Tokenizer,
    task: &Task,
    out_dir: &Path,
) -> Result<Summary> {
    let plots = out_dir.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating `{}`", plots.display()))?;
    let s = summarize(a, source);
    write_details(a, tokenizer, task, out_dir)?;
    super::report::write_plots(a, &s, &plots)?;
    let md = super::report::markdown(&s);
    crate::atomic::write_file(&out_dir.join("report.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(&s).context("serialising summary.json")?;
    crate::atomic::write_file(&out_dir.join("summary.json"), json.as_bytes())?;
    Ok(s)
}

fn write_details(a: &ValueAnalysis, tk: &Tokenizer, task: &Task, out_dir: &Path) -> Result<()> {
    let ks = &a.settings.ks;
    let text = |ids: &[u32]| tk.decode(ids, false).context("decoding a state");
    let mc = |v: &[f64]| -> serde_json::Map<String, serde_json::Value> {
        ks.iter()
            .zip(v)
            .map(|(k, x)| (format!("k{k}"), json!(x)))
            .collect()
    };
    let mut states = String::new();
    for e in &a.states {
        let s = &e.state;
        let line = json!({
            "problem": task.train()[s.example].id,
            "step": s.step,
            "response": text(&s.prefix[s.prompt_len..])?,
            "truth": e.truth,
            "critic": e.critic,
            "mc": mc(&e.mc),
        });
        states.push_str(&format!("{line}\n"));
    }
    crate::atomic::write_file(&out_dir.join("states.jsonl"), states.as_bytes())?;
    let mut ranking = String::new();
    for r in &a.ranked {
        let alts = r
            .alternatives
            .iter()
            .map(|x| {
                Ok(json!({
                    "step": text(&x.step.tokens)?,
                    "terminal": x.step.terminal_reward.is_some(),
                    "truth": x.truth,
                    "critic": x.critic,
                    "mc": mc(&x.mc),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let line = json!({
            "problem": task.train()[r.state.example].id,
            "step": r.state.step,
            "response": text(&r.state.prefix[r.state.prompt_len..])?,
            "alternatives": alts,
        });
        ranking.push_str(&format!("{line}\n"));
    }
    crate::atomic::write_file(&out_dir.join("ranking.jsonl"), ranking.as_bytes())
}
