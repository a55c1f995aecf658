//! Correctness of a device against transformers and against the CPU.
//!
//! | check | compares | tolerance |
//! | --- | --- | --- |
//! | `parity-f32` | fixture logits, log-probs (T = 1, 0.6), greedy ids, gradient norm vs transformers | 1e-4 abs; identical ids; 1e-3 rel |
//! | `parity-bf16` | fixture log-probs in bf16 vs transformers' f32 | mean 0.1, max 0.5 nats |
//! | `greedy-vs-cpu` | engine greedy decoding (nested prefixes, forked samples) on the device vs CPU, f32 | identical ids |
//! | `logprob-op` | `target_logprobs` values and logit gradients vs the fused CPU op | f32 1e-5 / 1e-4; bf16 1e-5 / 1 % |
//! | `adamw` | three AdamW steps (f32 and bf16-with-master parameters) vs the fused CPU loop | 1e-6 abs (masters); bf16 weights 1 ulp |
//!
//! The f32 tolerances are those of the CPU parity tests (`crates/vine-model/tests/parity.rs`);
//! the device runs the same model, so a device kernel that is wrong shows up as a failure here
//! long before it would in a training curve.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;
use vine_model::{target_logprobs, CausalLm, LoadOptions, Transformer};
use vine_rollout::{Engine, EngineConfig, Request, SamplingParams};

use crate::optim::{AdamW, AdamWConfig, GradAccumulator};

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked (`parity-f32 llama`, …).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The measured numbers.
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{mark} {:<24} {}", self.name, self.detail)
    }
}

fn check(name: impl Into<String>, passed: bool, detail: String) -> Check {
    Check {
        name: name.into(),
        passed,
        detail,
    }
}

/// Runs every check on `device` with the fixtures in `fixtures` (`llama/`, `qwen2/`).
pub fn run_all(fixtures: &Path, device: &Device) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for name in ["llama", "qwen2"] {
        let dir = fixtures.join(name);
        let r = Reference::read(&dir)?;
        out.extend(parity_f32(&dir, &r, device).with_context(|| format!("parity-f32 {name}"))?);
        out.push(parity_bf16(&dir, &r, device).with_context(|| format!("parity-bf16 {name}"))?);
        out.push(greedy_vs_cpu(&dir, &r, device).with_context(|| format!("greedy {name}"))?);
    }
    out.extend(logprob_op(device).context("logprob-op")?);
    out.extend(adamw(device).context("adamw")?);
    Ok(out)
}

/// The numbers `scripts/make_parity_fixtures.py` recorded with transformers.
pub struct Reference {
    name: String,
    prompt: Vec<u32>,
    sequence: Vec<u32>,
    last_logits: Vec<f32>,
    logprobs: Vec<f32>,
    logprobs_t06: Vec<f32>,
    greedy: Vec<u32>,
    grad_norm: f64,
}

impl Reference {
    /// Reads `dir/reference.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("reference.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading `{}` (pass --fixtures)", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not JSON", path.display()))?;
        let floats = |k: &str| -> Result<Vec<f32>> {
            v[k].as_array()
                .with_context(|| format!("`{}`: no array `{k}`", path.display()))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<_>>()
                .with_context(|| format!("`{}`: `{k}` holds a non-number", path.display()))
        };
        let ids = |k: &str| -> Result<Vec<u32>> {
            Ok(floats(k)?.into_iter().map(|x| x as u32).collect())
        };
        Ok(Self {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            prompt: ids("prompt_ids")?,
            sequence: ids("sequence_ids")?,
            last_logits: floats("last_logits")?,
            logprobs: floats("logprobs")?,
            logprobs_t06: floats("logprobs_t06")?,
            greedy: ids("greedy_ids")?,
            grad_norm: v["grad_norm"]
                .as_f64()
                .with_context(|| format!("`{}`: no `grad_norm`", path.display()))?,
        })
    }
}

fn load(dir: &Path, device: &Device, dtype: DType, trainable: bool) -> Result<Transformer> {
    let opts = LoadOptions {
        dtype,
        device: device.clone(),
        trainable,
    };
    Transformer::load(dir, &opts).with_context(|| format!("loading `{}`", dir.display()))
}

fn row(ids: &[u32], device: &Device) -> Result<Tensor> {
    Ok(Tensor::new(ids, device)?.unsqueeze(0)?) // (1, T)
}

fn f32s(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// `(mean, max)` absolute difference.
fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    let n = a.len().min(b.len()).max(1) as f32;
    a.iter().zip(b).fold((0.0, 0f32), |(s, m), (x, y)| {
        let d = (x - y).abs();
        (s + d / n, m.max(d))
    })
}

