//! Training-step throughput of the two CPU reference shapes (see `BENCHMARKS.md`):
//! the built-in `arith` model at 32 × 110 and the 4.2M-parameter `s4x256` at 16 × 128.
//!
//! `cargo bench -p vine-model --bench train_step`
//! (`VINE_BENCH_SHAPE=builtin|s4x256` runs one shape, `VINE_BENCH_KERNELS=fused|composed` one
//! formulation (default: both, composed first), `VINE_BENCH_OPS=1` adds a per-op breakdown,
//! `VINE_BENCH_REPS` sets best-of-N, default 5;
//! thread counts from `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, see `pin_thread_counts`).

use vine_model::bench::{format_breakdown, op_breakdown, train_step, TrainShape};
use vine_model::{pin_thread_counts, tune_allocator, Kernels};

fn main() -> candle_core::Result<()> {
    let (rayon_threads, candle_threads) = pin_thread_counts();
    tune_allocator();
    let reps = std::env::var("VINE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("VINE_BENCH_SHAPE").unwrap_or_default();
    let kernels = match std::env::var("VINE_BENCH_KERNELS").as_deref() {
        Ok("fused") => vec![Kernels::Fused],
        Ok("composed") => vec![Kernels::Composed],
        _ => vec![Kernels::Composed, Kernels::Fused],
    };
    println!("{rayon_threads} GEMM threads, {candle_threads} element-wise threads");
    for shape in [TrainShape::builtin(), TrainShape::s4x256()] {
        let key = if shape.name == "arith-tiny" {
            "builtin"
        } else {
            "s4x256"
        };
        if !(only.is_empty() || only == key) {
            continue;
        }
        for &k in &kernels {
            print!("{}", train_step(&shape, k, reps)?);
        }
        if std::env::var("VINE_BENCH_OPS").is_ok_and(|v| v == "1") {
            print!("{}", format_breakdown(&op_breakdown(&shape, reps)?));
        }
    }
    Ok(())
}
