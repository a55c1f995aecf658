//! Throughput of the data path: loading the datasets, generating `arith`, drawing an
//! iteration's sample, and mapping step spans to tokens.
//!
//! `cargo bench -p vine-data` (reads `../shared/data` or `$VINEPPO_DATA_DIR`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use vine_data::arith::{generate, ArithConfig};
use vine_data::{
    iteration_sample, load_gsm8k, load_math, load_math500, prm800k_split, step_token_starts,
};

/// Runs `f` `runs` times and prints the best wall time.
fn time<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(f());
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("{name:<48} {:>10.3} ms", best * 1e3);
}

fn main() {
    let dir = std::env::var_os("VINEPPO_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    if dir.join("math/train.jsonl").exists() {
        time("load gsm8k train (7,473 rows)", 5, || {
            load_gsm8k(dir.join("gsm8k/train.jsonl")).unwrap()
        });
        time("load MATH 12,000/500 split (3 files)", 5, || {
            prm800k_split(
                load_math(dir.join("math/train.jsonl")).unwrap(),
                load_math(dir.join("math/test.jsonl")).unwrap(),
                load_math500(dir.join("math/math500_test.jsonl")).unwrap(),
            )
        });
    } else {
        println!(
            "datasets not found in {}; skipping the loaders",
            dir.display()
        );
    }
    for size in [10_000, 100_000] {
        let config = ArithConfig {
            train_size: size,
            test_size: 500,
            ..ArithConfig::default()
        };
        time(
            &format!("generate arith ({size} train + 500 test)"),
            3,
            || generate(&config).unwrap(),
        );
    }
    time("iteration_sample (12,000 problems, P = 64)", 20, || {
        iteration_sample(12_000, 7, 3, 64)
    });
    let token_starts: Vec<usize> = (0..1_024).map(|i| i * 4).collect();
    let steps: Vec<_> = (0..64).map(|i| i * 64..(i + 1) * 64).collect();
    time(
        "step_token_starts (1,024 tokens, 64 steps) x1000",
        20,
        || {
            for _ in 0..1_000 {
                black_box(step_token_starts(black_box(&token_starts), black_box(&steps)).unwrap());
            }
        },
    );
}
