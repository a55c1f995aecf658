//! `vineppo experiment`: several arms (VinePPO, PPO, GRPO, RLOO, a K sweep, …) × several seeds,
//! run one after another in this process, then one report aggregated over seeds.
//!
//! This is the machinery behind the paper's comparisons at small scale (spec §4.2–4.3): final
//! accuracy per method, accuracy against gradient steps, wall-clock and KL, the steps and time
//! each method needs to reach PPO's peak, and what value estimation costs per iteration as K
//! grows. [`plan`] reads the experiment file, [`arm`] runs one (arm, seed), and
//! `report::experiment` writes `EXP_DIR/report.md`, `EXP_DIR/plots/` and `EXP_DIR/summary.json`.
//!
//! Re-running the same command continues the experiment: finished runs are skipped (their
//! metrics are not touched), interrupted ones resume from their latest checkpoint (exactly, as
//! `vineppo train --resume` does), and missing ones start. Every (arm, seed) config is resolved
//! and validated before the first run starts, so a typo in the last arm fails at once, not after
//! hours of training; a run whose saved config differs from what the experiment file now asks
//! for is refused rather than mixed into the arm.

pub mod arm;
pub mod plan;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::report::arms::{ArmRuns, ExperimentSummary};
use crate::report::experiment::write_experiment_report;
use crate::report::load_run;
use arm::{PreparedRun, RunState};
use plan::{Arm, Plan};

/// What to do besides the default "run everything that is not finished, then report".
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Train nothing: only rewrite the report from the runs that exist.
    pub report_only: bool,
    /// Run only these arms (every arm with runs is still reported).
    pub only: Vec<String>,
}

/// The report written at the end.
#[derive(Debug)]
pub struct Outcome {
    /// `EXP_DIR/report.md`.
    pub report: PathBuf,
    /// What `EXP_DIR/summary.json` holds.
    pub summary: ExperimentSummary,
    /// Runs trained or resumed by this invocation.
    pub ran: usize,
    /// Finished runs skipped.
    pub skipped: usize,
}

/// One (arm, seed) of the plan, resolved.
struct Job<'a> {
    arm: &'a Arm,
    seed: u64,
    dir: PathBuf,
    run: PreparedRun,
}

/// Runs the experiment in `path` (with `sets` applied) and writes its report.
pub fn run(path: &Path, sets: &[String], options: &Options) -> Result<Outcome> {
    let plan = Plan::load(path, sets)?;
    let out = &plan.experiment.out_dir;
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    let resolved = toml::to_string_pretty(&plan.resolved).context("serialising the plan")?;
    crate::atomic::write_file(&out.join("experiment.toml"), resolved.as_bytes())?;
    let jobs = resolve_all(&plan)?;
    let selected = plan.select(&options.only)?;
    let todo: Vec<&Job> = jobs
        .iter()
        .filter(|j| selected.iter().any(|a| a.name == j.arm.name))
        .collect();
    let (mut ran, mut skipped) = (0, 0);
    if !options.report_only {
        for (i, job) in todo.iter().enumerate() {
            let header = format!(
                "[{}/{}] {} seed {}",
                i + 1,
                todo.len(),
                job.arm.name,
                job.seed
            );
            match run_job(job, &header) {
                Ok(true) => ran += 1,
                Ok(false) => skipped += 1,
                Err(e) => {
                    // Keep what the finished runs show before reporting the failure.
                    if let Err(r) = report(&plan, &jobs, path) {
                        tracing::warn!("could not write the report: {r:#}");
                    }
                    return Err(e);
                }
            }
        }
    }
    let (report, summary) = report(&plan, &jobs, path)?;
    Ok(Outcome {
        report,
        summary,
        ran,
        skipped,
    })
}

/// Trains or resumes one run unless it is complete; returns whether it ran.
fn run_job(job: &Job<'_>, header: &str) -> Result<bool> {
    let state = job.run.state(&job.dir)?;
    if state != RunState::New {
        job.run.check_saved(&job.dir)?;
    }
    let what = match state {
        RunState::Complete => "complete, skipped".to_string(),
        RunState::New => "starting".to_string(),
        RunState::Interrupted { iteration } => format!("resuming after iteration {iteration}"),
    };
    eprintln!("{header}: {what} (`{}`)", job.dir.display());
    if state == RunState::Complete {
        return Ok(false);
    }
    job.run
        .clone()
        .execute(&job.dir, state)
        .with_context(|| format!("arm `{}`, seed {}", job.arm.name, job.seed))?;
    Ok(true)
}

/// Resolves and validates every (arm, seed) before anything runs.
fn resolve_all(plan: &Plan) -> Result<Vec<Job<'_>>> {
    let mut jobs = Vec::new();
    for arm in &plan.arms {
        for &seed in &plan.experiment.seeds {
            jobs.push(Job {
                arm,
                seed,
                dir: plan.run_dir(arm, seed),
                run: plan.prepare(arm, seed)?,
            });
        }
    }
    Ok(jobs)
}

/// Writes the report over every run that has logged metrics.
fn report(plan: &Plan, jobs: &[Job<'_>], path: &Path) -> Result<(PathBuf, ExperimentSummary)> {
    let mut arms = Vec::new();
    for arm in &plan.arms {
        let mut runs = Vec::new();
        for job in jobs.iter().filter(|j| j.arm.name == arm.name) {
            if !job.dir.join("metrics.jsonl").exists() {
                continue;
            }
            let mut data = load_run(&job.dir)?;
            data.label = arm.name.clone();
            let complete = job.run.state(&job.dir)? == RunState::Complete;
            runs.push((job.seed, data, complete));
        }
        arms.push(ArmRuns {
            name: arm.name.clone(),
            seeds: plan.experiment.seeds.clone(),
            runs,
        });
    }
    let baseline = plan.experiment.baseline.clone().or_else(|| {
        jobs.iter()
            .find(|j| j.run.trains_critic())
            .map(|j| j.arm.name.clone())
    });
    let title = plan.experiment.title.clone().unwrap_or_else(|| {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        format!("Experiment {}", stem.unwrap_or_default())
    });
    let out = &plan.experiment.out_dir;
    let summary = write_experiment_report(
        &arms,
        out,
        &title,
        baseline.as_deref(),
        plan.experiment.band,
    )?;
    Ok((out.join("report.md"), summary))
}
