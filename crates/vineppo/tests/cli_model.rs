//! `vineppo generate`, `logprobs` and `eval` end to end on the tiny Llama fixture, checked
//! against what transformers recorded for it (`scripts/make_parity_fixtures.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures/llama")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).unwrap())
        .unwrap()
}

fn ids_arg(v: &serde_json::Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn vineppo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vineppo"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn logprobs_json_matches_transformers() {
    let r = reference();
    let model = fixture();
    let (ok, out, err) = vineppo(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--ids",
        &ids_arg(&r["sequence_ids"]),
        "--json",
    ]);
    assert!(ok, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lp = got["logprobs"].as_array().unwrap();
    assert!(lp[0].is_null(), "the first token has no log-prob");
    let want = r["logprobs"].as_array().unwrap();
    assert_eq!(lp.len(), want.len() + 1);
    // Tolerance: the library's parity tests hold logits to 1e-4 against transformers.
    for (g, w) in lp[1..].iter().zip(want) {
        assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-4);
    }
    assert_eq!(got["last_logits"].as_array().unwrap().len(), 320);
    // Temperature divides the logits before log-softmax.
    let (ok, out, _) = vineppo(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--ids",
        &ids_arg(&r["sequence_ids"]),
        "--temperature",
        "0.6",
        "--json",
    ]);
    assert!(ok);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = got["logprobs"][1].as_f64().unwrap();
    assert!((first - r["logprobs_t06"][0].as_f64().unwrap()).abs() < 1e-4);
}

#[test]
fn greedy_generate_matches_transformers() {
    let r = reference();
    let greedy: Vec<u64> = r["greedy_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let model = fixture();
    // The recorded continuation: 20 greedy tokens after `prompt_ids`.
    let (ok, out, err) = vineppo(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--ids",
        &ids_arg(&r["prompt_ids"]),
        "--greedy",
        "--ignore-eos",
        "--max-new-tokens",
        &greedy.len().to_string(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<u64> = got["samples"][0]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(ids, greedy);
    assert_eq!(got["samples"][0]["finish"], "length");
}

#[test]
fn sampling_is_seeded_and_bad_input_is_rejected() {
    let model = fixture();
    let m = model.to_str().unwrap();
    let run = |seed: &str| {
        vineppo(&[
            "generate",
            "--model",
            m,
            "--prompt",
            "Tom has",
            "--n",
            "3",
            "--temperature",
            "0.9",
            "--top-p",
            "0.9",
            "--max-new-tokens",
            "8",
            "--seed",
            seed,
            "--json",
        ])
        .1
    };
    assert_eq!(run("5"), run("5"));
    assert_ne!(run("5"), run("6"));
    let (ok, _, err) = vineppo(&["logprobs", "--model", m, "--ids", "1,2,99999"]);
    assert!(!ok && err.contains("out of range"), "{err}");
    let (ok, _, err) = vineppo(&["generate", "--model", "/nonexistent/model", "--prompt", "x"]);
    assert!(!ok && err.contains("/nonexistent/model"), "{err}");
    let (ok, _, err) = vineppo(&["generate", "--model", m, "--ids", "1,x"]);
    assert!(!ok && err.contains("`x`"), "{err}");
}

#[test]
fn eval_writes_a_report_with_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let (ok, stdout, err) = vineppo(&[
        "eval",
        "--model",
        fixture().to_str().unwrap(),
        "--task",
        "arith",
        "--n",
        "3",
        "--limit",
        "4",
        "--max-new-tokens",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("pass@1"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["problems"], 4);
    let details = report["details"].as_array().unwrap();
    assert_eq!(details.len(), 4);
    assert!(details
        .iter()
        .all(|p| p["samples"].as_array().unwrap().len() == 3));
    for key in ["pass1", "majority", "pass_n"] {
        assert!(report[key].as_f64().unwrap() >= 0.0);
    }
}
