//! `cargo bench -p vine-rollout --bench generate [-- --hf-dir DIR]`: the generation benchmark.
//!
//! Prints the table of [`vine_rollout::bench::run`] with the default configuration. With
//! `--hf-dir DIR` the model and the scenarios are also saved to `DIR` for
//! `scripts/bench_transformers_generate.py`; `--only NAME` runs the scenarios whose name starts
//! with `NAME`; `--repeats N` reports the fastest of `N` runs.

use std::process::ExitCode;

use vine_rollout::bench::{run, BenchConfig};

fn main() -> ExitCode {
    // candle re-derives its thread count (reading /proc/cpuinfo) on every matmul unless
    // RAYON_NUM_THREADS is set: about 5% of a decode step on this model.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let mut cfg = BenchConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--hf-dir" => cfg.hf_dir = args.next().map(Into::into),
            "--only" => cfg.only = args.next(),
            "--repeats" => cfg.repeats = args.next().and_then(|r| r.parse().ok()).unwrap_or(1),
            "--bench" => {}
            other => {
                eprintln!("unknown argument `{other}`; expected `--hf-dir DIR`, `--only NAME`, `--repeats N`");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(&cfg) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
