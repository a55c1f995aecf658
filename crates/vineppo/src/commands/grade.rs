//! `vineppo grade`: grade one prediction or a JSONL file of cases with the task's grader.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use vine_math::{Grade, Gsm8kMode};

/// Which grader `vineppo grade` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GradeTask {
    /// GSM8K (also `arith`): the answer after `####`.
    Gsm8k,
    /// MATH: Minerva-style extraction and equivalence.
    Math,
}

/// One line of `--input`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    pred: String,
    gold: String,
    #[serde(default)]
    question: Option<String>,
}

fn grade_one(
    task: GradeTask,
    mode: Gsm8kMode,
    pred: &str,
    gold: &str,
    question: Option<&str>,
) -> Grade {
    match task {
        GradeTask::Gsm8k => vine_math::grade_gsm8k(pred, gold, mode),
        GradeTask::Math => vine_math::grade_math(pred, gold, question),
    }
}

fn verdict_json(g: &Grade) -> serde_json::Value {
    serde_json::json!({ "correct": g.correct, "extracted": g.extracted })
}

/// Grades `pred` against `gold` and prints one JSON line.
pub fn grade_pair(
    task: GradeTask,
    lenient: bool,
    pred: &str,
    gold: &str,
    question: Option<&str>,
) -> Result<()> {
    let g = grade_one(task, mode(lenient), pred, gold, question);
    println!("{}", verdict_json(&g));
    Ok(())
}

fn mode(lenient: bool) -> Gsm8kMode {
    if lenient {
        Gsm8kMode::Lenient
    } else {
        Gsm8kMode::Strict
    }
}

/// Grades every line of `input` (`{"pred", "gold", "question"?}`), writing one JSON line per case
/// to `out` (stdout when `None`); returns (correct, total).
pub fn grade_file(
    task: GradeTask,
    lenient: bool,
    input: &Path,
    out: Option<&Path>,
) -> Result<(usize, usize)> {
    let file =
        std::fs::File::open(input).with_context(|| format!("opening `{}`", input.display()))?;
    let mut lines: Vec<String> = Vec::new();
    let (mut correct, mut total) = (0, 0);
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading `{}` line {}", input.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(&line).with_context(|| {
            format!(
                "`{}` line {}: expected {{\"pred\": …, \"gold\": …, \"question\"?: …}}",
                input.display(),
                i + 1
            )
        })?;
        let g = grade_one(
            task,
            mode(lenient),
            &case.pred,
            &case.gold,
            case.question.as_deref(),
        );
        correct += g.correct as usize;
        total += 1;
        lines.push(verdict_json(&g).to_string());
    }
    if total == 0 {
        bail!("`{}` has no cases", input.display());
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    match out {
        Some(p) => crate::atomic::write_file(p, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing to stdout")?,
    }
    Ok((correct, total))
}
