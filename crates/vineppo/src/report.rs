//! `RUN_DIR/report.md`: plots and a summary table of one or more runs, from their
//! `metrics.jsonl`.
//!
//! `vineppo report RUN_DIR [RUN_DIR…] [--out DIR]` overlays several runs (e.g. VinePPO vs PPO) in
//! one set of plots; the trainer writes a single-run report into its run directory at the end.
//! [`aggregate`] folds the runs of several seeds into mean curves with their spread, and
//! [`experiment`] lays those out for `vineppo experiment`.

pub mod aggregate;
pub mod arms;
pub mod experiment;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::metrics::{read_metrics, Metrics};
use crate::plot::{bar_chart, line_chart, BarGroup, Series};

/// Metric key of held-out pass@1.
pub const EVAL_KEY: &str = "eval/pass1";
/// Per-stage timers shown in the time-per-stage chart, in pipeline order.
pub const STAGES: [&str; 8] = [
    "generate",
    "values",
    "reward",
    "reference",
    "update",
    "validation",
    "eval",
    "checkpoint",
];

/// The metrics of one run and how to label it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Run directory.
    pub dir: PathBuf,
    /// Legend label.
    pub label: String,
    /// One entry per `metrics.jsonl` line.
    pub metrics: Vec<Metrics>,
}

/// Reads `dir/metrics.jsonl`; the label is `method seed N` from `dir/config.toml` when present.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let path = dir.join("metrics.jsonl");
    if !path.exists() {
        bail!(
            "`{}` has no metrics.jsonl; is it a vineppo run directory?",
            dir.display()
        );
    }
    let metrics = read_metrics(&path)?;
    Ok(RunData {
        dir: dir.to_path_buf(),
        label: run_label(dir),
        metrics,
    })
}

fn run_label(dir: &Path) -> String {
    let fallback = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) else {
        return fallback;
    };
    let Ok(v) = text.parse::<toml::Table>() else {
        return fallback;
    };
    let method = v
        .get("method")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| {
            v.get("credit")
                .and_then(|c| c.get("kind"))
                .and_then(|k| k.as_str())
                .map(|k| match k {
                    "vine" => "VinePPO".to_string(),
                    "gae" => "PPO".to_string(),
                    other => other.to_uppercase(),
                })
        });
    let seed = v
        .get("run")
        .and_then(|r| r.get("seed"))
        .and_then(|s| s.as_integer());
    match (method, seed) {
        (Some(m), Some(s)) => format!("{m} (seed {s})"),
        (Some(m), None) => m,
        _ => fallback,
    }
}

/// Points `(x, y)` of every line that has both keys; `x_scale` rescales x.
pub fn points(run: &RunData, x_key: &str, y_key: &str, x_scale: f64) -> Vec<(f64, f64)> {
    run.metrics
        .iter()
        .filter_map(|m| Some((m.get(x_key)? * x_scale, m.get(y_key)?)))
        .collect()
}

fn series(runs: &[RunData], x_key: &str, y_key: &str, x_scale: f64) -> Vec<Series> {
    runs.iter()
        .map(|r| Series {
            label: r.label.clone(),
            points: points(r, x_key, y_key, x_scale),
        })
        .collect()
}

/// Mean seconds per iteration of each stage in [`STAGES`].
pub fn stage_means(run: &RunData) -> Vec<f64> {
    let iters: Vec<&Metrics> = run
        .metrics
        .iter()
        .filter(|m| m.get("iteration").is_some_and(|i| i >= 1.0))
        .collect();
    STAGES
        .iter()
        .map(|s| {
            let key = format!("timing/{s}_s");
            let total: f64 = iters.iter().filter_map(|m| m.get(&key)).sum();
            total / iters.len().max(1) as f64
        })
        .collect()
}

