//! Parity with transformers 5.23 on the tiny checkpoints of `tests/fixtures/` (built by
//! `scripts/make_parity_fixtures.py`, whose `reference()` produced every number compared here).
//!
//! Tolerances: logits and log-probs 1e-4 absolute (f32; transformers' SDPA and our attention
//! differ in summation order), identical greedy ids, padded vs unpadded 1e-5, gradient norm
//! 1e-3 relative.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{max_diff, values};
use serde_json::Value;
use vine_model::{CausalLm, LoadOptions, ModelConfig, Tokenizer, Transformer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Case {
    dir: PathBuf,
    reference: Value,
    bos: bool,
}

fn case(name: &str, bos: bool) -> Case {
    let dir = fixture(name);
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    Case {
        dir,
        reference: serde_json::from_str(&text).unwrap(),
        bos,
    }
}

fn cases() -> Vec<Case> {
    vec![case("llama", true), case("qwen2", false)]
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn row(ids: &[u32]) -> Tensor {
    Tensor::from_vec(ids.to_vec(), (1, ids.len()), &Device::Cpu).unwrap()
}

fn load(dir: &Path, trainable: bool) -> Transformer {
    let opts = LoadOptions {
        trainable,
        ..LoadOptions::default()
    };
    Transformer::load(dir, &opts).unwrap()
}

#[test]
fn tokenizer_reproduces_the_reference_ids() {
    for c in cases() {
        let tok = Tokenizer::from_dir(&c.dir).unwrap();
        let r = &c.reference;
        let mut prompt = tok
            .bos_id()
            .filter(|_| c.bos)
            .into_iter()
            .collect::<Vec<_>>();
        prompt.extend(
            tok.encode(r["prompt_text"].as_str().unwrap(), false)
                .unwrap(),
        );
        assert_eq!(prompt, ids_of(&r["prompt_ids"]));
        let mut seq = prompt.clone();
        seq.extend(
            tok.encode(r["continuation_text"].as_str().unwrap(), false)
                .unwrap(),
        );
        assert_eq!(seq, ids_of(&r["sequence_ids"]));
        let special = &r["transformers_tokenizer"];
        let as_id = |v: &Value| v.as_u64().map(|x| x as u32);
        assert_eq!(tok.bos_id(), as_id(&special["bos_token_id"]));
        assert_eq!(tok.eos_id(), as_id(&special["eos_token_id"]));
        assert_eq!(tok.pad_id(), as_id(&special["pad_token_id"]));
    }
}

#[test]
fn logits_and_logprobs_match_transformers() {
    for c in cases() {
        let r = &c.reference;
        for trainable in [false, true] {
            let model = load(&c.dir, trainable);
            let prompt = ids_of(&r["prompt_ids"]);
            let logits = model.forward(&row(&prompt), &[], None).unwrap(); // (1, T, V)
            let last = values(&logits.get(0).unwrap().get(prompt.len() - 1).unwrap());
            let d = max_diff(&last, &floats(&r["last_logits"]));
            assert!(d < 1e-4, "{:?} last logits diff {d}", c.dir);
            let seq = row(&ids_of(&r["sequence_ids"]));
            for (key, temp) in [("logprobs", 1.0), ("logprobs_t06", 0.6)] {
                let lp = values(&model.token_logprobs(&seq, &[], temp).unwrap());
                let d = max_diff(&lp, &floats(&r[key]));
                assert!(d < 1e-4, "{:?} {key} diff {d}", c.dir);
            }
        }
    }
}

/// Greedy decoding through the engine interface: prefill all but the last prompt token, then
/// one decode step per generated token.
fn greedy_cached(model: &Transformer, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = model.new_cache();
    model
        .prefill(&row(&prompt[..prompt.len() - 1]), &[], &mut cache)
        .unwrap();
    let mut next = *prompt.last().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let logits = model.decode_step(&row(&[next]), &mut cache).unwrap(); // (1, V)
        next = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap()[0];
        out.push(next);
    }
    out
}

fn greedy_full(model: &Transformer, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let logits = model.forward(&row(&ids), &[], None).unwrap();
        let last = logits.get(0).unwrap().get(ids.len() - 1).unwrap();
        ids.push(last.argmax(0).unwrap().to_scalar::<u32>().unwrap());
    }
    ids[prompt.len()..].to_vec()
}

