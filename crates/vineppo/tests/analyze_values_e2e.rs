//! `vineppo analyze-values` end to end on runs of the tiny random Llama fixture: a PPO run's
//! critic is evaluated next to the K-MC estimates, a VinePPO run (no critic) gets the MC side
//! only, and every output file is written. (The numbers themselves are checked against known
//! values in `analysis_known_values.rs`; a random model answers nothing correctly.)

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::fixture;

fn train(dir: &Path, credit: &str) -> PathBuf {
    let run = dir.join(credit);
    let text = format!(
        r#"
[model]
path = "{model}"
[task]
kind = "arith"
[task.arith]
train_size = 32
test_size = 4
[rollout]
prompts_per_iteration = 4
samples_per_prompt = 2
max_new_tokens = 24
max_context = 256
[credit]
kind = "{credit}"
[ppo]
minibatch_size = 8
micro_batch_size = 4
[optim]
lr = 1e-3
warmup = "linear"
[eval]
at_start = false
samples = 1
limit = 2
max_new_tokens = 4
[run]
iterations = 1
seed = 3
out_dir = "{out}"
progress = false
"#,
        model = fixture().display(),
        out = run.display()
    );
    let cfg = dir.join(format!("{credit}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let out = common::vineppo(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

fn analyze(run: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "analyze-values",
        "--run",
        run.to_str().unwrap(),
        "--states",
        "8",
        "--ground-truth",
        "16",
        "--ks",
        "1,4",
        "--alternatives",
        "4",
        "--min-distinct",
        "2",
    ];
    args.extend_from_slice(extra);
    common::vineppo(&args, &[])
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn analyze_values_on_ppo_and_vineppo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ppo = train(dir.path(), "gae");
    let out = analyze(&ppo, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ppo.join("analysis/values-iter_000001");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        report.join("report.md").to_str().unwrap()
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["source"]["method"], "ppo");
    assert_eq!(s["states"], 8);
    assert_eq!(names(&s["errors"]), ["critic", "mc_k1", "mc_k4"]);
    assert_eq!(names(&s["ranking"]), ["critic", "mc_k1", "mc_k4"]);
    for e in s["errors"].as_array().unwrap() {
        let mae = e["overall"]["mae"].as_f64().unwrap();
        assert!((0.0..=2.0).contains(&mae), "{e}");
        assert!(!e["by_step"].as_array().unwrap().is_empty());
    }
    // A random model never answers correctly: every ground truth and MC estimate is 0.
    assert_eq!(s["truth_mean"], 0.0);
    assert_eq!(s["errors"][1]["overall"]["mae"], 0.0);
    assert_eq!(s["ranking_states_tried"], 8);
    let states = std::fs::read_to_string(report.join("states.jsonl")).unwrap();
    assert_eq!(states.lines().count(), 8);
    let first: serde_json::Value = serde_json::from_str(states.lines().next().unwrap()).unwrap();
    assert!(first["critic"].is_number() && first["mc"]["k4"].is_number());
    for f in [
        "report.md",
        "ranking.jsonl",
        "plots/mae_by_step.svg",
        "plots/top1.svg",
        "plots/predicted_vs_truth.svg",
    ] {
        assert!(report.join(f).exists(), "{f}");
    }

    // A VinePPO run has no critic: only the MC predictors.
    let vine = train(dir.path(), "vine");
    let out_dir = dir.path().join("vine-analysis");
    let out = analyze(
        &vine,
        &["--checkpoint", "1", "--out", out_dir.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(names(&s["errors"]), ["mc_k1", "mc_k4"]);

    // Mistakes are explained.
    let err = |o: Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let e = err(analyze(&vine, &["--checkpoint", "iter_000007"]));
    assert!(
        e.contains("no checkpoint `iter_000007`; it has: iter_000001"),
        "{e}"
    );
    let e = err(analyze(&vine, &["--ks", "1,99"]));
    assert!(
        e.contains("K = 99 must be between 1 and --ground-truth = 16"),
        "{e}"
    );
    let e = err(analyze(dir.path(), &[]));
    assert!(e.contains("is not a vineppo training run"), "{e}");
}
