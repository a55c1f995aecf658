//! End-to-end runs of `vineppo grade`.

use std::process::Command;

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
fn grades_a_pair_and_a_file() {
    let (ok, out, _) = vineppo(&[
        "grade",
        "--task",
        "math",
        "--gold",
        "\\frac{1}{2}",
        "--pred",
        "so \\boxed{\\dfrac12}",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), r#"{"correct":true,"extracted":"\\frac{1}{2}"}"#);
    let (ok, out, _) = vineppo(&[
        "grade",
        "--task",
        "gsm8k",
        "--gold",
        "Natalia sold 72.\n#### 72",
        "--pred",
        "x\n#### 7,2",
    ]);
    assert!(ok && out.contains("\"correct\":true"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.jsonl");
    let verdicts = dir.path().join("verdicts.jsonl");
    std::fs::write(&input, "{\"pred\": \"\\\\boxed{C}\", \"gold\": \"\\\\text{(C)}\"}\n\n{\"pred\": \"x = 3\", \"gold\": \"4\"}\n").unwrap();
    let (ok, _, err) = vineppo(&[
        "grade",
        "--task",
        "math",
        "--input",
        input.to_str().unwrap(),
        "--out",
        verdicts.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("1/2 correct"), "{err}");
    let lines: Vec<String> = std::fs::read_to_string(&verdicts)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("true") && lines[1].contains("false"));
}

#[test]
fn bad_input_names_the_line_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.jsonl");
    std::fs::write(
        &input,
        "{\"pred\": \"1\", \"gold\": \"1\"}\n{\"pred\": 3}\n",
    )
    .unwrap();
    let (ok, _, err) = vineppo(&[
        "grade",
        "--task",
        "gsm8k",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("line 2"), "{err}");
    let (ok, _, err) = vineppo(&["grade", "--task", "gsm8k", "--input", "/nonexistent.jsonl"]);
    assert!(!ok && err.contains("/nonexistent.jsonl"), "{err}");
}
