//! End-to-end runs of `vineppo restem` and `vineppo dpo`: each trains, checkpoints and reports,
//! and a run killed mid-way (`VINEPPO_TEST_CRASH_AT`) and resumed ends with exactly the weights
//! and metrics of an uninterrupted run.
//!
//! The model is the tiny random Llama fixture fine-tuned (with `vineppo sft`, once per test
//! process) on questions `Puzzle N.` answered both `#### 3` and `#### 4`, so it answers either
//! about half the time: every training problem (gold: 3 for even N, 4 for odd N) gets correct
//! and wrong samples, which RestEM filters and DPO+ pairs, and there is a rule left to learn.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fixture, metrics, ok, vineppo, Line};

fn write_puzzles(path: &Path, ids: std::ops::Range<u32>, both_answers: bool) {
    let mut text = String::new();
    for i in ids {
        let answers = if both_answers {
            vec![3, 4]
        } else {
            vec![3 + i % 2]
        };
        for a in answers {
            text.push_str(&format!(
                "{{\"question\": \"Puzzle {i}.\", \"answer\": \"#### {a}\"}}\n"
            ));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// The data directory (`train.jsonl`, `test.jsonl`) and the fine-tuned model, built once.
fn setup() -> &'static (PathBuf, PathBuf) {
    static SETUP: OnceLock<(tempfile::TempDir, (PathBuf, PathBuf))> = OnceLock::new();
    &SETUP
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("baselines-e2e")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap();
            let d = dir.path();
            write_puzzles(&d.join("sft.jsonl"), 10..74, true);
            write_puzzles(&d.join("train.jsonl"), 10..58, false);
            write_puzzles(&d.join("test.jsonl"), 58..74, false);
            let cfg = format!(
                r#"
[model]
path = "{fixture}"
[task]
kind = "arith"
train_file = "{d}/sft.jsonl"
test_file = "{d}/test.jsonl"
[sft]
epochs = 8
batch_size = 16
micro_batch_size = 16
max_length = 128
[optim]
lr = 3e-3
warmup = "linear"
[eval]
at_start = false
samples = 1
limit = 1
max_new_tokens = 8
[run]
seed = 1
save_every = 0
out_dir = "{d}/sft"
progress = false
"#,
                fixture = fixture().display(),
                d = d.display()
            );
            std::fs::write(d.join("sft.toml"), cfg).unwrap();
            ok(&vineppo(
                &["sft", "--config", d.join("sft.toml").to_str().unwrap()],
                &[],
            ));
            let paths = (d.to_path_buf(), d.join("sft/final"));
            (dir, paths)
        })
        .1
}

/// A config for `command` (`restem` or `dpo`) writing to `out/run`; `extra` is appended.
fn config(out: &Path, command: &str, extra: &str) -> PathBuf {
    let (data, model) = setup();
    let section = match command {
        "restem" => "[restem]\nmax_per_problem = 2\nepochs = 3\nbatch_size = 16\nmicro_batch_size = 8\nvalidation_size = 8\nkl_samples = 16\n",
        _ => "[dpo]\nmax_pairs_per_problem = 2\nepochs = 2\nbatch_size = 8\nmicro_batch_size = 4\nlog_every = 2\n",
    };
    let text = format!(
        r#"
[model]
path = "{model}"
[task]
kind = "arith"
train_file = "{data}/train.jsonl"
test_file = "{data}/test.jsonl"
[rollout]
samples_per_problem = 4
max_new_tokens = 8
max_context = 128
[optim]
lr = 3e-3
warmup = "linear"
[eval]
samples = 4
limit = 8
max_new_tokens = 8
[run]
seed = 7
save_every = 3
out_dir = "{out}"
progress = false
{section}{extra}"#,
        model = model.display(),
        data = data.display(),
        out = out.join("run").display(),
    );
    let path = out.join(format!("{command}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn num(line: &Line, key: &str) -> f64 {
    line.get(key)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("no `{key}` in {line:?}"))
}

fn weights(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("final/model.safetensors")).unwrap()
}

