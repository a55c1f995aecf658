//! Grading and splitting throughput.
//!
//! `cargo bench -p vine-math --bench grade` prints responses per second for:
//! - GSM8K strict grading of the GSM8K test solutions (as responses) against their answers;
//! - MATH grading of model-like outputs: MATH test solutions as responses, half of them with the
//!   final box replaced by a wrong or re-written answer, against the gold solutions;
//! - MATH grading of adversarial outputs built to stress the extractor, normaliser, parser and
//!   evaluator (deep nesting, huge exponents and factorials, thousands of boxes, long inputs);
//! - the MATH and GSM8K step splitters on the same typical responses, and the MATH splitter on
//!   adversarial text.
//!
//! Data come from `$VINEPPO_DATA_DIR` or `<repo>/../shared/data`; the adversarial set is built
//! in. Plain `std::time` loops; each figure is the best of three passes.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vine_math::extract::last_boxed;
use vine_math::{grade_gsm8k, grade_math, split_gsm8k, split_math, Gsm8kMode};

fn data_dir() -> PathBuf {
    match std::env::var_os("VINEPPO_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

fn jsonl(path: PathBuf) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading `{}` (set VINEPPO_DATA_DIR): {e}", path.display()));
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn field(row: &serde_json::Value, key: &str) -> String {
    row[key].as_str().unwrap_or_default().to_string()
}

/// Best-of-three items per second of `f` applied to every item.
fn throughput<T>(items: &[T], mut f: impl FnMut(&T)) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        for item in items {
            f(item);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    items.len() as f64 / best
}

fn report(name: &str, count: usize, per_second: f64) {
    println!(
        "{name:<44} {count:>6} items  {per_second:>12.0} /s  {:>9.1} µs each",
        1e6 / per_second
    );
}

/// Responses and gold answers that stress every stage; each is also used with the roles swapped.
fn adversarial() -> Vec<(String, String)> {
    let boxed = |s: String| format!(r"\boxed{{{s}}}");
    let mut cases = vec![
        (
            boxed(format!("{}1{}", "(".repeat(5000), ")".repeat(5000))),
            "1".to_string(),
        ),
        (
            boxed(r"\frac{1}{".repeat(300) + &"}".repeat(300)),
            "1".to_string(),
        ),
        (
            boxed(r"\sqrt{".repeat(500) + "2" + &"}".repeat(500)),
            "1".to_string(),
        ),
        (boxed(r"\sin".repeat(2000) + "x"), r"\sin x".to_string()),
        (boxed("-".repeat(10000) + "1"), "1".to_string()),
        (boxed("x+".repeat(3000) + "x"), "3001x".to_string()),
        (boxed("1,".repeat(3000)), "1".to_string()),
        (boxed("a".repeat(10000)), "a".repeat(10000)),
        (
            boxed(r"\begin{pmatrix}".to_string() + &"1&".repeat(2000) + r"\end{pmatrix}"),
            "1".to_string(),
        ),
        (r"\boxed{1}".repeat(3000), "1".to_string()),
        (r"\boxed{".repeat(5000), "1".to_string()),
        ("}".repeat(5000) + r"\boxed{1}", "1".to_string()),
        ("9".repeat(20000), "9".to_string()),
        ("$".repeat(20000), "1".to_string()),
    ];
    let formulas = [
        (r"9^{9^{9^{9^{9}}}}", "1"),
        (r"2^{2^{2^{2^{2}}}}", r"2^{65536}"),
        (r"(x+1)^{100000}", r"(x+1)^{99999}"),
        (r"100000!", "1"),
        (r"170!-169!", r"169\cdot 169!"),
        (r"1/0", r"\frac{1}{0}"),
        (r"x^{x^{x^{x}}}", r"x^{x^{x^{x}}}+0"),
        (r"\frac{x^{9}-1}{x-1}", "1+x+x^2+x^3+x^4+x^5+x^6+x^7+x^8"),
    ];
    cases.extend(
        formulas
            .iter()
            .map(|(r, g)| (boxed(r.to_string()), g.to_string())),
    );
    let swapped: Vec<(String, String)> = cases
        .iter()
        .map(|(r, g)| (boxed(g.clone()), r.clone()))
        .collect();
    cases.extend(swapped);
    cases
}

fn adversarial_splits() -> Vec<String> {
    vec![
        "\n".repeat(20000),
        "$".repeat(20000),
        r"\begin{a}".repeat(3000),
        r"\begin{".repeat(3000) + "}",
        "A. B. ".repeat(5000),
        "x = 1, ".repeat(5000),
        "=".repeat(20000),
        format!("${}$", "a+".repeat(10000)),
        "[asy]".repeat(4000),
        (r"\[x\]".to_string() + "$").repeat(3000),
    ]
}

/// GSM8K test solutions as responses, with their answers as gold.
fn gsm8k_cases(dir: &Path) -> Vec<(String, String)> {
    let rows = jsonl(dir.join("gsm8k/test.jsonl"));
    rows.iter()
        .map(|row| {
            (
                format!("\n{}\n", field(row, "answer")),
                field(row, "answer"),
            )
        })
        .collect()
}

/// MATH test solutions as responses (one in four with a wrong final box, one in four with a
/// rewritten one), with the gold solution and the problem.
fn math_cases(dir: &Path) -> Vec<(String, String, String)> {
    let rows = jsonl(dir.join("math/test.jsonl"));
    let mut cases = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let solution = field(row, "solution");
        let response = match (i % 4, last_boxed(&solution)) {
            (1, Some(answer)) => solution.replace(&format!("{{{answer}}}"), "{2x+1}"),
            (3, Some(answer)) => {
                solution.replace(&format!("{{{answer}}}"), &format!("{{{answer}+0}}"))
            }
            _ => solution.clone(),
        };
        cases.push((format!("\n{response}\n"), solution, field(row, "problem")));
    }
    cases
}

fn bench_graders(gsm8k: &[(String, String)], math: &[(String, String, String)]) {
    for (name, mode) in [
        ("strict", Gsm8kMode::Strict),
        ("lenient", Gsm8kMode::Lenient),
    ] {
        let per_second = throughput(gsm8k, |(r, g)| {
            black_box(grade_gsm8k(r, g, mode));
        });
        report(
            &format!("grade_gsm8k {name} (GSM8K test)"),
            gsm8k.len(),
            per_second,
        );
    }
    let per_second = throughput(math, |(r, g, q)| {
        black_box(grade_math(r, g, Some(q)));
    });
    report("grade_math typical (MATH test)", math.len(), per_second);
    let adversarial = adversarial();
    let per_second = throughput(&adversarial, |(r, g)| {
        black_box(grade_math(r, g, Some("separated by commas")));
    });
    report("grade_math adversarial", adversarial.len(), per_second);
    let mut slowest = (0.0, String::new());
    for (r, g) in &adversarial {
        let start = Instant::now();
        black_box(grade_math(r, g, None));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if ms > slowest.0 {
            slowest = (ms, r.chars().take(40).collect());
        }
    }
    println!(
        "  slowest adversarial case: {:.2} ms ({:?}…)",
        slowest.0, slowest.1
    );
}

fn bench_splitters(gsm8k: &[(String, String)], math: &[(String, String, String)]) {
    let per_second = throughput(math, |(r, _, _)| {
        black_box(split_math(r));
    });
    report("split_math (MATH test solutions)", math.len(), per_second);
    let per_second = throughput(gsm8k, |(r, _)| {
        black_box(split_gsm8k(r));
    });
    report(
        "split_gsm8k (GSM8K test solutions)",
        gsm8k.len(),
        per_second,
    );
    let splits = adversarial_splits();
    let per_second = throughput(&splits, |r| {
        black_box(split_math(r));
    });
    report(
        "split_math adversarial (~20-40 KB each)",
        splits.len(),
        per_second,
    );
}

fn main() {
    let dir = data_dir();
    let (gsm8k, math) = (gsm8k_cases(&dir), math_cases(&dir));
    println!("vine-math throughput (single thread, best of 3)");
    bench_graders(&gsm8k, &math);
    bench_splitters(&gsm8k, &math);
}
