//! The report of a multi-arm, multi-seed experiment (`vineppo experiment`): `report.md`, band
//! plots in `plots/` and `summary.json` in the experiment directory.
//!
//! What it shows, and the paper's figure each item reproduces at small scale:
//! - held-out pass@1 against gradient steps, wall-clock and KL to the reference, one mean line
//!   per arm over its seeds with a min–max (or ±std) band (paper Fig. 1 and 4: accuracy vs steps
//!   and vs wall-clock; Fig. 5: accuracy vs KL);
//! - final accuracy per arm as mean ± sample std over seeds, with every seed's value (Table 1 /
//!   the headline bar chart);
//! - the steps and wall-clock each arm needs for its mean curve to reach the peak of the
//!   baseline's (PPO's) mean curve, and the ratios to the baseline's own (the "up to 9× fewer
//!   steps, 3× less wall-clock" claim); "not reached" when it never does;
//! - training seconds per iteration and the share spent in value estimation (`timing/values_s`),
//!   which is what a K sweep trades against accuracy (§4.3's K = 1, 3, 9 ablation).
//!
//! The numbers come from [`super::arms`] (over [`super::aggregate`]); this module lays them out.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::aggregate::{Band, SeedPoint};
use super::arms::{summarize, ArmRuns, ArmSummary, ExperimentSummary};
use super::{stage_means, STAGES};
use crate::plot::{band_chart, bar_chart, BandSeries, BarGroup, Series};

