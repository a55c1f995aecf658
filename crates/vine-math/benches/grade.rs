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
use std::path::PathBuf;
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

fn adversarial() -> Vec<(String, String)> {
    let mut cases = vec![
        (
            format!(r"\boxed{{{}1{}}}", "(".repeat(5000), ")".repeat(5000)),
            "1".to_string(),
        ),
        (
            format!(r"\boxed{{{}}}", r"\frac{1}{".repeat(300) + &"}".repeat(300)),
            "1".to_string(),
        ),
        (r"\boxed{9^{9^{9^{9^{9}}}}}".to_string(), "1".to_string()),
        (
            r"\boxed{2^{2^{2^{2^{2}}}}}".to_string(),
            r"2^{65536}".to_string(),
        ),
        (
            r"\boxed{(x+1)^{100000}}".to_string(),
            r"(x+1)^{99999}".to_string(),
        ),
        (r"\boxed{100000!}".to_string(), "1".to_string()),
        (
            r"\boxed{170!-169!}".to_string(),
            r"169\cdot 169!".to_string(),
        ),
        (
            format!(r"\boxed{{{}}}", "x+".repeat(3000) + "x"),
            "3001x".to_string(),
        ),
        (format!(r"\boxed{{{}}}", "1,".repeat(3000)), "1".to_string()),
        (r"\boxed{1}".repeat(3000), "1".to_string()),
        ("9".repeat(20000), "9".to_string()),
        ("$".repeat(20000), "1".to_string()),
        (r"\boxed{".repeat(5000), "1".to_string()),
        ("}".repeat(5000) + r"\boxed{1}", "1".to_string()),
        (
            format!(
                r"\boxed{{{}}}",
                r"\sqrt{".repeat(500) + "2" + &"}".repeat(500)
            ),
            "1".to_string(),
        ),
        (
            format!(r"\boxed{{{}}}", r"\sin".repeat(2000) + "x"),
            r"\sin x".to_string(),
        ),
        (
            format!(r"\boxed{{{}}}", "-".repeat(10000) + "1"),
            "1".to_string(),
        ),
        (
            format!(r"\boxed{{{}}}", "a".repeat(10000)),
            "a".repeat(10000),
        ),
        (
            r"\boxed{\begin{pmatrix}".to_string() + &"1&".repeat(2000) + r"\end{pmatrix}}",
            "1".to_string(),
        ),
        (r"\boxed{1/0}".to_string(), r"\frac{1}{0}".to_string()),
        (
            r"\boxed{x^{x^{x^{x}}}}".to_string(),
            r"x^{x^{x^{x}}}+0".to_string(),
        ),
        (
            r"\boxed{\frac{x^{9}-1}{x-1}}".to_string(),
            "1+x+x^2+x^3+x^4+x^5+x^6+x^7+x^8".to_string(),
        ),
    ];
    // The same, as gold answers too.
    let swapped: Vec<(String, String)> = cases
        .iter()
        .map(|(r, g)| (format!(r"\boxed{{{g}}}"), r.clone()))
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

fn main() {
    let dir = data_dir();
    let gsm8k = jsonl(dir.join("gsm8k/test.jsonl"));
    let math = jsonl(dir.join("math/test.jsonl"));

    let gsm8k_cases: Vec<(String, String)> = gsm8k
        .iter()
        .map(|row| {
            (
                format!("\n{}\n", field(row, "answer")),
                field(row, "answer"),
            )
        })
        .collect();
    let math_cases: Vec<(String, String, String)> = math
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let solution = field(row, "solution");
            let response = match (i % 4, last_boxed(&solution)) {
                (1, Some(answer)) => solution.replace(&format!("{{{answer}}}"), "{2x+1}"),
                (3, Some(answer)) => {
                    solution.replace(&format!("{{{answer}}}"), &format!("{{{answer}+0}}"))
                }
                _ => solution.clone(),
            };
            (format!("\n{response}\n"), solution, field(row, "problem"))
        })
        .collect();

    println!("vine-math throughput (single thread, best of 3)");
    let per_second = throughput(&gsm8k_cases, |(r, g)| {
        black_box(grade_gsm8k(r, g, Gsm8kMode::Strict));
    });
    report(
        "grade_gsm8k strict (GSM8K test)",
        gsm8k_cases.len(),
        per_second,
    );
    let per_second = throughput(&gsm8k_cases, |(r, g)| {
        black_box(grade_gsm8k(r, g, Gsm8kMode::Lenient));
    });
    report(
        "grade_gsm8k lenient (GSM8K test)",
        gsm8k_cases.len(),
        per_second,
    );
    let per_second = throughput(&math_cases, |(r, g, q)| {
        black_box(grade_math(r, g, Some(q)));
    });
    report(
        "grade_math typical (MATH test)",
        math_cases.len(),
        per_second,
    );
    let adversarial = adversarial();
    let per_second = throughput(&adversarial, |(r, g)| {
        black_box(grade_math(r, g, Some("separated by commas")));
    });
    report("grade_math adversarial", adversarial.len(), per_second);
    let slowest = adversarial
        .iter()
        .map(|(r, g)| {
            let start = Instant::now();
            black_box(grade_math(r, g, None));
            (
                start.elapsed().as_secs_f64() * 1e3,
                r.chars().take(40).collect::<String>(),
            )
        })
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "  slowest adversarial case: {:.2} ms ({:?}…)",
        slowest.0, slowest.1
    );

    let per_second = throughput(&math_cases, |(r, _, _)| {
        black_box(split_math(r));
    });
    report(
        "split_math (MATH test solutions)",
        math_cases.len(),
        per_second,
    );
    let per_second = throughput(&gsm8k_cases, |(r, _)| {
        black_box(split_gsm8k(r));
    });
    report(
        "split_gsm8k (GSM8K test solutions)",
        gsm8k_cases.len(),
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
