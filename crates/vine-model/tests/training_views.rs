//! Trainable vs frozen models: optimizer updates reach every forward path, frozen copies do
//! not move, and the value head trains with its backbone.

mod common;

use candle_core::DType;
use candle_nn::Optimizer;
use common::*;
use vine_model::{CausalLm, LoadOptions, SaveOptions, ValueModel};

#[test]
fn optimizer_updates_reach_decoding_and_frozen_copies_stay_put() {
    let cfg = tiny_llama_config();
    let model = random_model(cfg.clone(), 1, DType::F32, true);
    let reference = model.frozen_copy().unwrap();
    assert!(!reference.is_trainable() && reference.vars().is_empty());
    let x = tensor(&ids(2, 6, cfg.vocab_size, 2));
    let before = values(&model.forward(&x, &[], None).unwrap());
    assert!(max_diff(&before, &values(&reference.forward(&x, &[], None).unwrap())) < 1e-5);

    let vars: Vec<_> = model.vars().into_iter().map(|(_, v)| v).collect();
    let mut sgd = candle_nn::SGD::new(vars, 0.5).unwrap();
    let loss = model
        .token_logprobs(&x, &[], 1.0)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap();
    sgd.backward_step(&loss).unwrap();

    let after = values(&model.forward(&x, &[], None).unwrap());
    assert!(max_diff(&before, &after) > 1e-3, "the step changed nothing");
    // The frozen copy still computes the old function.
    let frozen = values(&reference.forward(&x, &[], None).unwrap());
    assert!(max_diff(&before, &frozen) < 1e-5);
    // The no-grad decode path sees the updated weights.
    let mut cache = model.new_cache();
    model
        .prefill(&x.narrow(1, 0, 5).unwrap(), &[], &mut cache)
        .unwrap();
    let step = values(
        &model
            .decode_step(&x.narrow(1, 5, 1).unwrap(), &mut cache)
            .unwrap(),
    );
    let v = cfg.vocab_size;
    for b in 0..2 {
        let full = &after[(b * 6 + 5) * v..(b * 6 + 6) * v];
        assert!(max_diff(&step[b * v..(b + 1) * v], full) < 1e-4);
    }
}

#[test]
fn value_head_is_initialised_like_the_reference_and_trains() {
    let cfg = tiny_qwen_config();
    let critic = ValueModel::new(random_model(cfg.clone(), 2, DType::F32, true), 9).unwrap();
    let heads = critic.head_tensors();
    let w = values(&heads[0].1);
    assert_eq!(w.len(), cfg.hidden_size);
    assert_eq!(values(&heads[1].1), vec![0.0]);
    let x = tensor(&ids(2, 5, cfg.vocab_size, 3));
    let v = critic.values(&x, &[1, 0]).unwrap();
    assert_eq!(v.dims(), &[2, 5]);
    // V = h · w (bias 0), h = the backbone's last hidden state.
    let h = critic.backbone.forward_hidden(&x, &[1, 0], None).unwrap();
    let manual = h
        .broadcast_mul(&heads[0].1.unsqueeze(0).unwrap())
        .unwrap()
        .sum(2)
        .unwrap();
    assert!(max_diff(&values(&v), &values(&manual)) < 1e-5);
    // Every backbone and head variable gets a gradient.
    let grads = v.sqr().unwrap().mean_all().unwrap().backward().unwrap();
    let vars = critic.vars();
    assert_eq!(vars.len(), cfg.parameter_shapes().len() + 2);
    for (name, var) in vars {
        assert!(grads.get(var.as_tensor()).is_some(), "{name}: no gradient");
    }
}

#[test]
fn value_model_round_trips_through_a_directory() {
    let cfg = tiny_llama_config();
    let critic = ValueModel::new(random_model(cfg.clone(), 4, DType::F32, false), 5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("critic");
    critic
        .save_pretrained(&out, &SaveOptions::default())
        .unwrap();
    let loaded = ValueModel::load(&out, &LoadOptions::default(), 0).unwrap();
    let x = tensor(&ids(1, 7, cfg.vocab_size, 6));
    assert_eq!(
        values(&critic.values(&x, &[]).unwrap()),
        values(&loaded.values(&x, &[]).unwrap())
    );
    // The head's std is 1/sqrt(H+1) (checked on a wide head: 4096 samples, 10% tolerance).
    let mut c = cfg.clone();
    c.hidden_size = 4096;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.num_hidden_layers = 1;
    c.intermediate_size = 8;
    c.vocab_size = 4;
    let big = ValueModel::new(random_model(c, 1, DType::F32, false), 3).unwrap();
    let w = values(&big.head_tensors()[0].1);
    let std = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
    let expected = 1.0 / (4097f32).sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.1,
        "std {std} vs {expected}"
    );
}
