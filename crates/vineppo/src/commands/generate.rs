//! `vineppo generate` and `vineppo logprobs`: sampling from and scoring with a model directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor};
use vine_model::Tokenizer;
use vine_rollout::{Engine, EngineConfig, FinishReason, Request, SamplingParams, StopKind};

use crate::session::load_model;
use crate::text::TextStops;

/// Where the input tokens come from.
pub enum Input {
    /// Text, tokenised with the model's tokenizer (BOS prepended if `bos`).
    Text { text: String, bos: bool },
    /// Token ids as given.
    Ids(Vec<u32>),
}

/// Parses `1,2,3`.
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .with_context(|| format!("--ids: `{p}` is not a token id (expected e.g. `1,2,3`)"))
        })
        .collect()
}

fn input_ids(input: &Input, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    let ids = match input {
        Input::Ids(ids) => ids.clone(),
        Input::Text { text, bos } => {
            let mut ids: Vec<u32> = if *bos {
                tokenizer.bos_id().into_iter().collect()
            } else {
                Vec::new()
            };
            ids.extend(tokenizer.encode(text, false)?);
            ids
        }
    };
    if ids.is_empty() {
        bail!("the input is empty: give a non-empty --prompt/--text or --ids");
    }
    Ok(ids)
}

/// Options of `vineppo generate`.
pub struct GenerateArgs {
    /// Samples.
    pub n: usize,
    /// Sampling settings (temperature 0 = greedy).
    pub params: SamplingParams,
    /// Seed.
    pub seed: u64,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Print JSON.
    pub json: bool,
    /// Device and dtype.
    pub placement: crate::session::DeviceArgs,
}

/// Samples continuations and prints them.
pub fn generate(model_dir: &Path, input: &Input, mut args: GenerateArgs) -> Result<()> {
    let (device, dtype) = args.placement.resolve()?;
    let loaded = load_model(model_dir, &device, dtype, false)?;
    let ids = input_ids(input, &loaded.tokenizer)?;
    args.params.stop_token_ids = loaded.tokenizer.stop_ids().to_vec();
    args.params.max_context = args
        .params
        .max_context
        .min(loaded.model.config().max_position_embeddings);
    let stops = TextStops::new(&loaded.tokenizer, &args.stop);
    let engine = Engine::new(EngineConfig {
        max_batch: args.n.clamp(1, 256),
        ..EngineConfig::default()
    })?;
    let request = Request::new(ids.clone(), args.n, args.seed);
    let out = engine.generate(
        &loaded.model,
        &[request],
        &args.params,
        (!stops.is_empty()).then_some(&stops as _),
        &mut |_| {},
    )?;
    let samples = out.into_iter().next().unwrap_or_default();
    let mut json = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let text = loaded.tokenizer.decode(&s.tokens, false)?;
        let finish = match s.finish {
            FinishReason::Stop(StopKind::Token(_)) => "stop",
            FinishReason::Stop(StopKind::String(_)) => "stop_string",
            FinishReason::Length => "length",
        };
        if args.json {
            json.push(serde_json::json!({"index": i, "ids": s.tokens, "logprobs": s.logprobs, "text": text, "finish": finish}));
        } else {
            if samples.len() > 1 {
                println!("--- sample {i} ({finish}, {} tokens)", s.tokens.len());
            }
            println!("{text}");
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"prompt_ids": ids, "samples": json})
        );
    }
    Ok(())
}

/// Prints per-token log-probs of the input and the last position's logits.
pub fn logprobs(
    model_dir: &Path,
    input: &Input,
    temperature: f64,
    json: bool,
    placement: &crate::session::DeviceArgs,
) -> Result<()> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        bail!("--temperature must be > 0 (got {temperature})");
    }
    let (device, dtype) = placement.resolve()?;
    let loaded = load_model(model_dir, &device, dtype, false)?;
    let ids = input_ids(input, &loaded.tokenizer)?;
    let vocab = loaded.model.config().vocab_size;
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        bail!("token id {bad} is out of range: the model's vocab_size is {vocab}");
    }
    let t = Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?; // (1, T)
    let lp: Vec<f32> = loaded
        .model
        .token_logprobs(&t, &[0], temperature)?
        .squeeze(0)?
        .to_vec1()?;
    let logits = loaded.model.forward(&t, &[0], None)?; // (1, T, V)
    let last: Vec<f32> =
        (logits.get(0)?.get(ids.len() - 1)?.to_dtype(DType::F32)? / temperature)?.to_vec1()?;
    let logprobs: Vec<Option<f32>> = std::iter::once(None)
        .chain(lp.into_iter().map(Some))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({"ids": ids, "logprobs": logprobs, "last_logits": last})
        );
    } else {
        for (id, lp) in ids.iter().zip(&logprobs) {
            let piece = loaded.tokenizer.id_to_token(*id).unwrap_or_default();
            match lp {
                Some(v) => println!("{id:>8} {v:>12.5}  {piece:?}"),
                None => println!("{id:>8} {:>12}  {piece:?}", "-"),
            }
        }
    }
    Ok(())
}
