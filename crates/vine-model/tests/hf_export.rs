//! Saved directories load back in Rust to the same logits, and (developer check) in
//! transformers: with `VINEPPO_HF_EXPORT_DIR=DIR`, this test writes, for each fixture model
//! after one SGD step, `DIR/<name>` (f32) and `DIR/<name>-bf16` plus `DIR/<name>*.expected.json`
//! holding the ids, the logits our side computes and our RoPE frequencies; `scripts/check_hf_load.py DIR/*/` then
//! loads each directory with `AutoModelForCausalLM` and compares (tolerance 1e-4).

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::Optimizer;
use common::{max_diff, values};
use vine_model::{LoadOptions, SaveOptions, Tokenizer, Transformer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture model after one SGD step on its reference sequence, so that the saved weights
/// are ours, not the checkpoint's.
fn trained(name: &str) -> (Transformer, Tensor, String) {
    let opts = LoadOptions {
        trainable: true,
        ..LoadOptions::default()
    };
    let model = Transformer::load(fixture(name), &opts).unwrap();
    let tok = Tokenizer::from_dir(fixture(name)).unwrap();
    let text = "Problem: What is 6 * 7?\nSolution: 6 * 7 = 42.\n#### 42";
    let mut ids: Vec<u32> = tok.bos_id().into_iter().collect();
    ids.extend(tok.encode(text, false).unwrap());
    let x = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap();
    let vars = model.vars().into_iter().map(|(_, v)| v).collect();
    let mut sgd = candle_nn::SGD::new(vars, 0.1).unwrap();
    let loss = model
        .token_logprobs(&x, &[], 1.0)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap();
    sgd.backward_step(&loss).unwrap();
    (model, x, text.to_string())
}

fn logits(model: &Transformer, x: &Tensor) -> Vec<f32> {
    values(&model.forward(x, &[], None).unwrap())
}

#[test]
fn saved_directories_reload_to_the_same_logits() {
    let export = std::env::var_os("VINEPPO_HF_EXPORT_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let root = export.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    for name in ["llama", "qwen2"] {
        let (model, x, text) = trained(name);
        for (suffix, dtype) in [("", DType::F32), ("-bf16", DType::BF16)] {
            let out = root.join(format!("{name}{suffix}"));
            let opts = SaveOptions {
                dtype: Some(dtype),
                source_dir: Some(fixture(name)),
            };
            model.save_pretrained(&out, &opts).unwrap();
            assert!(out.join("tokenizer.json").is_file());
            let reloaded = Transformer::load(&out, &LoadOptions::default()).unwrap();
            let expected = logits(&reloaded, &x);
            if dtype == DType::F32 {
                let frozen = model.frozen_copy().unwrap();
                assert!(max_diff(&logits(&frozen, &x), &expected) == 0.0);
            }
            let json = serde_json::json!({
                "text": text,
                "ids": x.flatten_all().unwrap().to_vec1::<u32>().unwrap(),
                "vocab_size": model.config().vocab_size,
                "logits": expected,
                "inv_freq": model.config().rope.inv_freq(model.config().head_dim),
            });
            let path = root.join(format!("{name}{suffix}.expected.json"));
            std::fs::write(path, json.to_string()).unwrap();
        }
    }
}
