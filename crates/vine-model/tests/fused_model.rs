//! The training forward with fused CPU kernels against the same model running the composed
//! candle ops ([`Kernels::Composed`], the formulation the parity fixtures were checked with):
//! log-probs and the gradient of every parameter, in f32 and f64, for a GQA Llama with
//! llama3 RoPE and all biases (the MLP then takes the per-op path) and a tied Qwen2 (the MLP
//! fuses whole), on left-padded batches.
//!
//! Tolerance: `|fused − composed| ≤ tol · (1 + max |composed|)` per tensor, tol 1e-11 in f64
//! and 5e-5 in f32 (the two differ only in the association of sums).

mod common;

use candle_core::{DType, Tensor};
use common::*;
use vine_model::{Kernels, ModelConfig, Transformer};

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let (a, b) = (flat(a), flat(b));
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = 1.0 + b.iter().fold(0f64, |m, x| m.max(x.abs()));
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= tol * scale,
        "{what}: max difference {worst:e} (scale {scale})"
    );
}

/// Log-probs and all gradients of `model` under both kernel choices.
fn compare(model: &mut Transformer, ids: &Tensor, pads: &[usize], tol: f64) {
    let mut out = Vec::new();
    for k in [Kernels::Composed, Kernels::Fused] {
        model.set_kernels(k);
        let lp = model.token_logprobs(ids, pads, 0.7).unwrap();
        let w = Tensor::arange(0u32, lp.elem_count() as u32, lp.device())
            .unwrap()
            .to_dtype(lp.dtype())
            .unwrap()
            .reshape(lp.dims())
            .unwrap();
        let grads = (&lp * ((w * 0.01).unwrap() + 1.0).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        out.push((lp, grads));
    }
    let ((lp_c, g_c), (lp_f, g_f)) = (&out[0], &out[1]);
    close("log-probs", lp_f, lp_c, tol);
    for (name, var) in model.vars() {
        let (f, c) = (g_f.get(var.as_tensor()), g_c.get(var.as_tensor()));
        let f = f.unwrap_or_else(|| panic!("{name}: no gradient with fused kernels"));
        let c = c.unwrap_or_else(|| panic!("{name}: no gradient with composed kernels"));
        close(&format!("grad {name}"), f, c, tol);
    }
}

fn configs() -> Vec<ModelConfig> {
    let mut llama = tiny_llama_config();
    (llama.qkv_bias, llama.o_bias, llama.mlp_bias) = (true, true, true);
    vec![llama, tiny_qwen_config()]
}

#[test]
fn fused_training_forward_matches_the_composed_one() {
    for (dtype, tol) in [(DType::F64, 1e-11), (DType::F32, 5e-5)] {
        for cfg in configs() {
            let mut model = random_model(cfg.clone(), 11, dtype, true);
            assert_eq!(model.kernels(), Kernels::Fused);
            let rows = ids(3, 40, cfg.vocab_size, 5);
            let short = [
                rows[0].clone(),
                rows[1][..23].to_vec(),
                rows[2][..1].to_vec(),
            ];
            let (x, pads) = left_padded(&short, 0);
            compare(&mut model, &x, &pads, tol);
            // Right-padded training batches pass no padding at all.
            compare(&mut model, &tensor(&rows), &[], tol);
        }
    }
}

/// A frozen model's forward without a cache (the reference policy scoring episodes) runs the
/// fused kernels too; it equals the composed ops up to summation order (1e-4 on logits of size
/// ~1–10, f32), with and without left padding.
#[test]
fn frozen_forward_matches_across_kernel_choices() {
    let cfg = tiny_llama_config();
    let mut model = random_model(cfg.clone(), 3, DType::F32, false);
    let rows = ids(2, 9, cfg.vocab_size, 1);
    let (padded, pads) = left_padded(&[rows[0].clone(), rows[1][..5].to_vec()], 0);
    for (x, pads) in [(tensor(&rows), vec![]), (padded, pads)] {
        model.set_kernels(Kernels::Fused);
        let fused = values(&model.forward(&x, &pads, None).unwrap());
        model.set_kernels(Kernels::Composed);
        let composed = values(&model.forward(&x, &pads, None).unwrap());
        let d = max_diff(&fused, &composed);
        assert!(d < 1e-4, "pads {pads:?}: max |Δ| {d}");
        assert!(fused != composed, "the two paths should be different code");
    }
}