/// Writes `out_dir/report.md` and `out_dir/plots/*.svg` for `runs`; returns the report's path.
pub fn write_report(runs: &[RunData], out_dir: &Path, title: &str) -> Result<PathBuf> {
    let plots = out_dir.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating `{}`", plots.display()))?;
    let charts: [(&str, &str, &str, &str, &str, f64); 7] = [
        (
            "accuracy_vs_iteration",
            "Held-out accuracy",
            "iteration",
            "iteration",
            EVAL_KEY,
            1.0,
        ),
        (
            "accuracy_vs_steps",
            "Held-out accuracy vs gradient steps",
            "optimizer steps",
            "progress/optimizer_steps",
            EVAL_KEY,
            1.0,
        ),
        (
            "accuracy_vs_time",
            "Held-out accuracy vs wall-clock",
            "minutes",
            "time/elapsed_s",
            EVAL_KEY,
            1.0 / 60.0,
        ),
        (
            "accuracy_vs_kl",
            "Held-out accuracy vs KL to the reference",
            "KL(π‖π_ref), per-sequence sum",
            "kl/k1_seq_mean",
            EVAL_KEY,
            1.0,
        ),
        (
            "reward",
            "Mean training reward",
            "iteration",
            "iteration",
            "reward/mean",
            1.0,
        ),
        (
            "response_length",
            "Mean response length",
            "iteration",
            "iteration",
            "response/length_mean",
            1.0,
        ),
        (
            "value_queries",
            "Value queries per iteration (VinePPO)",
            "iteration",
            "iteration",
            "vine/unique_states",
            1.0,
        ),
    ];
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    summary_table(&mut md, runs);
    for (file, chart_title, x_label, x_key, y_key, scale) in charts {
        let s = series(runs, x_key, y_key, scale);
        if s.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        let y_label = if y_key == EVAL_KEY { "pass@1" } else { y_key };
        line_chart(
            &plots.join(format!("{file}.svg")),
            chart_title,
            x_label,
            y_label,
            &s,
        )?;
        let _ = writeln!(
            md,
            "## {chart_title}\n\n![{chart_title}](plots/{file}.svg)\n"
        );
    }
    let groups: Vec<BarGroup> = runs
        .iter()
        .map(|r| BarGroup {
            label: r.label.clone(),
            values: stage_means(r),
        })
        .collect();
    let cats: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    bar_chart(
        &plots.join("stage_time.svg"),
        "Time per stage (mean seconds per iteration)",
        "seconds",
        &cats,
        &groups,
    )?;
    let _ = writeln!(
        md,
        "## Time per stage\n\n![Time per stage](plots/stage_time.svg)\n"
    );
    let path = out_dir.join("report.md");
    crate::atomic::write_file(&path, md.as_bytes())?;
    Ok(path)
}

fn summary_table(md: &mut String, runs: &[RunData]) {
    let _ = writeln!(md, "| run | iterations | held-out pass@1: start → end (best @ iter) | wall-clock | KL at end |");
    let _ = writeln!(md, "| --- | ---: | --- | ---: | ---: |");
    for r in runs {
        let evals = points(r, "iteration", EVAL_KEY, 1.0);
        let acc = match (evals.first(), evals.last()) {
            (Some(a), Some(b)) => {
                let best = evals
                    .iter()
                    .copied()
                    .fold(
                        (0.0, f64::NEG_INFINITY),
                        |m, p| if p.1 > m.1 { p } else { m },
                    );
                format!(
                    "{:.1}% → {:.1}% ({:.1}% @ {})",
                    a.1 * 100.0,
                    b.1 * 100.0,
                    best.1 * 100.0,
                    best.0
                )
            }
            _ => "–".into(),
        };
        let last = r.metrics.last();
        let iters = last.and_then(|m| m.get("iteration")).unwrap_or(0.0);
        let minutes = last
            .and_then(|m| m.get("time/elapsed_s"))
            .map(|s| format!("{:.1} min", s / 60.0))
            .unwrap_or_else(|| "–".into());
        let kl = r
            .metrics
            .iter()
            .rev()
            .find_map(|m| m.get("kl/k1_seq_mean"))
            .map(|k| format!("{k:.4}"))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(md, "| {} | {iters} | {acc} | {minutes} | {kl} |", r.label);
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_run(dir: &Path, kind: &str, gain: f64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!("[credit]\nkind = \"{kind}\"\n[run]\nseed = 3\n"),
        )
        .unwrap();
        let mut log = crate::metrics::MetricsLog::open(dir, None).unwrap();
        for it in 0..4u64 {
            let mut m = Metrics::new(it);
            m.set("time/elapsed_s", it as f64 * 30.0);
            m.set(EVAL_KEY, 0.3 + gain * it as f64);
            if it > 0 {
                m.set("reward/mean", 0.4);
                m.set("timing/generate_s", 2.0);
                m.set("timing/update_s", 1.0);
            }
            log.append(&m).unwrap();
        }
    }

    #[test]
    fn report_overlays_runs_with_labels_and_summary() {
        let root = tempfile::tempdir().unwrap();
        fake_run(&root.path().join("a"), "vine", 0.05);
        fake_run(&root.path().join("b"), "gae", 0.01);
        let runs = vec![
            load_run(&root.path().join("a")).unwrap(),
            load_run(&root.path().join("b")).unwrap(),
        ];
        assert_eq!(runs[0].label, "VinePPO (seed 3)");
        assert_eq!(stage_means(&runs[0])[0], 2.0);
        let out = match std::env::var_os("VINEPPO_TEST_KEEP") {
            Some(dir) => PathBuf::from(dir),
            None => root.path().join("out"),
        };
        let path = write_report(&runs, &out, "VinePPO vs PPO").unwrap();
        let md = std::fs::read_to_string(path).unwrap();
        assert!(
            md.contains("| VinePPO (seed 3) | 3 | 30.0% → 45.0% (45.0% @ 3)"),
            "{md}"
        );
        assert!(md.contains("plots/accuracy_vs_time.svg"));
        assert!(out.join("plots/stage_time.svg").exists());
        assert!(
            std::fs::read_to_string(out.join("plots/accuracy_vs_iteration.svg"))
                .unwrap()
                .contains("PPO (seed 3)")
        );
    }

    #[test]
    fn missing_metrics_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let err = format!("{:#}", load_run(root.path()).unwrap_err());
        assert!(err.contains("no metrics.jsonl"), "{err}");
    }
}