#[test]
fn restem_samples_filters_chooses_epochs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "restem", "");
    let args = [
        "restem",
        "--config",
        cfg.to_str().unwrap(),
        "--set",
        "run.iterations=2",
    ];
    ok(&vineppo(&args, &[]));
    let run = dir.path().join("run");
    let lines = metrics(&run);
    assert_eq!(
        lines.len(),
        3,
        "evaluation before training, then two iterations"
    );
    assert!(lines[0].contains_key("eval/pass1"));
    for line in &lines[1..] {
        let (samples, kept) = (num(line, "restem/samples"), num(line, "restem/kept"));
        assert_eq!(
            samples,
            40.0 * 4.0,
            "48 problems minus 8 for validation, 4 samples each"
        );
        assert!(kept > 0.0 && kept <= num(line, "reward/mean") * samples + 1e-9);
        assert!(
            kept <= 2.0 * num(line, "restem/kept_problems"),
            "at most 2 per problem"
        );
        // The chosen epoch follows the first-drop rule over the logged accuracies.
        let trained = num(line, "restem/epochs_trained") as usize;
        let acc: Vec<f64> = (0..=trained)
            .map(|e| num(line, &format!("restem/val_pass1_e{e}")))
            .collect();
        let chosen = num(line, "restem/chosen_epoch") as usize;
        assert!(
            acc[1..=chosen]
                .iter()
                .zip(&acc[..chosen])
                .all(|(b, a)| b > a),
            "{acc:?}"
        );
        assert!(
            trained == 3 || acc[trained] <= acc[trained - 1],
            "stopped early without a drop: {acc:?}"
        );
        assert!(line.contains_key("eval/pass1") && line.contains_key("kl/k1_seq_mean"));
    }
    assert_eq!(
        num(&lines[1], "restem/val_pass1_e0"),
        num(&lines[2], "restem/val_pass1_e0")
    );
    assert!(run
        .join("checkpoints/iter_000002/policy/model.safetensors")
        .exists());
    assert!(run.join("final/config.json").exists());
    assert!(
        !run.join("restem/iter_0002").exists(),
        "working files are removed"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("RestEM (seed 7)"), "{report}");
    // A used run directory is not overwritten.
    let again = vineppo(&args, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn restem_resumed_mid_iteration_matches_an_uninterrupted_run() {
    // `best` trains every epoch, so the crash after epoch 1 leaves two epochs to resume.
    let extra = "selection = \"best\"\nkeep_intermediate = true\n";
    let straight = tempfile::tempdir().unwrap();
    let cfg = config(straight.path(), "restem", extra);
    ok(&vineppo(
        &[
            "restem",
            "--config",
            cfg.to_str().unwrap(),
            "--set",
            "run.iterations=2",
        ],
        &[],
    ));

    let crashed = tempfile::tempdir().unwrap();
    let cfg = config(crashed.path(), "restem", extra);
    let run = crashed.path().join("run");
    let args = [
        "restem",
        "--config",
        cfg.to_str().unwrap(),
        "--set",
        "run.iterations=2",
    ];
    let out = vineppo(&args, &[("VINEPPO_TEST_CRASH_AT", "2:sampled")]);
    assert!(!out.status.success(), "the crash hook must abort the run");
    assert!(run
        .join("restem/iter_0002/round/samples.safetensors")
        .exists());
    let resume = ["restem", "--resume", run.to_str().unwrap()];
    let out = vineppo(&resume, &[("VINEPPO_TEST_CRASH_AT", "2:epoch_1")]);
    assert!(!out.status.success(), "iteration 2 must train an epoch");
    assert!(run
        .join("restem/iter_0002/epochs/epoch_000001/progress.json")
        .exists());
    assert_eq!(metrics(&run).len(), 2, "iteration 2 never logged");
    ok(&vineppo(&resume, &[]));

    let a = straight.path().join("run");
    assert_eq!(num(&metrics(&a)[2], "restem/epochs_trained"), 3.0);
    assert_eq!(metrics(&a), metrics(&run));
    assert!(
        weights(&a) == weights(&run),
        "final weights differ after resume"
    );
}

#[test]
fn dpo_pairs_trains_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "dpo", "");
    ok(&vineppo(&["dpo", "--config", cfg.to_str().unwrap()], &[]));
    let run = dir.path().join("run");
    let lines = metrics(&run);
    let first = &lines[0];
    assert_eq!(num(first, "iteration"), 0.0);
    let pairs = num(first, "dpo/pairs");
    assert!(pairs > 0.0 && pairs <= 2.0 * num(first, "dpo/problems_with_pairs"));
    assert_eq!(num(first, "dpo/samples"), 48.0 * 4.0);
    assert!(first.contains_key("eval/pass1"));
    let steps = 2.0 * (pairs / 8.0).ceil();
    let last = lines.last().unwrap();
    assert_eq!(num(last, "iteration"), steps);
    assert!(last.contains_key("eval/pass1"));
    for line in &lines[1..] {
        for key in [
            "dpo/loss",
            "dpo/reward_accuracy",
            "dpo/margin",
            "dpo/grad_norm",
        ] {
            assert!(num(line, key).is_finite(), "{key}");
        }
    }
    let name = format!(
        "checkpoints/iter_{:06}/policy/model.safetensors",
        steps as u64
    );
    assert!(run.join(name).exists());
    assert!(run.join("final/config.json").exists());
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("DPO+ (seed 7)"), "{report}");
}

