//! `config.json` parsing in both RoPE layouts, defaults, write-back, and the RoPE frequencies
//! against transformers' `ROPE_INIT_FUNCTIONS`.

use std::path::Path;

use serde_json::{json, Value};
use vine_model::{Architecture, ModelConfig, ModelError, RopeScaling};

fn parse(v: Value) -> Result<ModelConfig, ModelError> {
    ModelConfig::from_hf_json(&v, Path::new("config.json"))
}

/// Llama-3.2-1B's config (legacy RoPE layout, eos list, tied embeddings).
fn llama32() -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "attention_bias": false, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
        "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false,
        "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256
    })
}

/// Qwen2.5-0.5B's config.
fn qwen25() -> Value {
    json!({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
        "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
        "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false,
        "vocab_size": 151936
    })
}

#[test]
fn parses_llama32_and_qwen25() {
    let l = parse(llama32()).unwrap();
    assert_eq!(l.architecture, Architecture::Llama);
    assert_eq!(
        (l.num_attention_heads, l.num_key_value_heads, l.head_dim),
        (32, 8, 64)
    );
    assert_eq!(l.eos_token_ids, vec![128001, 128008, 128009]);
    assert!(l.tie_word_embeddings && !l.qkv_bias && !l.o_bias && !l.mlp_bias);
    assert_eq!(
        l.rope.scaling,
        RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192
        }
    );
    // 1.24B parameters with the tied head counted once.
    assert_eq!(l.num_parameters(), 1_235_814_400);

    let q = parse(qwen25()).unwrap();
    assert_eq!(q.architecture, Architecture::Qwen2);
    assert!(q.qkv_bias && !q.o_bias && q.tie_word_embeddings);
    assert_eq!((q.head_dim, q.rope.theta), (64, 1e6));
    assert_eq!(q.num_parameters(), 494_032_768);
}

#[test]
fn v5_rope_parameters_layout_equals_legacy() {
    let mut v5 = llama32();
    let o = v5.as_object_mut().unwrap();
    let mut rope = o.remove("rope_scaling").unwrap();
    rope["rope_theta"] = o.remove("rope_theta").unwrap();
    o.insert("rope_parameters".into(), rope);
    assert_eq!(parse(v5).unwrap().rope, parse(llama32()).unwrap().rope);
    // Nested by layer type, as transformers v5 may write it.
    let mut nested = qwen25();
    let o = nested.as_object_mut().unwrap();
    o.remove("rope_theta");
    o.insert(
        "rope_parameters".into(),
        json!({"full_attention": {"rope_type": "default", "rope_theta": 1000000.0}}),
    );
    assert_eq!(parse(nested).unwrap().rope, parse(qwen25()).unwrap().rope);
}

#[test]
fn defaults_follow_transformers() {
    let c = parse(
        json!({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                         "num_attention_heads": 4, "intermediate_size": 96,
                         "num_hidden_layers": 1, "vocab_size": 10}),
    )
    .unwrap();
    assert_eq!((c.num_key_value_heads, c.head_dim), (4, 16));
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.clone()),
        (Some(1), vec![2])
    );
    assert_eq!(
        (c.rope.theta, c.rms_norm_eps, c.max_position_embeddings),
        (10000.0, 1e-6, 2048)
    );
    assert!(!c.tie_word_embeddings);
    // Legacy `type` key for the RoPE type (Llama-2 era configs).
    let mut v = llama32();
    v["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
    assert_eq!(
        parse(v).unwrap().rope.scaling,
        RopeScaling::Linear { factor: 2.0 }
    );
    // Only `model_type`.
    let c = parse(
        json!({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4,
                         "num_key_value_heads": 2}),
    )
    .unwrap();
    assert_eq!(c.architecture, Architecture::Qwen2);
}

#[test]
fn to_hf_json_round_trips_and_keeps_unknown_fields() {
    for v in [llama32(), qwen25()] {
        let c = parse(v.clone()).unwrap();
        let out = c.to_hf_json("float32");
        assert_eq!(parse(out.clone()).unwrap(), c);
        assert!(out.get("rope_parameters").is_none());
        assert_eq!(out["rope_theta"], v["rope_theta"]);
        assert_eq!(out["torch_dtype"], "float32");
        assert_eq!(out["use_cache"], true);
        assert_eq!(out["eos_token_id"], v["eos_token_id"]);
    }
}