fn parity_f32(dir: &Path, r: &Reference, device: &Device) -> Result<Vec<Check>> {
    let model = load(dir, device, DType::F32, true)?;
    let name = format!("parity-f32 {}", r.name);
    let logits = model.forward(&row(&r.prompt, device)?, &[], None)?; // (1, T, V)
    let last = f32s(&logits.get(0)?.get(r.prompt.len() - 1)?)?;
    let (_, d_logits) = diff(&last, &r.last_logits);
    let seq = row(&r.sequence, device)?;
    let (_, d_lp) = diff(&f32s(&model.token_logprobs(&seq, &[], 1.0)?)?, &r.logprobs);
    let (_, d_lp06) = diff(
        &f32s(&model.token_logprobs(&seq, &[], 0.6)?)?,
        &r.logprobs_t06,
    );
    let nll = model.token_logprobs(&seq, &[], 1.0)?.mean_all()?.neg()?;
    let grads = nll.backward()?;
    let mut sq = 0f64;
    for (_, var) in model.vars() {
        if let Some(g) = grads.get(var.as_tensor()) {
            sq += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let rel = (sq.sqrt() - r.grad_norm).abs() / r.grad_norm;
    let greedy = greedy_cached(&model, &r.prompt, r.greedy.len())?;
    let same = greedy == r.greedy;
    Ok(vec![
        check(
            name.clone(),
            d_logits < 1e-4 && d_lp < 1e-4 && d_lp06 < 1e-4,
            format!("max |Δ| logits {d_logits:.2e}, log-probs {d_lp:.2e}, at T=0.6 {d_lp06:.2e}"),
        ),
        check(
            format!("{name} grad"),
            rel < 1e-3,
            format!("gradient norm relative error {rel:.2e}"),
        ),
        check(
            format!("{name} greedy"),
            same,
            format!(
                "{} greedy ids {}",
                r.greedy.len(),
                if same { "identical" } else { "differ" }
            ),
        ),
    ])
}

/// Greedy ids through the cached decode path (prefill, then one step per token).
fn greedy_cached(model: &Transformer, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    let dev = model.device().clone();
    let mut cache = model.new_cache();
    model.prefill(&row(&prompt[..prompt.len() - 1], &dev)?, &[], &mut cache)?;
    let mut next = prompt[prompt.len() - 1];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let logits = model.decode_step(&row(&[next], &dev)?, &mut cache)?; // (1, V)
        next = logits.argmax(1)?.to_vec1::<u32>()?[0];
        out.push(next);
    }
    Ok(out)
}

fn parity_bf16(dir: &Path, r: &Reference, device: &Device) -> Result<Check> {
    let model = load(dir, device, DType::BF16, false)?;
    let lp = f32s(&model.token_logprobs(&row(&r.sequence, device)?, &[], 1.0)?)?;
    let (mean, max) = diff(&lp, &r.logprobs);
    Ok(check(
        format!("parity-bf16 {}", r.name),
        mean < 0.1 && max < 0.5,
        format!("log-probs vs f32 transformers: mean |Δ| {mean:.3}, max {max:.3}"),
    ))
}

/// Engine greedy decoding of nested prefixes (shared prefill, gathered and forked caches).
fn engine_greedy(model: &Transformer, r: &Reference) -> Result<Vec<Vec<u32>>> {
    let cuts = [r.prompt.len(), r.prompt.len() + 5, r.sequence.len()];
    let requests: Vec<Request> = cuts
        .iter()
        .enumerate()
        .map(|(i, &c)| Request::new(r.sequence[..c].to_vec(), 2, i as u64))
        .collect();
    let params = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: 24,
        max_context: model.config().max_position_embeddings,
        stop_token_ids: Vec::new(),
        ignore_eos: true,
    };
    let engine = Engine::new(EngineConfig {
        max_batch: 4,
        ..EngineConfig::default()
    })?;
    let out = engine.generate(model, &requests, &params, None, &mut |_| {})?;
    Ok(out.into_iter().flatten().map(|s| s.tokens).collect())
}

fn greedy_vs_cpu(dir: &Path, r: &Reference, device: &Device) -> Result<Check> {
    let on_device = engine_greedy(&load(dir, device, DType::F32, false)?, r)?;
    let on_cpu = engine_greedy(&load(dir, &Device::Cpu, DType::F32, false)?, r)?;
    let same = on_device
        .iter()
        .zip(&on_cpu)
        .filter(|(a, b)| a == b)
        .count();
    Ok(check(
        format!("greedy-vs-cpu {}", r.name),
        same == on_cpu.len() && on_device.len() == on_cpu.len(),
        format!("{same}/{} engine samples identical", on_cpu.len()),
    ))
}

