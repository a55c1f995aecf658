//! Saving a model as a Hugging Face directory and loading it back gives identical logits.

mod common;

use candle_core::DType;
use common::*;
use vine_model::{LoadOptions, SaveOptions, Transformer};

#[test]
fn save_then_load_gives_identical_logits() {
    for cfg in [tiny_llama_config(), tiny_qwen_config()] {
        let model = random_model(cfg.clone(), 11, DType::F32, true);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ckpt");
        model
            .save_pretrained(&out, &SaveOptions::default())
            .unwrap();
        for f in ["config.json", "model.safetensors", "generation_config.json"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let opts = LoadOptions {
            trainable: true,
            ..LoadOptions::default()
        };
        let loaded = Transformer::load(&out, &opts).unwrap();
        assert_eq!(loaded.config(), model.config());
        let x = tensor(&ids(2, 7, cfg.vocab_size, 3));
        let a = values(&model.forward(&x, &[], None).unwrap());
        let b = values(&loaded.forward(&x, &[], None).unwrap());
        assert_eq!(a, b);
        // A tied head is not written twice.
        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.names().contains(&"lm_head.weight"),
            !cfg.tie_word_embeddings
        );
    }
}

#[test]
fn saving_over_an_existing_directory_replaces_it() {
    let cfg = tiny_llama_config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    let first = random_model(cfg.clone(), 1, DType::F32, false);
    first
        .save_pretrained(&out, &SaveOptions::default())
        .unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    let second = random_model(cfg.clone(), 2, DType::F32, false);
    second
        .save_pretrained(
            &out,
            &SaveOptions {
                dtype: Some(DType::BF16),
                source_dir: None,
            },
        )
        .unwrap();
    assert!(!out.join("stale.txt").exists());
    // Only the target directory is left behind: no temporary siblings.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ckpt")]);
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["torch_dtype"], "bfloat16");
    // bf16 weights load back into f32 and match the bf16-rounded original.
    let loaded = Transformer::load(&out, &LoadOptions::default()).unwrap();
    let rounded = Transformer::from_tensors(
        cfg.clone(),
        second
            .named_tensors()
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.to_dtype(DType::BF16)
                        .unwrap()
                        .to_dtype(DType::F32)
                        .unwrap(),
                )
            })
            .collect(),
        false,
    )
    .unwrap();
    let x = tensor(&ids(1, 5, cfg.vocab_size, 9));
    let a = values(&loaded.forward(&x, &[], None).unwrap());
    let b = values(&rounded.forward(&x, &[], None).unwrap());
    assert_eq!(a, b);
}
