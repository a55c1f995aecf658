//! Bad checkpoints and inputs are clear errors that name the file, tensor or field, never
//! panics.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::*;
use vine_model::{CausalLm, LoadOptions, ModelError, SaveOptions, Transformer};

fn load(dir: &Path) -> Result<Transformer, ModelError> {
    Transformer::load(dir, &LoadOptions::default())
}

/// A saved tiny Llama in a temp dir.
fn saved() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    random_model(tiny_llama_config(), 1, DType::F32, false)
        .save_pretrained(&out, &SaveOptions::default())
        .unwrap();
    (dir, out)
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(p, v.to_string()).unwrap();
}

#[test]
fn missing_files() {
    let (_tmp, dir) = saved();
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("index.json"),
        "{err}"
    );
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
    let err = load(Path::new("/nonexistent/model"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/model/config.json"), "{err}");
}

#[test]
fn unsupported_architecture_lists_the_supported_ones() {
    let (_tmp, dir) = saved();
    edit_config(&dir, |v| {
        v["architectures"] = serde_json::json!(["GPTNeoXForCausalLM"])
    });
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedArchitecture { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("GPTNeoXForCausalLM") && msg.contains("LlamaForCausalLM, Qwen2ForCausalLM"),
        "{msg}"
    );
}

#[test]
fn config_and_weights_that_disagree() {
    let (_tmp, dir) = saved();
    edit_config(&dir, |v| v["intermediate_size"] = serde_json::json!(50));
    match load(&dir).unwrap_err() {
        ModelError::ShapeMismatch {
            path,
            name,
            expected,
            found,
        } => {
            assert!(path.ends_with("model.safetensors"));
            assert!(name.contains("mlp."), "{name}");
            assert!(expected.contains(&50) && found.contains(&48));
        }
        other => panic!("unexpected {other}"),
    }
    // Untied config over tied weights: the head is missing.
    let (_tmp2, dir2) = saved();
    let mut st =
        candle_core::safetensors::load(dir2.join("model.safetensors"), &Device::Cpu).unwrap();
    st.remove("lm_head.weight");
    candle_core::safetensors::save(&st, dir2.join("model.safetensors")).unwrap();
    let err = load(&dir2).unwrap_err();
    assert!(
        matches!(err, ModelError::MissingTensor { ref name, .. } if name == "lm_head.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"));
}

#[test]
fn extra_tensors_are_ignored_and_integer_tensors_rejected() {
    let (_tmp, dir) = saved();
    let path = dir.join("model.safetensors");
    let mut st = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let inv = Tensor::ones(8, DType::F32, &Device::Cpu).unwrap();
    st.insert("model.layers.0.self_attn.rotary_emb.inv_freq".into(), inv);
    candle_core::safetensors::save(&st, &path).unwrap();
    assert!(load(&dir).is_ok());
    let q = "model.layers.0.self_attn.q_proj.weight";
    let ints = st[q].to_dtype(DType::I64).unwrap();
    st.insert(q.into(), ints);
    candle_core::safetensors::save(&st, &path).unwrap();
    let err = load(&dir).unwrap_err().to_string();
    assert!(err.contains(q) && err.contains("I64"), "{err}");
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let (_tmp, dir) = saved();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let corruptions: Vec<Vec<u8>> = vec![
        bytes[..bytes.len() / 2].to_vec(),              // truncated data
        bytes[..20].to_vec(),                           // truncated header
        vec![],                                         // empty
        b"\xff\xff\xff\xff\xff\xff\xff\xff{}".to_vec(), // absurd header length
        {
            let mut b = bytes.clone(); // header not JSON
            b[8..16].copy_from_slice(b"!!!!!!!!");
            b
        },
    ];
    for bad in corruptions {
        std::fs::write(&path, &bad).unwrap();
        let err = load(&dir).unwrap_err();
        assert!(matches!(err, ModelError::Safetensors { .. }), "{err}");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}

#[test]
fn sharded_index_problems() {
    let (_tmp, dir) = saved();
    std::fs::rename(
        dir.join("model.safetensors"),
        dir.join("part-1.safetensors"),
    )
    .unwrap();
    let index = r#"{"weight_map": {"model.embed_tokens.weight": "part-1.safetensors",
                                   "model.norm.weight": "part-2.safetensors"}}"#;
    std::fs::write(dir.join("model.safetensors.index.json"), index).unwrap();
    let err = load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("part-2.safetensors") && err.contains("index.json"),
        "{err}"
    );
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map": {"x": "../../etc/passwd"}}"#,
    )
    .unwrap();
    assert!(load(&dir)
        .unwrap_err()
        .to_string()
        .contains("not a plain file name"));
    std::fs::write(dir.join("model.safetensors.index.json"), "{").unwrap();
    assert!(matches!(load(&dir).unwrap_err(), ModelError::Json { .. }));
}

#[test]
fn token_ids_beyond_the_vocabulary_are_errors() {
    let cfg = tiny_llama_config();
    let model = random_model(cfg.clone(), 1, DType::F32, false);
    let v = cfg.vocab_size as u32;
    let bad = Tensor::from_vec(vec![1u32, v], (1, 2), &Device::Cpu).unwrap();
    for err in [
        model.forward(&bad, &[], None).unwrap_err(),
        model.token_logprobs(&bad, &[], 1.0).unwrap_err(),
        model
            .prefill(&bad, &[], &mut model.new_cache())
            .unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("token id {v}")) && msg.contains("vocab_size"),
            "{msg}"
        );
    }
    let mut cache = model.new_cache();
    model
        .prefill(&tensor(&[vec![1, 2]]), &[], &mut cache)
        .unwrap();
    let one = Tensor::from_vec(vec![v + 5], (1, 1), &Device::Cpu).unwrap();
    assert!(model.decode_step(&one, &mut cache).is_err());
    // Mismatched batch and bad shapes are errors too.
    let two = tensor(&[vec![1], vec![2]]);
    assert!(model
        .decode_step(&two, &mut cache)
        .unwrap_err()
        .to_string()
        .contains("rows"));
    assert!(model.forward(&tensor(&[vec![1, 2]]), &[3], None).is_err());
    let flat = Tensor::from_vec(vec![1u32, 2], 2, &Device::Cpu).unwrap();
    assert!(model
        .forward(&flat, &[], None)
        .unwrap_err()
        .to_string()
        .contains("(batch, seq)"));
}
