//! The analysis' outputs: `summary.json` (every number), `report.md`, `plots/*.svg`, and
//! `states.jsonl` / `ranking.jsonl` with each state's text, ground truth and predictions.
//!
//! Plots: MAE by step index per predictor (paper Fig. 7), predicted against true values (the
//! critic's bias, Fig. 8), and top-1 accuracy per predictor next to chance (Fig. 6).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use vine_data::Task;
use vine_model::Tokenizer;

use super::scoring::{chance_top1, errors_by_step, informative, pairwise, top1, ErrorStats};
use super::states::TrajectoryStats;
use super::{Settings, ValueAnalysis};
use crate::plot::{bar_chart, line_chart, scatter_chart, BarGroup, Series};

/// A value predictor under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
    /// The run's critic.
    Critic,
    /// The K-MC estimate with the `i`-th K of the settings.
    Mc(usize),
}

impl Predictor {
    fn name(self, ks: &[usize]) -> String {
        match self {
            Predictor::Critic => "critic".into(),
            Predictor::Mc(i) => format!("mc_k{}", ks[i]),
        }
    }

    fn pick(self, critic: Option<f64>, mc: &[f64]) -> Option<f64> {
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

/// Computes every number of the summary.
pub fn summarize(a: &ValueAnalysis, source: Source) -> Summary {
    let ks = &a.settings.ks;
    let truth: Vec<f64> = a.states.iter().map(|s| s.truth).collect();
    let steps: Vec<usize> = a.states.iter().map(|s| s.state.step).collect();
    let preds = predictors(a);
    let errors = preds
        .iter()
        .map(|&p| {
            let pred: Vec<f64> = a
                .states
                .iter()
                .map(|s| p.pick(s.critic, &s.mc).unwrap_or(f64::NAN))
                .collect();
            let (overall, by_step) = errors_by_step(&truth, &pred, &steps);
            PredictorErrors {
                name: p.name(ks),
                overall,
                by_step: by_step
                    .into_iter()
                    .map(|(step, errors)| StepErrors { step, errors })
                    .collect(),
            }
        })
        .collect();
    let informative_states: Vec<_> = a
        .ranked
        .iter()
        .map(|r| r.alternatives.iter().map(|x| x.truth).collect::<Vec<f64>>())
        .enumerate()
        .filter(|(_, t)| informative(t))
        .collect();
    let ranking = preds
        .iter()
        .map(|&p| {
            let (mut t1, mut pw) = (Vec::new(), Vec::new());
            for (i, truth) in &informative_states {
                let alts = &a.ranked[*i].alternatives;
                let pred: Vec<f64> = alts
                    .iter()
                    .map(|x| p.pick(x.critic, &x.mc).unwrap_or(f64::NAN))
                    .collect();
                t1.push(top1(truth, &pred));
                pw.extend(pairwise(truth, &pred));
            }
            PredictorRanking {
                name: p.name(ks),
                top1: mean_of(&t1),
                pairwise: mean_of(&pw),
            }
        })
        .collect();
    let chance: Vec<f64> = informative_states
        .iter()
        .map(|(_, t)| chance_top1(t))
        .collect();
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
        errors,
        ranking_states_tried: a.ranking_tried,
        ranking_states_kept: a.ranked.len(),
        ranking_states_informative: informative_states.len(),
        mean_alternatives: mean_of(&alts),
        chance_top1: mean_of(&chance),
        ranking,
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
    write_plots(a, &s, &plots)?;
    crate::atomic::write_file(&out_dir.join("report.md"), markdown(&s).as_bytes())?;
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

fn write_plots(a: &ValueAnalysis, s: &Summary, plots: &Path) -> Result<()> {
    let by_step: Vec<Series> = s
        .errors
        .iter()
        .map(|e| Series {
            label: e.name.clone(),
            points: e
                .by_step
                .iter()
                .map(|b| (b.step as f64, b.errors.mae))
                .collect(),
        })
        .collect();
    line_chart(
        &plots.join("mae_by_step.svg"),
        "Value error by reasoning step",
        "step index (0 = prompt)",
        "mean absolute error",
        &by_step,
    )?;
    let preds = predictors(a);
    let shown: Vec<Predictor> = preds
        .iter()
        .copied()
        .filter(|p| *p == Predictor::Critic || Some(p) == preds.last())
        .collect();
    let scatter: Vec<Series> = shown
        .iter()
        .map(|&p| Series {
            label: p.name(&a.settings.ks),
            points: a
                .states
                .iter()
                .filter_map(|e| Some((e.truth, p.pick(e.critic, &e.mc)?)))
                .collect(),
        })
        .collect();
    scatter_chart(
        &plots.join("predicted_vs_truth.svg"),
        "Predicted vs ground-truth values",
        "ground truth",
        "prediction",
        &scatter,
        true,
    )?;
    let mut cats: Vec<String> = s.ranking.iter().map(|r| r.name.clone()).collect();
    let mut values: Vec<f64> = s.ranking.iter().map(|r| r.top1.unwrap_or(0.0)).collect();
    cats.push("chance".into());
    values.push(s.chance_top1.unwrap_or(0.0));
    bar_chart(
        &plots.join("top1.svg"),
        "Picking the best next step (top-1 accuracy)",
        "top-1 accuracy",
        &cats,
        &[BarGroup {
            label: "top-1".into(),
            values,
        }],
    )
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

fn markdown(s: &Summary) -> String {
    let mut md = String::new();
    let src = &s.source;
    let _ = writeln!(
        md,
        "# Value-estimate analysis{}{}\n",
        src.run
            .as_ref()
            .map(|r| format!(": `{}`", r.display()))
            .unwrap_or_default(),
        src.checkpoint
            .as_ref()
            .map(|c| format!(" at `{c}`"))
            .unwrap_or_default()
    );
    let t = &s.trajectories;
    let _ = writeln!(
        md,
        "{} states from {} trajectories of the checkpoint's policy on training problems \
         (mean reward {:.3}, {:.1} steps; {} distinct states found). Ground truth: the mean of \
         {} MC rollouts per state (mean value {:.3}). K-MC estimates are K of those returns drawn \
         without replacement.\n",
        s.states,
        t.kept,
        t.mean_reward,
        t.mean_steps,
        t.states_found,
        s.settings.ground_truth,
        s.truth_mean
    );
    let steps: Vec<usize> = {
        let mut v: Vec<usize> = s
            .errors
            .iter()
            .flat_map(|e| e.by_step.iter().map(|x| x.step))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let _ = writeln!(md, "## Mean absolute error against the ground truth\n");
    let head: Vec<String> = steps.iter().map(|st| format!("step {st}")).collect();
    let _ = writeln!(md, "| predictor | MAE | bias | {} |", head.join(" | "));
    let _ = writeln!(md, "| --- | ---: | ---: |{}", " ---: |".repeat(steps.len()));
    for e in &s.errors {
        let cells: Vec<String> = steps
            .iter()
            .map(|st| {
                let x = e.by_step.iter().find(|b| b.step == *st);
                x.map(|b| format!("{:.3} ({})", b.errors.mae, b.errors.states))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            e.name,
            num(e.overall.map(|o| o.mae), 3),
            num(e.overall.map(|o| o.bias), 3),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        md,
        "\nBy step: MAE (states). Bias is the mean of prediction − truth.\n\n\
         ![MAE by step](plots/mae_by_step.svg)\n\n![Predicted vs truth](plots/predicted_vs_truth.svg)\n"
    );
    let _ = writeln!(
        md,
        "## Ranking alternative next steps\n\n{} states tried with {} continuations each at \
         temperature {}; {} had at least {} distinct next steps (mean {}), of which {} have \
         alternatives that differ in ground truth and enter the averages.\n",
        s.ranking_states_tried,
        s.settings.alternatives,
        s.settings.alternative_temperature,
        s.ranking_states_kept,
        s.settings.min_distinct,
        num(s.mean_alternatives, 1),
        s.ranking_states_informative
    );
    let _ = writeln!(
        md,
        "| predictor | top-1 | pairwise |\n| --- | ---: | ---: |"
    );
    for r in &s.ranking {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            r.name,
            num(r.top1, 3),
            num(r.pairwise, 3)
        );
    }
    let _ = writeln!(md, "| chance | {} | 0.500 |", num(s.chance_top1, 3));
    let _ = writeln!(md, "\n![Top-1 accuracy](plots/top1.svg)");
    md
}
