//! Each fused CPU op against its composed candle formulation: values and the gradients of a
//! weighted sum of the outputs (distinct weights, so every output element matters), in f32
//! and f64, over fixed edge cases and property-tested shapes.
//!
//! Tolerances, relative to the largest magnitude of the compared tensor (`|a − b| ≤ tol ·
//! (1 + max|b|)`): 1e-12 in f64, 2e-5 in f32. Only the association of sums differs between
//! the two formulations, so anything larger is a bug.

use candle_core::{DType, Device, Tensor, Var};
use proptest::prelude::*;
use vine_model::fused::{self, AttentionSpec};
use vine_model::rope::{Rope, RopeTables};
use vine_model::RopeConfig;

/// Deterministic pseudo-normal values.
fn randn(shape: &[usize], seed: u64, scale: f64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let (u, w) = (next().max(1e-12), next());
            scale * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn var(shape: &[usize], seed: u64, scale: f64, dtype: DType) -> Var {
    Var::from_tensor(&randn(shape, seed, scale, dtype)).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor, dtype: DType) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
    let (a, b) = (flat(a), flat(b));
    let scale = 1.0 + b.iter().fold(0f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: fused {x} vs composed {y}"
        );
    }
}

/// Runs `fused` and `composed` on `inputs`, compares outputs and input gradients of
/// `Σ weights ⊙ out`.
fn check(
    name: &str,
    inputs: &[Var],
    dtype: DType,
    fused: impl Fn(&[Tensor]) -> Tensor,
    composed: impl Fn(&[Tensor]) -> Tensor,
) {
    let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (fused(&xs), composed(&xs));
    assert_close(&format!("{name} value"), &a, &b, dtype);
    let w = randn(a.dims(), 99, 1.0, dtype);
    let ga = (&a * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (&b * &w).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, x) in inputs.iter().enumerate() {
        let (ga, gb) = (ga.get(x.as_tensor()), gb.get(x.as_tensor()));
        let (ga, gb) = (ga.expect("fused grad"), gb.expect("composed grad"));
        assert_close(&format!("{name} grad of input {i}"), ga, gb, dtype);
    }
}

fn tables(b: usize, t: usize, d: usize, left_pad: &[usize], dtype: DType) -> RopeTables {
    let starts = if left_pad.is_empty() {
        vec![0; b]
    } else {
        left_pad.to_vec()
    };
    let positions = vine_model::cache::positions(&starts, 0, t);
    let cfg = RopeConfig {
        theta: 100.0,
        ..RopeConfig::default()
    };
    Rope::new(&cfg, d)
        .tables(&positions, b, t, dtype, &Device::Cpu)
        .unwrap()
}

#[allow(clippy::too_many_arguments)]
fn check_attention(
    b: usize,
    t: usize,
    h: usize,
    kv: usize,
    d: usize,
    left_pad: &[usize],
    dtype: DType,
    seed: u64,
) {
    let spec = AttentionSpec {
        n_heads: h,
        n_kv_heads: kv,
        head_dim: d,
        scale: 1.0 / (d as f64).sqrt(),
    };
    let rope = tables(b, t, d, left_pad, dtype);
    let inputs = [
        var(&[b, t, h * d], seed, 1.5, dtype),
        var(&[b, t, kv * d], seed + 1, 1.5, dtype),
        var(&[b, t, kv * d], seed + 2, 1.0, dtype),
    ];
    let name = format!("attention b{b} t{t} h{h}/{kv} d{d} pad {left_pad:?} {dtype:?}");
    check(
        &name,
        &inputs,
        dtype,
        |x| fused::attention(&x[0], &x[1], &x[2], &spec, &rope, left_pad).unwrap(),
        |x| fused::composed_attention(&x[0], &x[1], &x[2], &spec, &rope, left_pad).unwrap(),
    );
}