#[test]
fn rope_frequencies_match_transformers() {
    // Python (transformers 5.23):
    //   cfg = LlamaConfig(hidden_size=4096, num_attention_heads=32, head_dim=128,
    //       max_position_embeddings=131072, rope_parameters={"rope_type": "llama3",
    //       "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
    //       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    //   inv, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg); [float(inv[i]) for i in idx]
    // Tolerance: 2 ulp of f32 (transformers and we both compute in f32; `pow` may differ by
    // one rounding).
    let mut v = llama32();
    v["rope_scaling"]["factor"] = json!(8.0);
    let llama3 = parse(v).unwrap();
    let inv = llama3.rope.inv_freq(128);
    let golden: [(usize, f64); 16] = [
        (0, 1.0),
        (1, 0.8146172165870667),
        (20, 0.016560440883040428),
        (28, 0.0032114461064338684),
        (29, 0.0021665706299245358),
        (30, 0.0013718936825171113),
        (32, 0.0005248460220173001),
        (34, 0.0001785077911335975),
        (35, 9.556212171446532e-05),
        (36, 7.784655463183299e-05),
        (40, 3.428102354519069e-05),
        (44, 1.5096217794052791e-05),
        (46, 1.0017868589784484e-05),
        (48, 6.647869668086059e-06),
        (52, 2.927499735960737e-06),
        (63, 3.068925877869333e-07),
    ];
    for (i, want) in golden {
        let rel = (inv[i] as f64 - want).abs() / want;
        assert!(rel < 2.5e-7, "llama3 inv_freq[{i}] = {} vs {want}", inv[i]);
    }
    // linear, head_dim 128, theta 1e4, factor 4: indices 0, 1, 31, 63.
    let mut v = llama32();
    v["rope_scaling"] = json!({"rope_type": "linear", "factor": 4.0});
    v["rope_theta"] = json!(10000.0);
    let inv = parse(v).unwrap().rope.inv_freq(128);
    for (i, want) in [
        (0, 0.25),
        (1, 0.21649108827114105),
        (31, 0.002886954927816987),
        (63, 2.8869548259535804e-05),
    ] {
        assert!(
            (inv[i] as f64 - want).abs() / want < 2.5e-7,
            "linear inv_freq[{i}]"
        );
    }
    // default, head_dim 64, theta 1e6 (Qwen2.5): indices 0, 1, 31.
    let inv = parse(qwen25()).unwrap().rope.inv_freq(64);
    for (i, want) in [
        (0, 1.0),
        (1, 0.6493816375732422),
        (31, 1.5399265294036013e-06),
    ] {
        assert!(
            (inv[i] as f64 - want).abs() / want < 2.5e-7,
            "default inv_freq[{i}]"
        );
    }
}

#[test]
fn unsupported_settings_are_errors_naming_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"architectures": ["MistralForCausalLM"]}),
            "LlamaForCausalLM, Qwen2ForCausalLM",
        ),
        (json!({"model_type": "gpt2"}), "Qwen2ForCausalLM"),
        (
            {
                let mut v = llama32();
                v["rope_scaling"]["rope_type"] = json!("yarn");
                v
            },
            "rope_scaling.rope_type",
        ),
        (
            {
                let mut v = qwen25();
                v["rope_parameters"] = json!({"rope_type": "dynamic", "factor": 2.0});
                v.as_object_mut().unwrap().remove("rope_theta");
                v
            },
            "`default`, `linear`, `llama3`",
        ),
        (
            {
                let mut v = llama32();
                v["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0});
                v
            },
            "rope_scaling.low_freq_factor",
        ),
        (
            {
                let mut v = llama32();
                v["partial_rotary_factor"] = json!(0.5);
                v
            },
            "partial_rotary_factor",
        ),
        (
            {
                let mut v = qwen25();
                v["use_sliding_window"] = json!(true);
                v
            },
            "use_sliding_window",
        ),
        (
            {
                let mut v = llama32();
                v["hidden_act"] = json!("gelu");
                v
            },
            "hidden_act",
        ),
        (
            {
                let mut v = llama32();
                v["num_key_value_heads"] = json!(5);
                v
            },
            "num_key_value_heads",
        ),
        (
            {
                let mut v = llama32();
                v["hidden_size"] = json!("big");
                v
            },
            "hidden_size",
        ),
        (
            {
                let mut v = llama32();
                v["eos_token_id"] = json!(["x"]);
                v
            },
            "eos_token_id",
        ),
    ];
    for (v, needle) in cases {
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains(needle), "`{err}` should mention `{needle}`");
        assert!(err.contains("config.json"), "`{err}` should name the file");
    }
}
