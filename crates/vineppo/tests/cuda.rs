//! Checks that need a GPU. Each test runs on CUDA device 0 when this build has the `cuda`
//! feature and a GPU answers, and otherwise prints why it is skipped and passes; with
//! `VINEPPO_REQUIRE_CUDA=1` a missing GPU is a failure instead (for GPU machines, so that a
//! misconfigured run cannot pass silently).
//!
//! `cargo test --release --features cuda -p vineppo --test cuda` on a machine with a GPU and a
//! toolchain; machines without a toolchain run the same checks from the binary with
//! `vineppo gpu check` (`scripts/gpu/check.sh`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use vineppo::config::Dtype;
use vineppo::gpu::{bench, checks, cuda_device, shapes::Shape, ModelArgs};
use vineppo::optim::{AdamW, AdamWConfig, GradAccumulator};

/// The CUDA device, or returns from the test after saying why it is skipped.
macro_rules! cuda_or_skip {
    () => {
        match cuda_device(0) {
            Some(d) => d,
            None if std::env::var_os("VINEPPO_REQUIRE_CUDA").is_some() => {
                panic!("VINEPPO_REQUIRE_CUDA is set but no CUDA device is available")
            }
            None => {
                eprintln!("skipped: no CUDA device (build with --features cuda on a GPU machine)");
                return;
            }
        }
    };
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures")
}

#[test]
fn fixtures_greedy_logprobs_and_adamw_match_on_cuda() {
    let dev = cuda_or_skip!();
    let results = checks::run_all(&fixtures(), &dev).unwrap();
    for c in &results {
        eprintln!("{c}");
    }
    assert!(results.iter().all(|c| c.passed));
    assert_eq!(results.len(), 14);
}

#[test]
fn bf16_masters_update_on_cuda_like_on_cpu() {
    // Same start, same gradients: the CUDA tensor-op update of the f32 master must agree with
    // the fused CPU loop (tolerance 1e-6 absolute on weights of order 1, lr 1e-3).
    let dev = cuda_or_skip!();
    let run = |dev: &Device| -> Vec<f32> {
        let w = Tensor::new(&[0.5f32, -1.25, 2.0, 0.0625], dev)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let var = Var::from_tensor(&w).unwrap();
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            max_grad_norm: None,
        };
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], cfg).unwrap();
        for g in [[0.5f32, -0.25, 1.0, 0.125], [0.25, 0.5, -1.0, 2.0]] {
            let g = Tensor::new(&g, dev).unwrap().to_dtype(DType::BF16).unwrap();
            let loss = (var.as_tensor() * g).unwrap().sum_all().unwrap();
            let mut acc = GradAccumulator::default();
            acc.add(opt.params(), &loss.backward().unwrap(), 1.0)
                .unwrap();
            opt.step(&acc, 1e-3).unwrap();
        }
        opt.master_weight(0).unwrap().to_vec1().unwrap()
    };
    let (gpu, cpu) = (run(&dev), run(&Device::Cpu));
    for (a, b) in gpu.iter().zip(&cpu) {
        assert!((a - b).abs() < 1e-6, "{gpu:?} vs {cpu:?}");
    }
}

#[test]
fn benchmarks_run_on_cuda() {
    let _dev = cuda_or_skip!();
    let model = ModelArgs {
        shape: Shape::Tiny,
        device: "cuda".into(),
        dtype: Dtype::Bf16,
        seed: 0,
        json: None,
    };
    let decode = bench::DecodeArgs {
        batch: vec![8],
        prompt_len: 16,
        new_tokens: 8,
        hbm_gbps: 3350.0,
    };
    let rows = bench::decode(&model, &decode).unwrap();
    assert_eq!(rows[0]["generated"], 64);
    assert!(rows[0]["peak_gib"].as_f64().unwrap() > 0.0);
    let train = bench::train(&model, 2, 32, 1, 989.0).unwrap();
    assert!(train[0]["tokens_per_s"].as_f64().unwrap() > 0.0);
}
