//! GPU benchmarks on random models of real shapes: decode throughput against the bandwidth
//! roofline, VinePPO's MC pattern with and without prefix forking, and training throughput
//! with MFU.
//!
//! - **Decode roofline.** A decode step must read every weight once and every row's KV cache:
//!   `bytes = N·s + B·ctx·kv_bytes_per_token` (s = bytes per element, ctx the mean context
//!   during the timed steps), so at bandwidth W no engine can exceed `B·W / bytes` tokens/s.
//!   Decode time is measured as `t(new_tokens) − t(1)`: the same requests generating one token
//!   (prefill plus one step) are timed first and subtracted, so prefill is excluded.
//! - **MFU.** Model FLOPs per trained token are `6·N + 12·L·H·T` (PaLM's accounting), divided
//!   by the step time and the device's peak dense FLOP/s.
//!
//! Token ids are pseudo-random; sampling is at temperature 1 with EOS ignored, so every row
//! generates exactly `new_tokens`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use serde_json::{json, Value};
use tokenizers::AddedToken;
use vine_data::{TaskConfig, TaskKind};
use vine_model::{SaveOptions, Transformer};
use vine_rollout::{Engine, EngineConfig, Request, SamplingParams};

use super::memory::{device_name, gib, PeakMemory};
use super::shapes::{dtype_bytes, Costs, Shape};
use super::ModelArgs;
use crate::optim::{AdamW, AdamWConfig, GradAccumulator};
use crate::session;

/// Settings of `vineppo gpu decode`.
#[derive(Debug, Clone)]
pub struct DecodeArgs {
    /// Batch sizes.
    pub batch: Vec<usize>,
    /// Prompt tokens per row.
    pub prompt_len: usize,
    /// Generated tokens per row.
    pub new_tokens: usize,
    /// Memory bandwidth (GB/s) for the roofline.
    pub hbm_gbps: f64,
}

/// Settings of `vineppo gpu mc`.
#[derive(Debug, Clone, Args)]
pub struct McArgs {
    /// Trajectories P.
    #[arg(long, default_value_t = 16)]
    pub prefixes: usize,
    /// Value states S per trajectory (the prompt and S − 1 step boundaries).
    #[arg(long, default_value_t = 6)]
    pub states: usize,
    /// Continuations K per state.
    #[arg(long, default_value_t = 9)]
    pub k: usize,
    /// Trajectory length (its first quarter is the prompt).
    #[arg(long, default_value_t = 512)]
    pub prefix_len: usize,
    /// Tokens generated per continuation.
    #[arg(long, default_value_t = 128)]
    pub new_tokens: usize,
    /// Rows decoding at once.
    #[arg(long, default_value_t = 256)]
    pub max_batch: usize,
}

/// `n` pseudo-random ids in `3..vocab` (0–2 are the specials) from `seed`.
fn random_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = vine_rl::batch::SplitMix64::new(seed);
    (0..n)
        .map(|_| 3 + rng.below(vocab.saturating_sub(3).max(1)) as u32)
        .collect()
}

fn sampling(new_tokens: usize, context: usize) -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: new_tokens,
        max_context: context,
        stop_token_ids: Vec::new(),
        ignore_eos: true,
    }
}

/// The fastest of two runs of [`timed`] (the first may pay for allocations and kernel loads).
fn best_of_two(
    engine: &Engine,
    lm: &Transformer,
    requests: &[Request],
    params: &SamplingParams,
) -> Result<(f64, usize)> {
    let (a, n) = timed(engine, lm, requests, params)?;
    let (b, _) = timed(engine, lm, requests, params)?;
    Ok((a.min(b), n))
}

/// Seconds `engine` takes to serve `requests`, and the tokens it generated.
fn timed(
    engine: &Engine,
    lm: &Transformer,
    requests: &[Request],
    params: &SamplingParams,
) -> Result<(f64, usize)> {
    let start = Instant::now();
    let out = engine.generate(lm, requests, params, None, &mut |_| {})?;
    let secs = start.elapsed().as_secs_f64();
    Ok((secs, out.iter().flatten().map(|s| s.tokens.len()).sum()))
}

fn model(m: &ModelArgs, trainable: bool) -> Result<(Transformer, Device)> {
    let dev = session::device(&m.device)?;
    let lm = m
        .shape
        .build(m.seed, session::dtype(m.dtype), &dev, trainable)?;
    Ok((lm, dev))
}