#[test]
fn attention_matches_composed() {
    for dtype in [DType::F32, DType::F64] {
        // GQA, several query blocks, left padding (including a fully padded row).
        check_attention(3, 70, 6, 2, 8, &[0, 5, 70], dtype, 1);
        // Plain multi-head, one block, no padding given.
        check_attention(2, 9, 4, 4, 4, &[], dtype, 2);
        // Multi-query, a single token.
        check_attention(1, 1, 3, 1, 2, &[0], dtype, 3);
    }
}

#[test]
fn rms_norm_matches_composed() {
    for dtype in [DType::F32, DType::F64] {
        for (shape, eps) in [
            (vec![3, 70, 24], 1e-5),
            (vec![130, 7], 1e-6),
            (vec![1, 1], 1e-2),
        ] {
            let h = shape[shape.len() - 1];
            let inputs = [var(&shape, 4, 2.0, dtype), var(&[h], 5, 1.0, dtype)];
            check(
                &format!("rms_norm {shape:?} {dtype:?}"),
                &inputs,
                dtype,
                |x| fused::rms_norm(&x[0], &x[1], eps).unwrap(),
                |x| fused::composed_rms_norm(&x[0], &x[1], eps).unwrap(),
            );
        }
    }
}

#[test]
fn swiglu_matches_composed() {
    for dtype in [DType::F32, DType::F64] {
        for shape in [vec![2, 33, 40], vec![20000], vec![1]] {
            let inputs = [var(&shape, 6, 3.0, dtype), var(&shape, 7, 1.0, dtype)];
            check(
                &format!("swiglu {shape:?} {dtype:?}"),
                &inputs,
                dtype,
                |x| fused::swiglu(&x[0], &x[1]).unwrap(),
                |x| fused::composed_swiglu(&x[0], &x[1]).unwrap(),
            );
        }
    }
}

#[test]
fn linear_matches_composed() {
    for dtype in [DType::F32, DType::F64] {
        for (shape, out) in [
            (vec![2, 35, 24], 40),
            (vec![7, 3], 1),
            (vec![1, 1, 1, 5], 9),
        ] {
            let inp = shape[shape.len() - 1];
            let inputs = [var(&shape, 8, 1.0, dtype), var(&[out, inp], 9, 0.5, dtype)];
            check(
                &format!("linear {shape:?} -> {out} {dtype:?}"),
                &inputs,
                dtype,
                |x| fused::linear(&x[0], &x[1]).unwrap(),
                |x| fused::composed_linear(&x[0], &x[1]).unwrap(),
            );
        }
    }
}

#[test]
fn swiglu_mlp_matches_composed() {
    for dtype in [DType::F32, DType::F64] {
        for (shape, i, o) in [
            (vec![2, 35, 24], 40, 24),
            (vec![5, 3], 1, 2),
            (vec![70, 16], 33, 7),
        ] {
            let h = shape[shape.len() - 1];
            let inputs = [
                var(&shape, 10, 1.0, dtype),
                var(&[i, h], 11, 0.5, dtype),
                var(&[i, h], 12, 0.5, dtype),
                var(&[o, i], 13, 0.5, dtype),
            ];
            check(
                &format!("swiglu_mlp {shape:?} i{i} o{o} {dtype:?}"),
                &inputs,
                dtype,
                |x| fused::swiglu_mlp(&x[0], &x[1], &x[2], &x[3]).unwrap(),
                |x| fused::composed_swiglu_mlp(&x[0], &x[1], &x[2], &x[3]).unwrap(),
            );
        }
    }
}