/// Writes `out_dir/report.md`, `out_dir/plots/*.svg` and `out_dir/summary.json`; returns the
/// summary.
pub fn write_experiment_report(
    arms: &[ArmRuns],
    out_dir: &Path,
    title: &str,
    baseline: Option<&str>,
    band: Band,
) -> Result<ExperimentSummary> {
    let plots = out_dir.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating `{}`", plots.display()))?;
    let summary = summarize(arms, title, baseline);
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    intro(&mut md, arms, band);
    accuracy_table(&mut md, &summary);
    efficiency_table(&mut md, &summary);
    accuracy_charts(&mut md, &summary, &plots, band)?;
    stage_chart(&mut md, arms, &plots)?;
    runs_table(&mut md, &summary);
    crate::atomic::write_file(&out_dir.join("report.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(&summary).context("serialising summary.json")?;
    crate::atomic::write_file(&out_dir.join("summary.json"), json.as_bytes())?;
    Ok(summary)
}

fn accuracy_charts(
    md: &mut String,
    summary: &ExperimentSummary,
    plots: &Path,
    band: Band,
) -> Result<()> {
    /// File stem, title, x label, x coordinate of a point.
    type Chart = (
        &'static str,
        &'static str,
        &'static str,
        fn(&SeedPoint) -> f64,
    );
    let charts: [Chart; 4] = [
        (
            "accuracy_vs_steps",
            "Held-out accuracy vs gradient steps",
            "optimizer steps",
            |p| p.steps,
        ),
        (
            "accuracy_vs_time",
            "Held-out accuracy vs wall-clock",
            "minutes",
            |p| p.elapsed_s / 60.0,
        ),
        (
            "accuracy_vs_kl",
            "Held-out accuracy vs KL to the reference",
            "KL(π‖π_ref), per-sequence sum",
            |p| p.kl,
        ),
        (
            "accuracy_vs_iteration",
            "Held-out accuracy vs iteration",
            "iteration",
            |p| p.iteration as f64,
        ),
    ];
    for (file, chart_title, x_label, x) in charts {
        // Arms that never measured a KL (DPO+) would sit misleadingly at KL 0.
        let series: Vec<BandSeries> = summary
            .arms
            .iter()
            .filter(|a| file != "accuracy_vs_kl" || a.final_kl.is_some())
            .map(|a| band_series(a, x, band))
            .collect();
        band_chart(
            &plots.join(format!("{file}.svg")),
            chart_title,
            x_label,
            "pass@1",
            &series,
        )?;
        let _ = writeln!(
            md,
            "## {chart_title}\n\n![{chart_title}](plots/{file}.svg)\n"
        );
    }
    Ok(())
}

fn band_series(a: &ArmSummary, x: fn(&SeedPoint) -> f64, band: Band) -> BandSeries {
    let several = a.runs.len() > 1;
    BandSeries {
        line: Series {
            label: a.name.clone(),
            points: a.curve.iter().map(|p| (x(p), p.pass1.mean)).collect(),
        },
        band: if several {
            a.curve
                .iter()
                .map(|p| {
                    let (lo, hi) = p.pass1.band(band);
                    (x(p), lo, hi)
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn minutes(s: f64) -> String {
    format!("{:.1} min", s / 60.0)
}

fn or_dash(x: Option<String>) -> String {
    x.unwrap_or_else(|| "–".into())
}

fn intro(md: &mut String, arms: &[ArmRuns], band: Band) {
    let seeds: Vec<String> = arms
        .first()
        .map(|a| a.seeds.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let band = match band {
        Band::MinMax => "min–max over seeds",
        Band::Std => "mean ± one standard deviation over seeds",
    };
    let _ = writeln!(
        md,
        "Arms: {}. Seeds: {}. Curves are means over seeds at the evaluations every seed has \
         reached; shaded bands span the {band}. Held-out accuracy is pass@1 (the mean \
         correctness of the evaluation samples).\n",
        arms.iter()
            .map(|a| format!("`{}`", a.name))
            .collect::<Vec<_>>()
            .join(", "),
        seeds.join(", ")
    );
}

fn accuracy_table(md: &mut String, s: &ExperimentSummary) {
    let _ = writeln!(md, "## Final held-out accuracy\n");
    let _ = writeln!(md, "| arm | finished runs | final pass@1, mean ± std | per seed | peak of the mean curve | KL at end | train s / iteration | value estimation |");
    let _ = writeln!(md, "| --- | ---: | --- | --- | --- | ---: | ---: | ---: |");
    for a in &s.arms {
        let done = a.runs.iter().filter(|r| r.complete).count();
        let fin = a
            .final_pass1
            .map(|f| format!("{} ± {:.1}", pct(f.mean), f.std * 100.0));
        let seeds: Vec<String> = a
            .runs
            .iter()
            .map(|r| {
                let v = r.final_pass1.map(pct).unwrap_or_else(|| "–".into());
                let star = if r.complete { "" } else { "*" };
                format!("s{}: {v}{star}", r.seed)
            })
            .collect();
        let peak = a
            .peak
            .map(|p| format!("{} @ {:.0} steps", pct(p.pass1.mean), p.steps));
        let kl = a.final_kl.map(|k| format!("{:.4}", k.mean));
        let secs = a.seconds_per_iteration.map(|x| format!("{x:.1} s"));
        let share = a.value_time_share.map(|x| format!("{:.0}%", x * 100.0));
        let _ = writeln!(
            md,
            "| {} | {done}/{} | {} | {} | {} | {} | {} | {} |",
            a.name,
            a.seeds,
            or_dash(fin),
            seeds.join(", "),
            or_dash(peak),
            or_dash(kl),
            or_dash(secs),
            or_dash(share)
        );
    }
    let _ = writeln!(
        md,
        "\n`*`: run not finished. \"Value estimation\" is the share of each iteration's training \
         time (generate, reward, reference, values, update) spent assigning credit: MC rollouts \
         for VinePPO, critic values for PPO.\n"
    );
}

fn efficiency_table(md: &mut String, s: &ExperimentSummary) {
    let (Some(base), Some(target)) = (&s.baseline, &s.baseline_peak) else {
        return;
    };
    let _ = writeln!(md, "## Efficiency: reaching `{base}`'s peak\n");
    if target.iteration == 0 {
        let _ = writeln!(
            md,
            "`{base}` never improved on its accuracy before training ({}), so there is no peak \
             to race to.\n",
            pct(target.pass1.mean)
        );
        return;
    }
    let _ = writeln!(
        md,
        "`{base}`'s mean curve peaks at {} after {:.0} optimizer steps and {}. For every arm, the \
         first evaluation at which its mean curve reaches that accuracy:\n",
        pct(target.pass1.mean),
        target.steps,
        minutes(target.elapsed_s)
    );
    let _ = writeln!(md, "| arm | optimizer steps | fewer steps than `{base}` | wall-clock | less wall-clock than `{base}` |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    let times = |r: Option<f64>| r.map(|x| format!("{x:.2}×"));
    for a in &s.arms {
        match &a.reach_baseline_peak {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {} | {} | {} |",
                    a.name,
                    r.steps,
                    or_dash(times(r.steps_ratio)),
                    minutes(r.elapsed_s),
                    or_dash(times(r.time_ratio))
                );
            }
            None => {
                let _ = writeln!(md, "| {} | not reached | – | not reached | – |", a.name);
            }
        }
    }
    let _ = writeln!(md);
}

fn stage_chart(md: &mut String, arms: &[ArmRuns], plots: &Path) -> Result<()> {
    let groups: Vec<BarGroup> = arms
        .iter()
        .filter(|a| !a.runs.is_empty())
        .map(|a| {
            let per_seed: Vec<Vec<f64>> = a.runs.iter().map(|(_, r, _)| stage_means(r)).collect();
            let values = (0..STAGES.len())
                .map(|i| per_seed.iter().map(|v| v[i]).sum::<f64>() / per_seed.len() as f64)
                .collect();
            BarGroup {
                label: a.name.clone(),
                values,
            }
        })
        .collect();
    let cats: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    bar_chart(
        &plots.join("stage_time.svg"),
        "Time per stage (mean seconds per iteration, over seeds)",
        "seconds",
        &cats,
        &groups,
    )?;
    let _ = writeln!(
        md,
        "## Time per stage\n\n![Time per stage](plots/stage_time.svg)\n"
    );
    Ok(())
}

fn runs_table(md: &mut String, s: &ExperimentSummary) {
    let _ = writeln!(
        md,
        "## Runs\n\n| arm | seed | directory | iterations | final pass@1 | wall-clock | status |"
    );
    let _ = writeln!(md, "| --- | ---: | --- | ---: | ---: | ---: | --- |");
    for a in &s.arms {
        for r in &a.runs {
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {} | {} | {} |",
                a.name,
                r.seed,
                r.dir.display(),
                r.iterations,
                or_dash(r.final_pass1.map(pct)),
                or_dash(r.elapsed_s.map(minutes)),
                if r.complete { "complete" } else { "unfinished" }
            );
        }
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::report::{RunData, EVAL_KEY};

    /// Two evaluations (iterations 0 and 2; 8 optimizer steps per iteration, 60 s each).
    fn run(dir: &str, pass1: [f64; 2]) -> RunData {
        let metrics = (0..=2u64)
            .map(|it| {
                let mut m = Metrics::new(it);
                m.set("time/elapsed_s", 60.0 * it as f64);
                if it > 0 {
                    m.set("progress/optimizer_steps", 8.0 * it as f64);
                    m.set("timing/values_s", 1.0);
                    m.set("timing/update_s", 3.0);
                }
                if it != 1 {
                    m.set(EVAL_KEY, pass1[it as usize / 2]);
                }
                m
            })
            .collect();
        RunData {
            dir: dir.into(),
            label: dir.into(),
            metrics,
        }
    }

    fn arm(name: &str, finals: &[f64]) -> ArmRuns {
        ArmRuns {
            name: name.into(),
            seeds: (1..=finals.len() as u64).collect(),
            runs: finals
                .iter()
                .enumerate()
                .map(|(i, &f)| {
                    (
                        i as u64 + 1,
                        run(&format!("{name}-s{}", i + 1), [0.1, f]),
                        true,
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn report_tables_bands_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let arms = [
            arm("vineppo", &[0.5, 0.7]),
            arm("ppo", &[0.3, 0.3]),
            arm("grpo", &[0.1, 0.2]),
        ];
        let s = write_experiment_report(&arms, dir.path(), "t", Some("ppo"), Band::MinMax).unwrap();
        let v = &s.arms[0];
        let f = v.final_pass1.unwrap();
        assert!((f.mean - 0.6).abs() < 1e-12 && (f.std - 0.1414213562373095).abs() < 1e-12);
        let r = v.reach_baseline_peak.as_ref().unwrap();
        assert_eq!((r.iteration, r.steps, r.steps_ratio), (2, 16.0, Some(1.0)));
        assert!(s.arms[2].reach_baseline_peak.is_none());
        assert_eq!(v.value_time_share, Some(0.25));
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        for needle in [
            "| vineppo | 2/2 | 60.0% ± 14.1 | s1: 50.0%, s2: 70.0% |",
            "| grpo | not reached |",
            "`ppo`'s mean curve peaks at 30.0% after 16 optimizer steps",
            "plots/accuracy_vs_kl.svg",
        ] {
            assert!(md.contains(needle), "missing `{needle}` in\n{md}");
        }
        let svg = std::fs::read_to_string(dir.path().join("plots/accuracy_vs_steps.svg")).unwrap();
        assert_eq!(
            svg.matches("<polygon").count(),
            3,
            "one band per arm with 2 seeds"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["arms"][1]["name"], "ppo");
        assert_eq!(json["baseline_peak"]["steps"], 16.0);
        assert!(json["arms"][2]["reach_baseline_peak"].is_null());
    }
}
