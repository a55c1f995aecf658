//! `vineppo gpu …` on the CPU with the tiny shape: the checks pass against the fixtures, and
//! every benchmark runs and reports consistent numbers. (On a GPU the same commands run with
//! `--device cuda`; see `tests/cuda.rs` and `scripts/gpu/`.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures")
}

fn vineppo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vineppo"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rows(path: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["shape"], "tiny");
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn checks_pass_on_the_cpu() {
    let out = vineppo(&[
        "gpu",
        "check",
        "--device",
        "cpu",
        "--fixtures",
        fixtures().to_str().unwrap(),
    ]);
    assert_eq!(out.matches("PASS").count(), 14, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn benchmarks_run_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let common = ["--shape", "tiny", "--device", "cpu", "--dtype", "f32"];
    let run = |bench: &str, extra: &[&str]| {
        let mut args = vec!["gpu", bench];
        args.extend(common);
        args.extend(extra);
        let path = json(&format!("{bench}.json"));
        args.extend(["--json", path.as_str()]);
        vineppo(&args);
        rows(Path::new(&path))
    };
    let decode = run(
        "decode",
        &["--batch", "2,4", "--prompt-len", "8", "--new-tokens", "6"],
    );
    for (row, b) in decode.iter().zip([2, 4]) {
        assert_eq!(row["generated"], b * 6);
        let frac = row["fraction_of_roofline"].as_f64().unwrap();
        assert!(frac > 0.0 && frac < 1.0, "{row}");
    }
    let mc = run(
        "mc",
        &[
            "--prefixes",
            "2",
            "--states",
            "3",
            "--k",
            "2",
            "--prefix-len",
            "24",
            "--new-tokens",
            "4",
            "--max-batch",
            "8",
        ],
    );
    // Same requests with and without sharing: 2 × 3 states × K = 2, 4 tokens each.
    assert_eq!(mc[0]["generated"], 48);
    assert_eq!(mc[1]["generated"], 48);
    assert!(mc[0]["speedup_from_sharing"].as_f64().unwrap() > 0.0);
    let train = run("train", &["--batch", "2", "--seq", "16", "--steps", "1"]);
    let mfu = train[0]["mfu"].as_f64().unwrap();
    assert!(mfu > 0.0 && train[0]["tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn init_model_writes_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    vineppo(&[
        "gpu",
        "init-model",
        "--shape",
        "tiny",
        "--out",
        out.to_str().unwrap(),
    ]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 512);
    assert_eq!(config["torch_dtype"], "bfloat16");
    // Every id the random model can sample decodes.
    let text = vineppo(&[
        "generate",
        "--model",
        out.to_str().unwrap(),
        "--ids",
        "0,511,300",
        "--max-new-tokens",
        "4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["samples"][0]["ids"].as_array().unwrap().len(), 4);
}