#[test]
fn greedy_continuations_match_transformers() {
    for c in cases() {
        let model = load(&c.dir, false);
        let prompt = ids_of(&c.reference["prompt_ids"]);
        let expected = ids_of(&c.reference["greedy_ids"]);
        assert_eq!(greedy_cached(&model, &prompt, 20), expected, "{:?}", c.dir);
        assert_eq!(greedy_full(&model, &prompt, 20), expected, "{:?}", c.dir);
    }
}

#[test]
fn left_padded_batch_matches_transformers_and_unpadded_rows() {
    for c in cases() {
        let r = &c.reference;
        let model = load(&c.dir, false);
        let rows: Vec<Vec<u32>> = r["batch_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(ids_of)
            .collect();
        let pads: Vec<usize> = ids_of(&r["batch_left_pad"])
            .iter()
            .map(|&p| p as usize)
            .collect();
        let t = rows[0].len();
        let flat: Vec<u32> = rows.iter().flatten().copied().collect();
        let batch = Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap();
        let lp = values(&model.token_logprobs(&batch, &pads, 1.0).unwrap()); // (B, T-1)
        for (b, reference) in r["batch_logprobs"].as_array().unwrap().iter().enumerate() {
            let reference = floats(reference);
            let ours = &lp[b * (t - 1)..(b + 1) * (t - 1)];
            // Positions whose context is only padding are meaningless on both sides.
            let valid = pads[b]..t - 1;
            let d = max_diff(&ours[valid.clone()], &reference[valid.clone()]);
            assert!(d < 1e-4, "{:?} row {b}: diff vs transformers {d}", c.dir);
            let alone = values(
                &model
                    .token_logprobs(&row(&rows[b][pads[b]..]), &[], 1.0)
                    .unwrap(),
            );
            let d = max_diff(&ours[valid], &alone);
            assert!(d < 1e-5, "{:?} row {b}: padded vs unpadded diff {d}", c.dir);
        }
    }
}

#[test]
fn gradient_norm_matches_transformers() {
    for c in cases() {
        let r = &c.reference;
        let model = load(&c.dir, true);
        let seq = row(&ids_of(&r["sequence_ids"]));
        let nll = model
            .token_logprobs(&seq, &[], 1.0)
            .unwrap()
            .mean_all()
            .unwrap()
            .neg()
            .unwrap();
        let nll_value = nll.to_scalar::<f32>().unwrap() as f64;
        assert!((nll_value - r["nll"].as_f64().unwrap()).abs() < 1e-4);
        let grads = nll.backward().unwrap();
        let mut sq = 0f64;
        for (_, var) in model.vars() {
            let g = grads
                .get(var.as_tensor())
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            sq += g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
        }
        let (ours, theirs) = (sq.sqrt(), r["grad_norm"].as_f64().unwrap());
        assert!(
            (ours - theirs).abs() / theirs < 1e-3,
            "{:?}: {ours} vs {theirs}",
            c.dir
        );
    }
}

#[test]
fn v5_rope_parameters_layout_gives_the_same_model() {
    let src = fixture("llama");
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(src.join("config_v5.json"), dir.path().join("config.json")).unwrap();
    let legacy = ModelConfig::from_dir(&src).unwrap();
    let v5 = ModelConfig::from_dir(dir.path()).unwrap();
    assert_eq!(legacy.rope, v5.rope);
    assert_eq!(legacy.to_hf_json("float32"), v5.to_hf_json("float32"));
    let prompt = row(&ids_of(&case("llama", true).reference["prompt_ids"]));
    let a = values(&load(&src, false).forward(&prompt, &[], None).unwrap());
    let b = values(&load(dir.path(), false).forward(&prompt, &[], None).unwrap());
    assert_eq!(a, b);
}
