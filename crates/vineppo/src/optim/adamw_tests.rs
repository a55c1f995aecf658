use super::*;

fn cfg() -> AdamWConfig {
    AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        max_grad_norm: Some(1.0),
    }
}

/// One optimizer step whose gradient is exactly `g` (the loss is `Σ p·g`).
fn step_with(opt: &mut AdamW, var: &Var, g: &[f32], lr: f64) {
    let g = Tensor::new(g, var.device())
        .unwrap()
        .to_dtype(var.dtype())
        .unwrap();
    let loss = (var.as_tensor() * g).unwrap().sum_all().unwrap();
    let mut acc = GradAccumulator::default();
    acc.add(opt.params(), &loss.backward().unwrap(), 1.0)
        .unwrap();
    opt.step(&acc, lr).unwrap();
}

/// `x` rounded to the nearest bf16.
fn bf16(x: f32) -> f32 {
    f32s(
        &Tensor::new(&[x], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap(),
    )[0]
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Golden values from torch (tolerance 1e-6 absolute):
/// ```python
/// import torch
/// p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
/// opt = torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
/// for g in ([0.5, -1.0, 2.0], [0.1, 0.2, -0.3]):
///     p.grad = torch.tensor(g); torch.nn.utils.clip_grad_norm_([p], 1.0); opt.step()
/// print(p.tolist())
/// ```
#[test]
fn matches_torch_adamw_with_clipping() {
    let dev = Device::Cpu;
    for use_tensor_path in [false, true] {
        let var = Var::new(&[1f32, -2.0, 3.0], &dev).unwrap();
        let var = if use_tensor_path {
            Var::from_tensor(&var.as_tensor().to_dtype(DType::F64).unwrap()).unwrap()
        } else {
            var
        };
        let mut opt = AdamW::new(vec![("p".into(), var.clone())], cfg()).unwrap();
        for g in [[0.5f32, -1.0, 2.0], [0.1, 0.2, -0.3]] {
            step_with(&mut opt, &var, &g, 0.1);
        }
        let got = f32s(var.as_tensor());
        let want = [0.80617857f32, -1.8662064, 2.8549364];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-5,
                "tensor path {use_tensor_path}: {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn save_and_load_round_trip() {
    let dev = Device::Cpu;
    let var = Var::new(&[1f32, 2.0], &dev).unwrap();
    let mut opt = AdamW::new(vec![("w".into(), var.clone())], cfg()).unwrap();
    step_with(&mut opt, &var, &[2.0, 4.0], 0.01);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    opt.save(&path).unwrap();
    let mut other = AdamW::new(vec![("w".into(), var)], cfg()).unwrap();
    other.load(&path).unwrap();
    assert_eq!(other.steps_taken(), 1);
    assert_eq!(f32s(&opt.v[0]), f32s(&other.v[0]));
}

/// Gradients exactly representable in bf16, so both runs see the same numbers.
const GRADS: [[f32; 4]; 3] = [
    [0.5, -0.25, 1.0, -0.125],
    [0.25, 0.5, -1.0, 0.0625],
    [-0.5, 0.125, 0.75, -0.375],
];

#[test]
fn bf16_parameters_follow_the_f32_run_through_their_masters() {
    // The bf16 run updates an f32 master with the same arithmetic as the f32 run, so the
    // masters equal the f32 weights bit for bit, and the bf16 weights are their rounding.
    let init = [0.3f32, -1.7, 2.9, 0.01];
    let dev = Device::Cpu;
    let full = Var::new(&init, &dev).unwrap();
    let half = Var::from_tensor(
        &Tensor::new(&init, &dev)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap(),
    )
    .unwrap();
    let mut a = AdamW::new(vec![("w".into(), full.clone())], cfg()).unwrap();
    let mut b = AdamW::new(vec![("w".into(), half.clone())], cfg()).unwrap();
    // Start from the same (bf16-representable) point.
    full.set(&half.as_tensor().to_dtype(DType::F32).unwrap())
        .unwrap();
    for g in GRADS {
        step_with(&mut a, &full, &g, 0.05);
        step_with(&mut b, &half, &g, 0.05);
    }
    let master = f32s(&b.master_weight(0).unwrap());
    assert_eq!(master, f32s(full.as_tensor()));
    let rounded = f32s(&full.as_tensor().to_dtype(DType::BF16).unwrap());
    assert_eq!(f32s(half.as_tensor()), rounded);
    assert_eq!(b.master_weight(0).unwrap().dtype(), DType::F32);
}

#[test]
fn masters_accumulate_updates_below_bf16_resolution() {
    // bf16 spacing at 1.0 is 2^-7 ≈ 0.0078 (2^-8 below 1.0). Adam moves each weight by about
    // lr = 1e-4 per step, which rounds away when applied to the bf16 weight directly: the
    // naive update never moves. Through the master, 100 steps add up to ≈ 0.01.
    let lr = 1e-4;
    assert_eq!(
        bf16(1.0 - lr as f32),
        1.0,
        "the premise: one step is below bf16 resolution"
    );
    let dev = Device::Cpu;
    let start = Tensor::new(&[1f32, -1.0, 0.5, 2.0], &dev)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let half = Var::from_tensor(&start).unwrap();
    let mut opt = AdamW::new(
        vec![("w".into(), half.clone())],
        AdamWConfig {
            weight_decay: 0.0,
            max_grad_norm: None,
            ..cfg()
        },
    )
    .unwrap();
    for _ in 0..100 {
        step_with(&mut opt, &half, &[1.0, -1.0, 1.0, 1.0], lr);
    }
    // Constant gradients: every step moves each weight by exactly lr against its gradient's
    // sign (up to ε), so the master is start ∓ 100·lr. Tolerance 3e-5 (100 f32 roundings).
    let master = f32s(&opt.master_weight(0).unwrap());
    let expected = [1.0 - 0.01, -1.0 + 0.01, 0.5 - 0.01, 2.0 - 0.01];
    for (m, e) in master.iter().zip(expected) {
        assert!((m - e).abs() < 3e-5, "{master:?} vs {expected:?}");
    }
    let weights = f32s(half.as_tensor());
    let rounded: Vec<f32> = expected.iter().map(|&e| bf16(e)).collect();
    assert_eq!(weights, rounded, "the bf16 weights are the rounded masters");
    assert_ne!(weights, f32s(&start), "the weights moved");
}

#[test]
fn bf16_masters_survive_save_and_load() {
    let dev = Device::Cpu;
    let make = || {
        Var::from_tensor(
            &Tensor::new(&[0.3f32, -1.7, 2.9, 0.01], &dev)
                .unwrap()
                .to_dtype(DType::BF16)
                .unwrap(),
        )
        .unwrap()
    };
    let var = make();
    let mut opt = AdamW::new(vec![("w".into(), var.clone())], cfg()).unwrap();
    for g in GRADS {
        step_with(&mut opt, &var, &g, 1e-3);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    opt.save(&path).unwrap();
    // A fresh model (as loaded from the bf16 checkpoint would be: here, the initial weights)
    // takes the saved masters, and both optimizers then take identical steps.
    let other_var = make();
    let mut other = AdamW::new(vec![("w".into(), other_var.clone())], cfg()).unwrap();
    other.load(&path).unwrap();
    assert_eq!(
        f32s(&other.master_weight(0).unwrap()),
        f32s(&opt.master_weight(0).unwrap())
    );
    assert_eq!(f32s(other_var.as_tensor()), f32s(var.as_tensor()));
    step_with(&mut opt, &var, &GRADS[0], 1e-3);
    step_with(&mut other, &other_var, &GRADS[0], 1e-3);
    assert_eq!(
        f32s(&other.master_weight(0).unwrap()),
        f32s(&opt.master_weight(0).unwrap())
    );
}

#[test]
fn half_precision_gradients_accumulate_in_f32() {
    // 1000 micro-batch gradients of 1e-3 on a weight: in bf16 the running sum stalls once
    // 1e-3 falls below half its spacing (at 0.5 the spacing is 2^-9 ≈ 0.002); in f32 it
    // reaches 1.0 (tolerance 1e-4).
    let dev = Device::Cpu;
    let var = Var::from_tensor(
        &Tensor::new(&[0f32], &dev)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap(),
    )
    .unwrap();
    let params = vec![("w".to_string(), var.clone())];
    let mut acc = GradAccumulator::default();
    let g = Tensor::new(&[1e-3f32], &dev)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let exact = bf16(1e-3) as f64 * 1000.0;
    for _ in 0..1000 {
        let loss = (var.as_tensor() * &g).unwrap().sum_all().unwrap();
        acc.add(&params, &loss.backward().unwrap(), 1.0).unwrap();
    }
    let sum = acc.get(&var).unwrap();
    assert_eq!(sum.dtype(), DType::F32);
    let got = f32s(sum)[0] as f64;
    assert!((got - exact).abs() < 1e-4, "{got} vs {exact}");
}
