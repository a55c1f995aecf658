//! `report.md` and the plots of the value analysis: MAE by step index per predictor (paper
//! Fig. 7), predicted against true values (the critic's bias, Fig. 8), and top-1 accuracy per
//! predictor next to chance (Fig. 6).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::summary::{predictors, Predictor, Summary};
use super::ValueAnalysis;
use crate::plot::{bar_chart, line_chart, scatter_chart, BarGroup, Series};

/// Draws `plots/*.svg`.
pub fn write_plots(a: &ValueAnalysis, s: &Summary, plots: &Path) -> Result<()> {
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

/// The Markdown report of a summary.
pub fn markdown(s: &Summary) -> String {
    let mut md = String::new();
    let src = &s.source;
    let run = src.run.as_ref().map(|r| format!(": `{}`", r.display()));
    let at = src.checkpoint.as_ref().map(|c| format!(" at `{c}`"));
    let _ = writeln!(
        md,
        "# Value-estimate analysis{}{}\n",
        run.unwrap_or_default(),
        at.unwrap_or_default()
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
    errors_table(&mut md, s);
    ranking_table(&mut md, s);
    md
}

fn errors_table(md: &mut String, s: &Summary) {
    let mut steps: Vec<usize> = s
        .errors
        .iter()
        .flat_map(|e| e.by_step.iter().map(|x| x.step))
        .collect();
    steps.sort_unstable();
    steps.dedup();
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
        "\nBy step: MAE (states); step 0 is the prompt. Bias is the mean of prediction − truth.\n\n\
         ![MAE by step](plots/mae_by_step.svg)\n\n![Predicted vs truth](plots/predicted_vs_truth.svg)\n"
    );
}

fn ranking_table(md: &mut String, s: &Summary) {
    let _ = writeln!(
        md,
        "## Ranking alternative next steps\n\n{} states tried with {} continuations each at \
         temperature {}; {} had at least {} distinct next steps (mean {}), of which {} have \
         alternatives that differ in ground truth and enter the averages. Top-1 is the expected \
         accuracy of picking a truly best step, ties broken uniformly; pairwise counts correctly \
         ordered pairs with different ground truth.\n",
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
        let (t, p) = (num(r.top1, 3), num(r.pairwise, 3));
        let _ = writeln!(md, "| {} | {t} | {p} |", r.name);
    }
    let _ = writeln!(md, "| chance | {} | 0.500 |", num(s.chance_top1, 3));
    let _ = writeln!(md, "\n![Top-1 accuracy](plots/top1.svg)");
}