#[test]
fn dpo_resumed_after_crashes_matches_an_uninterrupted_run() {
    let straight = tempfile::tempdir().unwrap();
    let cfg = config(straight.path(), "dpo", "");
    ok(&vineppo(&["dpo", "--config", cfg.to_str().unwrap()], &[]));

    let crashed = tempfile::tempdir().unwrap();
    let cfg = config(crashed.path(), "dpo", "");
    let run = crashed.path().join("run");
    let out = vineppo(
        &["dpo", "--config", cfg.to_str().unwrap()],
        &[("VINEPPO_TEST_CRASH_AT", "0:sampled")],
    );
    assert!(!out.status.success(), "the crash hook must abort the run");
    let resume = ["dpo", "--resume", run.to_str().unwrap()];
    let out = vineppo(&resume, &[("VINEPPO_TEST_CRASH_AT", "5:update")]);
    assert!(!out.status.success());
    assert!(run.join("checkpoints/iter_000003").exists() && !run.join("final").exists());
    ok(&vineppo(&resume, &[]));

    let a = straight.path().join("run");
    assert_eq!(metrics(&a), metrics(&run));
    assert!(
        weights(&a) == weights(&run),
        "final weights differ after resume"
    );
}

/// `vineppo experiment` runs RestEM and DPO+ arms (`command = "restem"` / `"dpo"`) next to each
/// other, reports them in one table, leaves DPO+ (which measures no KL) out of the KL chart, and
/// skips both once finished.
#[test]
fn experiment_runs_baseline_arms() {
    let dir = tempfile::tempdir().unwrap();
    let restem = config(dir.path(), "restem", "");
    let dpo = config(dir.path(), "dpo", "");
    let root = dir.path().join("exp");
    let exp = dir.path().join("exp.toml");
    std::fs::write(
        &exp,
        format!(
            r#"
[experiment]
base = "{restem}"
out_dir = "{root}"
seeds = [3]

[[arm]]
name = "restem"
command = "restem"
set = ["run.iterations=1"]

[[arm]]
name = "dpo"
command = "dpo"
base = "{dpo}"
"#,
            restem = restem.display(),
            dpo = dpo.display(),
            root = root.display()
        ),
    )
    .unwrap();
    let exp = exp.to_str().unwrap();
    ok(&vineppo(&["experiment", "--config", exp], &[]));
    for run in ["restem-s3", "dpo-s3"] {
        assert!(root.join(run).join("final/config.json").exists(), "{run}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("summary.json")).unwrap()).unwrap();
    let arms = summary["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    for arm in arms {
        assert_eq!(arm["final_pass1"]["n"], 1, "{arm}");
    }
    assert!(arms[0]["final_kl"].is_object(), "RestEM logs its KL");
    assert!(arms[1]["final_kl"].is_null(), "DPO+ measures none");
    let kl_chart = std::fs::read_to_string(root.join("plots/accuracy_vs_kl.svg")).unwrap();
    assert!(kl_chart.contains("restem") && !kl_chart.contains(">dpo<"));
    let md = std::fs::read_to_string(root.join("report.md")).unwrap();
    assert!(
        md.contains("| restem | 1/1 |") && md.contains("| dpo | 1/1 |"),
        "{md}"
    );
    let err = ok(&vineppo(&["experiment", "--config", exp], &[]));
    assert!(
        err.contains("0 run(s) trained or resumed, 2 finished run(s) skipped"),
        "{err}"
    );
}
