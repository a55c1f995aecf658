//! Training-step and decode-step timings on a ~4M-parameter Llama (the `s4x256` shape of the
//! candle measurements: 4 layers, width 256, SwiGLU 688, vocab 2048), f32 on CPU.
//!
//! `cargo bench -p vine-model` (`VINE_BENCH=train|decode|logprob` runs one part; thread counts
//! from `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, see [`pin_thread_counts`]). Prints:
//! - forward, and forward + backward, of the mean teacher-forced log-prob for batch 16 × 128;
//! - an AdamW step (candle-nn) over all parameters;
//! - prefill of batch 32 × 32 and 127 decode steps through `CausalLm` (`VINE_BENCH_B`,
//!   `VINE_BENCH_PROMPT` change the batch and prompt length);
//! - the fused target log-prob op against log_softmax + gather on (2048, 32000) logits.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use vine_model::logprobs::{composed_target_logprobs, target_logprobs};
use vine_model::{pin_thread_counts, tune_allocator, CausalLm, ModelConfig, Transformer};

fn ids(b: usize, t: usize, vocab: usize, seed: u64) -> Tensor {
    let mut s = seed;
    let v: Vec<u32> = (0..b * t)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect();
    Tensor::from_vec(v, (b, t), &Device::Cpu).unwrap()
}

/// Fastest of `n` runs of `f` after one warm-up, in seconds (the minimum is the least
/// disturbed by other processes on a shared machine).
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn training(model: &Transformer, cfg: &ModelConfig) {
    let (b, t) = (16, 128);
    let x = ids(b, t, cfg.vocab_size, 1);
    let tokens = (b * t) as f64;
    let fwd = time(3, || {
        let lp = model.token_logprobs(&x, &[], 1.0).unwrap();
        lp.mean_all().unwrap().to_scalar::<f32>().unwrap();
    });
    let step = time(3, || {
        let loss = model
            .token_logprobs(&x, &[], 1.0)
            .unwrap()
            .mean_all()
            .unwrap();
        loss.backward().unwrap();
    });
    // The frozen reference policy's forward (no graph), as the trainer scores every episode.
    let frozen = model.frozen_copy().unwrap();
    let frozen_fwd = time(3, || {
        let lp = frozen.token_logprobs(&x, &[], 1.0).unwrap();
        lp.mean_all().unwrap().to_scalar::<f32>().unwrap();
    });
    println!(
        "frozen B{b}xT{t}: forward {:.3} s ({:.0} tok/s)",
        frozen_fwd,
        tokens / frozen_fwd
    );
    let vars: Vec<Var> = model.vars().into_iter().map(|(_, v)| v).collect();
    let params = candle_nn::ParamsAdamW {
        lr: 1e-6,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(vars, params).unwrap();
    let loss = model
        .token_logprobs(&x, &[], 1.0)
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let adamw = time(3, || opt.step(&grads).unwrap());
    println!(
        "train  B{b}xT{t}: forward {:.3} s ({:.0} tok/s)",
        fwd,
        tokens / fwd
    );
    println!(
        "train  B{b}xT{t}: forward+backward {:.3} s ({:.0} tok/s)",
        step,
        tokens / step
    );
    println!("train  AdamW step (candle-nn) {:.3} s", adamw);
}

fn decoding(model: &Transformer, cfg: &ModelConfig) {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (b, prompt, steps) = (env("VINE_BENCH_B", 32), env("VINE_BENCH_PROMPT", 32), 127);
    let x = ids(b, prompt, cfg.vocab_size, 2);
    let mut cache = model.new_cache();
    let prefill_s = time(3, || {
        cache = model.new_cache();
        model.prefill(&x, &[], &mut cache).unwrap();
    });
    let first = ids(b, 1, cfg.vocab_size, 3);
    let decode_s = time(3, || {
        let mut c = cache.clone();
        let mut next = first.clone();
        for _ in 0..steps {
            let logits = model.decode_step(&next, &mut c).unwrap();
            next = logits.argmax_keepdim(1).unwrap();
        }
    });
    let per_step = decode_s / steps as f64;
    println!(
        "decode B{b}, prompt {prompt}: prefill {:.3} s ({:.0} tok/s)",
        prefill_s,
        (b * prompt) as f64 / prefill_s
    );
    println!(
        "decode B{b}: {:.1} ms/step ({:.0} tok/s over {steps} steps)",
        per_step * 1e3,
        b as f64 / per_step
    );
}

fn logprob_op() {
    let (n, v) = (2048, 32000);
    let data: Vec<f32> = (0..n * v)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
        .collect();
    let x = Var::from_tensor(&Tensor::from_vec(data, (n, v), &Device::Cpu).unwrap()).unwrap();
    let tg = ids(1, n, v, 4).flatten_all().unwrap();
    for (name, fused) in [("fused", true), ("composed", false)] {
        let s = time(3, || {
            let lp = if fused {
                target_logprobs(x.as_tensor(), &tg, 0.6).unwrap()
            } else {
                composed_target_logprobs(x.as_tensor(), &tg, 0.6).unwrap()
            };
            lp.sum_all().unwrap().backward().unwrap();
        });
        println!("logprob op ({n}, {v}) fwd+bwd, {name}: {:.3} s", s);
    }
}

fn main() {
    let (rayon_threads, candle_threads) = pin_thread_counts();
    tune_allocator();
    let cfg = ModelConfig::tiny_llama(2048, 256, 4, 4, 4, 688);
    println!(
        "model: Llama, 4 layers, width 256, 4 heads, SwiGLU 688, vocab 2048: {} parameters, \
         {rayon_threads} GEMM threads, {candle_threads} element-wise threads",
        cfg.num_parameters(),
    );
    let model = Transformer::new_random(cfg.clone(), 0, DType::F32, &Device::Cpu, true).unwrap();
    let only = std::env::var("VINE_BENCH").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    if run("train") {
        training(&model, &cfg);
    }
    if run("decode") {
        decoding(&model, &cfg);
        let frozen = model.frozen_copy().unwrap();
        print!("(frozen copy) ");
        decoding(&frozen, &cfg);
    }
    if run("logprob") {
        logprob_op();
    }
}