/// Pseudo-random `(n, v)` logits of scale ~3 and targets.
fn logits_and_targets(n: usize, v: usize) -> (Vec<f32>, Vec<u32>) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let x = (0..n * v)
        .map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0)
        .collect();
    let t = (0..n).map(|_| (next() % v as u64) as u32).collect();
    (x, t)
}

/// Values and gradients (of `Σ w_i·logp_i`) of `target_logprobs` on `device`.
fn logprobs_and_grad(
    x: &[f32],
    t: &[u32],
    v: usize,
    dtype: DType,
    device: &Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = t.len();
    let logits = Var::from_tensor(&Tensor::from_vec(x.to_vec(), (n, v), device)?.to_dtype(dtype)?)?;
    let targets = Tensor::from_vec(t.to_vec(), n, device)?;
    let lp = target_logprobs(logits.as_tensor(), &targets, 0.6)?; // (N) f32
    let w = Tensor::arange(1u32, n as u32 + 1, device)?.to_dtype(DType::F32)?;
    let grads = (&lp * w)?.sum_all()?.backward()?;
    let g = grads
        .get(logits.as_tensor())
        .context("no gradient reached the logits")?;
    Ok((f32s(&lp)?, f32s(g)?))
}

fn logprob_op(device: &Device) -> Result<Vec<Check>> {
    let (n, v) = (64, 1000);
    let (x, t) = logits_and_targets(n, v);
    let mut out = Vec::new();
    for (dtype, vtol, grel) in [(DType::F32, 1e-5f32, 1e-4f32), (DType::BF16, 1e-5, 1e-2)] {
        let (lp_d, g_d) = logprobs_and_grad(&x, &t, v, dtype, device)?;
        let (lp_c, g_c) = logprobs_and_grad(&x, &t, v, dtype, &Device::Cpu)?;
        let (_, dv) = diff(&lp_d, &lp_c);
        let scale = g_c.iter().fold(0f32, |m, g| m.max(g.abs()));
        let (_, dg) = diff(&g_d, &g_c);
        out.push(check(
            format!("logprob-op {dtype:?}"),
            dv < vtol && dg <= grel * scale,
            format!("max |Δ| values {dv:.2e}, gradients {dg:.2e} (largest {scale:.2e})"),
        ));
    }
    Ok(out)
}

/// Three AdamW steps with fixed gradients from the same start; returns (weights, masters).
fn adamw_run(dtype: DType, device: &Device) -> Result<(Vec<f32>, Vec<f32>)> {
    let (x, _) = logits_and_targets(1, 4096);
    let var = Var::from_tensor(&Tensor::from_vec(x, 4096, device)?.to_dtype(dtype)?)?;
    let cfg = AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        max_grad_norm: Some(1.0),
    };
    let mut opt = AdamW::new(vec![("w".into(), var.clone())], cfg)?;
    let (grads, _) = logits_and_targets(4, 4096);
    for step in 1..4 {
        let g = grads[step * 4096..(step + 1) * 4096].to_vec();
        let g = Tensor::from_vec(g, 4096, device)?.to_dtype(dtype)?;
        let loss = (var.as_tensor() * g)?.sum_all()?;
        let mut acc = GradAccumulator::default();
        acc.add(opt.params(), &loss.backward()?, 1.0)?;
        opt.step(&acc, 1e-2)?;
    }
    let master = opt.master_weight(0).context("no master weight")?;
    Ok((f32s(var.as_tensor())?, f32s(&master)?))
}

fn adamw(device: &Device) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for dtype in [DType::F32, DType::BF16] {
        let (w_d, m_d) = adamw_run(dtype, device)?;
        let (w_c, m_c) = adamw_run(dtype, &Device::Cpu)?;
        let (_, dm) = diff(&m_d, &m_c);
        // bf16 weights are the rounded masters: equal, or one bf16 step apart at a tie.
        let ulps = w_d
            .iter()
            .zip(&w_c)
            .filter(|(a, b)| (*a - *b).abs() > b.abs() * 2f32.powi(-8) * 1.01)
            .count();
        out.push(check(
            format!("adamw {dtype:?}"),
            dm < 1e-6 && ulps == 0,
            format!("max |Δ| masters {dm:.2e}; weights off by more than 1 ulp: {ulps}"),
        ));
    }
    Ok(out)
}
