//! `vineppo experiment` end to end on the tiny random Llama fixture: two arms × two seeds, an
//! interruption mid-run that the next invocation resumes, a report aggregated over seeds, and a
//! further invocation that finds everything finished and leaves every run untouched.

use std::path::{Path, PathBuf};

mod common;
use common::{fixture, ok, vineppo};

/// A training config as small as `train_e2e.rs`'s, and an experiment over it.
fn files(dir: &Path) -> PathBuf {
    let base = format!(
        r#"
[model]
path = "{model}"
[task]
kind = "arith"
[task.arith]
train_size = 64
test_size = 8
[rollout]
prompts_per_iteration = 4
samples_per_prompt = 4
max_new_tokens = 16
max_context = 256
[credit]
kind = "vine"
mc_rollouts = 2
[ppo]
minibatch_size = 8
micro_batch_size = 4
[optim]
lr = 1e-3
warmup = "linear"
[eval]
every = 2
samples = 2
limit = 4
max_new_tokens = 12
[run]
iterations = 1
save_every = 1
progress = false
"#,
        model = fixture().display()
    );
    std::fs::write(dir.join("base.toml"), base).unwrap();
    let exp = format!(
        r#"
[experiment]
base = "{base}"
out_dir = "{out}"
seeds = [1, 2]
title = "VinePPO vs PPO (fixture)"

[run]
iterations = 2

[[arm]]
name = "vineppo"

[[arm]]
name = "ppo"
set = ['credit = {{ kind = "gae" }}']
"#,
        base = dir.join("base.toml").display(),
        out = dir.join("exp").display()
    );
    let path = dir.join("exp.toml");
    std::fs::write(&path, exp).unwrap();
    path
}

fn metric_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn experiment_runs_resumes_reports_and_skips_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let exp = files(dir.path());
    let exp = exp.to_str().unwrap();
    let root = dir.path().join("exp");

    // The first run is killed in its second iteration, as a crash or Ctrl-C would.
    let out = vineppo(
        &["experiment", "--config", exp],
        &[("VINEPPO_TEST_CRASH_AT", "2:update")],
    );
    assert!(!out.status.success());
    assert_eq!(
        metric_lines(&root.join("vineppo-s1")),
        2,
        "eval at 0 and iteration 1"
    );
    assert!(!root.join("vineppo-s2").exists());

    // Re-running continues: the interrupted run resumes, the other three start.
    let err = ok(&vineppo(&["experiment", "--config", exp], &[]));
    assert!(
        err.contains("vineppo seed 1: resuming after iteration 1"),
        "{err}"
    );
    for run in ["vineppo-s1", "vineppo-s2", "ppo-s1", "ppo-s2"] {
        assert_eq!(metric_lines(&root.join(run)), 3, "{run}");
        assert!(root.join(run).join("final/config.json").exists(), "{run}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["baseline"], "ppo",
        "PPO is the default efficiency baseline"
    );
    let arms = summary["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    for arm in arms {
        assert_eq!(arm["runs"].as_array().unwrap().len(), 2);
        assert_eq!(arm["final_pass1"]["n"], 2);
        // Evaluations before training and after iteration 2, shared by both seeds.
        assert_eq!(arm["curve"].as_array().unwrap().len(), 2);
        assert!(arm["value_time_share"].as_f64().unwrap() > 0.0);
    }
    // PPO reaches its own peak where it peaks.
    let ppo = &arms[1];
    assert_eq!(
        ppo["reach_baseline_peak"]["iteration"],
        summary["baseline_peak"]["iteration"]
    );
    if std::env::var_os("VINEPPO_TEST_KEEP").is_some() {
        eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
        eprintln!(
            "{}",
            std::fs::read_to_string(root.join("report.md")).unwrap()
        );
    }
    let md = std::fs::read_to_string(root.join("report.md")).unwrap();
    for needle in [
        "# VinePPO vs PPO (fixture)",
        "| vineppo | 2/2 |",
        "## Efficiency: reaching `ppo`'s peak",
        "| ppo | 2/2 |",
        "plots/accuracy_vs_steps.svg",
    ] {
        assert!(md.contains(needle), "missing `{needle}` in\n{md}");
    }
    for plot in [
        "accuracy_vs_steps",
        "accuracy_vs_time",
        "accuracy_vs_kl",
        "stage_time",
    ] {
        assert!(root.join(format!("plots/{plot}.svg")).exists(), "{plot}");
    }

    // Everything finished: a further invocation trains nothing and touches no run.
    let before: Vec<String> = ["vineppo-s1", "ppo-s2"]
        .iter()
        .map(|r| std::fs::read_to_string(root.join(r).join("metrics.jsonl")).unwrap())
        .collect();
    let err = ok(&vineppo(&["experiment", "--config", exp], &[]));
    assert!(
        err.contains("0 run(s) trained or resumed, 4 finished run(s) skipped"),
        "{err}"
    );
    let after: Vec<String> = ["vineppo-s1", "ppo-s2"]
        .iter()
        .map(|r| std::fs::read_to_string(root.join(r).join("metrics.jsonl")).unwrap())
        .collect();
    assert_eq!(before, after);

    // A changed experiment is refused rather than mixed into finished arms.
    let out = vineppo(
        &["experiment", "--config", exp, "--set", "ppo.kl_coef=0.5"],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`ppo.kl_coef`: 0.0001 → 0.5"), "{err}");

    // `vineppo report` still overlays individual runs.
    let out = vineppo(
        &[
            "report",
            root.join("vineppo-s1").to_str().unwrap(),
            root.join("ppo-s1").to_str().unwrap(),
            "--out",
            dir.path().join("overlay").to_str().unwrap(),
        ],
        &[],
    );
    ok(&out);
    assert!(dir.path().join("overlay/report.md").exists());
}