/// Decode tokens/s at every batch size of `a`.
pub fn decode(m: &ModelArgs, a: &DecodeArgs) -> Result<Vec<Value>> {
    let (lm, dev) = model(m, false)?;
    let cfg = lm.config().clone();
    let bytes = dtype_bytes(lm.dtype());
    let costs = Costs::of(&cfg, bytes);
    let context = a.prompt_len + a.new_tokens;
    let warm = Engine::new(EngineConfig::default())?;
    let probe = Request::new(random_ids(8, cfg.vocab_size, 1), 1, 0);
    timed(&warm, &lm, &[probe], &sampling(4, context))?;
    let mut rows = Vec::new();
    for &b in &a.batch {
        let requests: Vec<Request> = (0..b)
            .map(|i| {
                let ids = random_ids(a.prompt_len, cfg.vocab_size, m.seed + 10 + i as u64);
                Request::new(ids, 1, i as u64)
            })
            .collect();
        let engine = Engine::new(EngineConfig {
            max_batch: b,
            ..EngineConfig::default()
        })?;
        let (t1, _) = best_of_two(&engine, &lm, &requests, &sampling(1, context))?;
        let peak = PeakMemory::start(&dev, std::time::Duration::from_millis(5));
        let (tn, generated) =
            best_of_two(&engine, &lm, &requests, &sampling(a.new_tokens, context))?;
        let memory = peak.finish();
        let steps = a.new_tokens.saturating_sub(1).max(1);
        let decode_s = (tn - t1).max(1e-9);
        let tokens_per_s = (b * steps) as f64 / decode_s;
        let ctx = a.prompt_len as f64 + a.new_tokens as f64 / 2.0;
        let step_bytes = costs.decode_bytes(bytes, b, ctx);
        let roofline = b as f64 * a.hbm_gbps * 1e9 / step_bytes;
        rows.push(json!({
            "batch": b,
            "prompt_len": a.prompt_len,
            "new_tokens": a.new_tokens,
            "generated": generated,
            "total_s": tn,
            "prefill_plus_one_s": t1,
            "decode_tokens_per_s": tokens_per_s,
            "step_ms": decode_s / steps as f64 * 1e3,
            "roofline_tokens_per_s": roofline,
            "fraction_of_roofline": tokens_per_s / roofline,
            "peak_gib": memory.map(|(_, p)| gib(p)),
        }));
    }
    Ok(rows)
}

/// VinePPO's MC rollouts with and without prefix sharing.
pub fn mc(m: &ModelArgs, a: &McArgs) -> Result<Vec<Value>> {
    let (lm, dev) = model(m, false)?;
    let vocab = lm.config().vocab_size;
    let prompt = (a.prefix_len / 4).max(1);
    let mut requests = Vec::new();
    for p in 0..a.prefixes {
        let traj = random_ids(a.prefix_len, vocab, m.seed + 1000 + p as u64);
        for s in 0..a.states {
            let cut = prompt + s * (a.prefix_len - prompt) / a.states.max(1);
            let seed = (p * a.states + s) as u64;
            requests.push(Request::new(traj[..cut.max(1)].to_vec(), a.k, seed));
        }
    }
    let params = sampling(a.new_tokens, a.prefix_len + a.new_tokens);
    let warm = Engine::new(EngineConfig::default())?;
    timed(&warm, &lm, &requests[..1], &sampling(4, a.prefix_len + 4))?;
    let mut rows = Vec::new();
    for sharing in [true, false] {
        let engine = Engine::new(EngineConfig {
            max_batch: a.max_batch,
            prefix_sharing: sharing,
            ..EngineConfig::default()
        })?;
        let peak = PeakMemory::start(&dev, std::time::Duration::from_millis(5));
        let (secs, generated) = timed(&engine, &lm, &requests, &params)?;
        let memory = peak.finish();
        rows.push(json!({
            "prefix_sharing": sharing,
            "requests": requests.len(),
            "rollouts": requests.len() * a.k,
            "prefix_len": a.prefix_len,
            "new_tokens": a.new_tokens,
            "generated": generated,
            "seconds": secs,
            "tokens_per_s": generated as f64 / secs.max(1e-9),
            "peak_gib": memory.map(|(_, p)| gib(p)),
        }));
    }
    if let [on, off] = &mut rows[..] {
        let speedup =
            off["seconds"].as_f64().unwrap_or(0.0) / on["seconds"].as_f64().unwrap_or(1.0);
        on["speedup_from_sharing"] = json!(speedup);
    }
    Ok(rows)
}

