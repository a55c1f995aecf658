//! End-to-end runs of `vineppo train` on the tiny random Llama fixture: every credit method
//! runs, checkpoints and reports; a run killed mid-iteration and resumed ends with exactly the
//! weights and metrics of an uninterrupted run.

use std::path::{Path, PathBuf};

mod common;
use common::{fixture, metrics, vineppo};

fn config(dir: &Path, credit: &str, iterations: u64) -> PathBuf {
    let text = format!(
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
{credit}
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
iterations = {iterations}
seed = 7
save_every = 1
out_dir = "{out}"
progress = false
"#,
        model = fixture().display(),
        out = dir.join("run").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_credit_method_trains_checkpoints_and_reports() {
    for credit in [
        "kind = \"vine\"\nmc_rollouts = 2",
        "kind = \"gae\"",
        "kind = \"grpo\"",
        "kind = \"rloo\"",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = vineppo(
            &[
                "train",
                "--config",
                config(dir.path(), credit, 2).to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{credit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = dir.path().join("run");
        let lines = metrics(&run);
        assert_eq!(lines.len(), 3, "eval at 0 and two iterations");
        assert!(lines[2].contains_key("eval/pass1") && lines[1].contains_key("ppo/grad_norm"));
        assert!(run
            .join("checkpoints/iter_000002/policy/model.safetensors")
            .exists());
        assert!(run.join("final/config.json").exists() && run.join("report.md").exists());
        if credit.contains("vine") {
            assert!(lines[1]["vine/unique_states"].as_f64().unwrap() >= 4.0);
        }
        if credit.contains("gae") {
            assert!(run
                .join("checkpoints/iter_000002/critic/value_head.safetensors")
                .exists());
            assert!(lines[1].contains_key("critic/value_loss"));
        }
    }
}

#[test]
fn resume_after_a_crash_mid_iteration_matches_an_uninterrupted_run() {
    let credit = "kind = \"vine\"\nmc_rollouts = 2";
    let straight = tempfile::tempdir().unwrap();
    let cfg = config(straight.path(), credit, 3);
    assert!(vineppo(&["train", "--config", cfg.to_str().unwrap()], &[])
        .status
        .success());

    let crashed = tempfile::tempdir().unwrap();
    let cfg = config(crashed.path(), credit, 3);
    let out = vineppo(
        &["train", "--config", cfg.to_str().unwrap()],
        &[("VINEPPO_TEST_CRASH_AT", "3:update")],
    );
    assert!(!out.status.success(), "the crash hook must abort the run");
    let run = crashed.path().join("run");
    assert!(!run.join("final").exists());
    assert_eq!(metrics(&run).len(), 3, "iteration 3 never logged");
    let out = vineppo(&["train", "--resume", run.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let a = straight.path().join("run");
    assert_eq!(metrics(&a), metrics(&run));
    let weights = |r: &Path| std::fs::read(r.join("final/model.safetensors")).unwrap();
    assert!(
        weights(&a) == weights(&run),
        "final weights differ after resume"
    );
    let opt =
        |r: &Path| std::fs::read(r.join("checkpoints/iter_000003/optimizer.safetensors")).unwrap();
    assert!(opt(&a) == opt(&run), "optimizer state differs after resume");
}

#[test]
fn a_used_run_directory_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "kind = \"rloo\"", 1);
    assert!(vineppo(&["train", "--config", cfg.to_str().unwrap()], &[])
        .status
        .success());
    let out = vineppo(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
}