#[test]
fn fused_ops_record_a_graph_and_reject_bad_shapes() {
    let x = var(&[2, 3, 8], 1, 1.0, DType::F32);
    let w = var(&[8], 2, 1.0, DType::F32);
    let y = fused::rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
    assert!(y.track_op(), "the fused op must stay in the graph");
    assert!(fused::rms_norm(x.as_tensor(), &randn(&[7], 1, 1.0, DType::F32), 1e-5).is_err());
    assert!(fused::swiglu(x.as_tensor(), &randn(&[2, 3, 7], 1, 1.0, DType::F32)).is_err());
    assert!(fused::linear(x.as_tensor(), &randn(&[4, 7], 1, 1.0, DType::F32)).is_err());
    let (g, d) = (
        randn(&[5, 8], 1, 1.0, DType::F32),
        randn(&[8, 5], 1, 1.0, DType::F32),
    );
    assert!(fused::swiglu_mlp(x.as_tensor(), &g, &g, &d).is_ok());
    assert!(fused::swiglu_mlp(x.as_tensor(), &g, &d, &d).is_err());
    let spec = AttentionSpec {
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        scale: 0.5,
    };
    let rope = tables(2, 3, 4, &[], DType::F32);
    let k = randn(&[2, 3, 4], 3, 1.0, DType::F32);
    assert!(fused::attention(x.as_tensor(), &k, &k, &spec, &rope, &[]).is_ok());
    assert!(fused::attention(x.as_tensor(), &k, &k, &spec, &rope, &[4, 0]).is_err());
    assert!(
        fused::attention(x.as_tensor(), &x.as_tensor().clone(), &k, &spec, &rope, &[]).is_err()
    );
}

#[test]
fn half_precision_falls_back_to_the_composed_ops() {
    let x = randn(&[2, 5, 8], 1, 1.0, DType::BF16);
    let w = randn(&[8], 2, 1.0, DType::BF16);
    let a = fused::rms_norm(&x, &w, 1e-5).unwrap();
    let b = fused::composed_rms_norm(&x, &w, 1e-5).unwrap();
    assert_eq!(flat(&a), flat(&b));
    assert_eq!(a.dtype(), DType::BF16);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn attention_matches_composed_on_random_shapes(
        b in 1usize..4,
        t in 1usize..45,
        kv in 1usize..3,
        group in 1usize..4,
        half in 1usize..5,
        pads in proptest::collection::vec(0usize..50, 3),
        f64_ in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let left_pad: Vec<usize> = pads.iter().take(b).map(|&p| p % (t + 1)).collect();
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        check_attention(b, t, kv * group, kv, 2 * half, &left_pad, dtype, seed);
    }

    #[test]
    fn row_ops_match_composed_on_random_shapes(
        rows in 1usize..200,
        width in 1usize..40,
        out in 1usize..20,
        f64_ in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let x = [var(&[rows, width], seed, 2.0, dtype), var(&[width], seed + 1, 1.0, dtype)];
        check("rms_norm", &x, dtype,
            |x| fused::rms_norm(&x[0], &x[1], 1e-5).unwrap(),
            |x| fused::composed_rms_norm(&x[0], &x[1], 1e-5).unwrap());
        let g = [var(&[rows, width], seed + 2, 3.0, dtype), var(&[rows, width], seed + 3, 1.0, dtype)];
        check("swiglu", &g, dtype,
            |x| fused::swiglu(&x[0], &x[1]).unwrap(),
            |x| fused::composed_swiglu(&x[0], &x[1]).unwrap());
        let l = [var(&[rows, width], seed + 4, 1.0, dtype), var(&[out, width], seed + 5, 1.0, dtype)];
        check("linear", &l, dtype,
            |x| fused::linear(&x[0], &x[1]).unwrap(),
            |x| fused::composed_linear(&x[0], &x[1]).unwrap());
        let m = [
            var(&[rows, width], seed + 6, 1.0, dtype),
            var(&[out, width], seed + 7, 0.5, dtype),
            var(&[out, width], seed + 8, 0.5, dtype),
            var(&[width, out], seed + 9, 0.5, dtype),
        ];
        check("swiglu_mlp", &m, dtype,
            |x| fused::swiglu_mlp(&x[0], &x[1], &x[2], &x[3]).unwrap(),
            |x| fused::composed_swiglu_mlp(&x[0], &x[1], &x[2], &x[3]).unwrap());
    }
}