/// Seconds since `start`, after the device has finished its queued work.
fn synced(dev: &Device, start: Instant) -> Result<f64> {
    dev.synchronize()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Forward + backward + AdamW on random `(batch, seq)` token batches: one warm-up step, then
/// `steps` timed ones.
pub fn train(
    m: &ModelArgs,
    batch: usize,
    seq: usize,
    steps: usize,
    peak_tflops: f64,
) -> Result<Vec<Value>> {
    let (lm, dev) = model(m, true)?;
    let cfg = lm.config().clone();
    let costs = Costs::of(&cfg, dtype_bytes(lm.dtype()));
    let adamw = AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        max_grad_norm: Some(1.0),
    };
    let mut opt = AdamW::new(lm.vars(), adamw)?;
    let peak = PeakMemory::start(&dev, std::time::Duration::from_millis(5));
    let (mut fwd, mut bwd, mut upd) = (0.0, 0.0, 0.0);
    for step in 0..=steps {
        let ids = random_ids(batch * seq, cfg.vocab_size, m.seed + 7 + step as u64);
        let ids = Tensor::from_vec(ids, (batch, seq), &dev)?; // (B, T)
        let t0 = Instant::now();
        let loss = lm.token_logprobs(&ids, &[], 1.0)?.mean_all()?.neg()?;
        let t_fwd = synced(&dev, t0)?;
        let grads = loss.backward()?;
        let t_bwd = synced(&dev, t0)?;
        let mut acc = GradAccumulator::default();
        acc.add(opt.params(), &grads, 1.0)?;
        drop(grads);
        opt.step(&acc, 1e-6)?;
        let t_all = synced(&dev, t0)?;
        if step > 0 {
            fwd += t_fwd;
            bwd += t_bwd - t_fwd;
            upd += t_all - t_bwd;
        }
    }
    let memory = peak.finish();
    let n = steps.max(1) as f64;
    let step_s = (fwd + bwd + upd) / n;
    let tokens_per_s = (batch * seq) as f64 / step_s;
    let flops = costs.train_flops_per_token(seq) * tokens_per_s;
    Ok(vec![json!({
        "batch": batch,
        "seq": seq,
        "steps": steps,
        "forward_s": fwd / n,
        "backward_s": bwd / n,
        "optimizer_s": upd / n,
        "step_s": step_s,
        "tokens_per_s": tokens_per_s,
        "model_tflops": flops / 1e12,
        "mfu": flops / (peak_tflops * 1e12),
        "peak_gib": memory.map(|(_, p)| gib(p)),
    })])
}

/// Prints `rows` (and writes them with the run's description to `--json`).
pub fn emit(m: &ModelArgs, bench: &str, rows: &[Value]) -> Result<()> {
    let dev = session::device(&m.device)?;
    let cfg = m.shape.config();
    let header = json!({
        "bench": bench,
        "shape": m.shape.name(),
        "parameters": cfg.num_parameters(),
        "dtype": format!("{:?}", m.dtype).to_lowercase(),
        "device": m.device,
        "device_name": device_name(&dev),
        "rows": rows,
    });
    println!(
        "{bench}: {} ({:.1}M parameters), {:?} on {} {}",
        m.shape.name(),
        cfg.num_parameters() as f64 / 1e6,
        m.dtype,
        m.device,
        device_name(&dev).unwrap_or_default()
    );
    for row in rows {
        let fields: Vec<String> = row
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| match v.as_f64() {
                Some(x) if v.is_f64() => format!("{k}={x:.4}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        println!("  {}", fields.join(" "));
    }
    if let Some(path) = &m.json {
        crate::atomic::write_file(path, serde_json::to_string_pretty(&header)?.as_bytes())?;
    }
    Ok(())
}

/// A random model of `shape` as a Hugging Face directory in bf16, with a byte-level BPE
/// tokenizer trained on the `arith` task and padded with `<extra_i>` tokens to the shape's
/// vocabulary (so every id a random model samples decodes).
pub fn init_model(shape: Shape, out: &Path, seed: u64) -> Result<()> {
    let cfg = shape.config();
    let task = session::load_task(&TaskConfig {
        kind: TaskKind::Arith,
        ..TaskConfig::default()
    })?;
    let texts = task
        .train()
        .iter()
        .map(|ex| format!("{}{}", task.query(ex), task.target(ex)));
    let base = cfg.vocab_size.min(512);
    let mut tok = crate::tokenizer_train::train_bpe(texts, base)?;
    let have = tok.get_vocab_size(true);
    let extra: Vec<AddedToken> = (have..cfg.vocab_size)
        .map(|i| AddedToken::from(format!("<extra_{i}>"), false))
        .collect();
    tok.add_tokens(extra)
        .map_err(|e| anyhow::anyhow!("padding the tokenizer: {e}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    crate::tokenizer_train::save_tokenizer_dir(&tok, out, cfg.max_position_embeddings)?;
    let model = Transformer::new_random(cfg, seed, candle_core::DType::BF16, &Device::Cpu, false)?;
    model.write_hf_files(out, &SaveOptions::default())?;
    Ok(())
}
