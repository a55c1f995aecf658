//! The training forward is differentiable end to end: every parameter receives a gradient,
//! and the gradients equal central finite differences in f64.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::*;
use vine_model::{ModelConfig, Transformer};

/// Mean teacher-forced log-prob of a left-padded batch (the padded row's first target is
/// padding and included: the loss only has to be a smooth function of every weight).
fn loss(model: &Transformer, ids: &Tensor, pads: &[usize]) -> Tensor {
    model
        .token_logprobs(ids, pads, 0.7)
        .unwrap()
        .mean_all()
        .unwrap()
}

fn all_biases(mut cfg: ModelConfig) -> ModelConfig {
    cfg.qkv_bias = true;
    cfg.o_bias = true;
    cfg.mlp_bias = true;
    cfg
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    for cfg in [all_biases(tiny_llama_config()), tiny_qwen_config()] {
        let model = random_model(cfg.clone(), 7, DType::F32, true);
        let (ids, pads) = left_padded(&ids(2, 9, cfg.vocab_size, 1), 0);
        let grads = loss(&model, &ids, &pads).backward().unwrap();
        let vars = model.vars();
        assert_eq!(vars.len(), cfg.parameter_shapes().len());
        for (name, var) in vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "{name}: zero gradient");
        }
    }
}

/// Sets entry `i` of `var` to `value`.
fn set_entry(var: &Var, i: usize, value: f64) {
    let mut v: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    v[i] = value;
    let t = Tensor::from_vec(v, var.as_tensor().shape(), &Device::Cpu).unwrap();
    var.set(&t).unwrap();
}

#[test]
fn gradients_match_finite_differences_in_f64() {
    // 2 layers, width 16, 4 query / 2 kv heads, all biases, llama3 RoPE, untied head; and a
    // tied Qwen2. Central differences with h = 1e-5; error < 1e-9 + 1e-6·(|numeric| + |analytic|)
    // (rounding of the f64 loss alone gives ~1e-11 absolute).
    let mut llama = all_biases(ModelConfig::tiny_llama(23, 16, 2, 4, 2, 24));
    llama.rope = tiny_llama_config().rope;
    let mut qwen = tiny_qwen_config();
    (
        qwen.hidden_size,
        qwen.head_dim,
        qwen.intermediate_size,
        qwen.vocab_size,
    ) = (16, 4, 20, 29);
    for cfg in [llama, qwen] {
        let model = random_model(cfg.clone(), 3, DType::F64, true);
        let (ids, pads) = left_padded(&[vec![1, 5, 7, 2, 9, 4, 3], vec![8, 6, 1, 11]], 0);
        let grads = loss(&model, &ids, &pads).backward().unwrap();
        let mut worst = 0f64;
        for (name, var) in model.vars() {
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let x0: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let n = x0.len();
            for i in [0, n / 2, n - 1] {
                let h = 1e-5;
                set_entry(&var, i, x0[i] + h);
                let up = loss(&model, &ids, &pads).to_scalar::<f64>().unwrap();
                set_entry(&var, i, x0[i] - h);
                let down = loss(&model, &ids, &pads).to_scalar::<f64>().unwrap();
                set_entry(&var, i, x0[i]);
                let numeric = (up - down) / (2.0 * h);
                let err = (numeric - g[i]).abs();
                let ok = err < 1e-9 + 1e-6 * (numeric.abs() + g[i].abs());
                assert!(ok, "{name}[{i}]: analytic {} numeric {numeric}", g[i]);
                worst = worst.max(err / (numeric.abs() + g[i].abs()).max(1e-3));
            }
        }
        eprintln!("{:?}: worst relative error {worst:e}", cfg.architecture);
    }
}
