//! Cached decoding equals full recomputation; left padding equals no padding; forked and
//! gathered caches equal fresh prefills; the no-grad path equals the differentiable one.
//!
//! Tolerances: 1e-4 absolute on logits of magnitude ~1–10 (f32; the two paths differ only in
//! summation order and fused-kernel rounding).

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use vine_model::{CausalLm, KvCache, Mode, ModelConfig, RowSlice, Transformer};

const TOL: f32 = 1e-4;

fn row_logits(model: &Transformer, row: &[u32]) -> Vec<Vec<f32>> {
    let logits = model.forward(&tensor(&[row.to_vec()]), &[], None).unwrap(); // (1, T, V)
    let v = model.config().vocab_size;
    values(&logits).chunks(v).map(<[f32]>::to_vec).collect()
}

/// Prefills `prefix[..n-1]` in a fresh cache and decodes `prefix[n-1]`.
fn fresh_next_logits(model: &Transformer, prefix: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache();
    let n = prefix.len();
    if n > 1 {
        model
            .prefill(&tensor(&[prefix[..n - 1].to_vec()]), &[], &mut cache)
            .unwrap();
    }
    let last = Tensor::from_vec(vec![prefix[n - 1]], (1, 1), &Device::Cpu).unwrap();
    values(&model.decode_step(&last, &mut cache).unwrap())
}

fn check_decode_matches_full(cfg: ModelConfig) {
    let model = random_model(cfg.clone(), 1, DType::F32, true);
    let rows = ids(2, 12, cfg.vocab_size, 5);
    let full: Vec<Vec<Vec<f32>>> = rows.iter().map(|r| row_logits(&model, r)).collect();
    let mut cache = model.new_cache();
    let prefix: Vec<Vec<u32>> = rows.iter().map(|r| r[..5].to_vec()).collect();
    model.prefill(&tensor(&prefix), &[], &mut cache).unwrap();
    for t in 5..12 {
        let step: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[t]]).collect();
        let logits = values(&model.decode_step(&tensor(&step), &mut cache).unwrap());
        let v = cfg.vocab_size;
        for (b, full_row) in full.iter().enumerate() {
            let d = max_diff(&logits[b * v..(b + 1) * v], &full_row[t]);
            assert!(d < TOL, "row {b} pos {t}: diff {d}");
        }
    }
    assert_eq!(cache.len(), 12);
}

#[test]
fn decode_matches_full_forward_llama() {
    check_decode_matches_full(tiny_llama_config());
}

#[test]
fn decode_matches_full_forward_qwen() {
    check_decode_matches_full(tiny_qwen_config());
}

#[test]
fn left_padding_equals_separate_rows() {
    for cfg in [tiny_llama_config(), tiny_qwen_config()] {
        let model = random_model(cfg.clone(), 2, DType::F32, false);
        let rows: Vec<Vec<u32>> = [7, 12, 3]
            .iter()
            .enumerate()
            .map(|(i, &n)| ids(1, n, cfg.vocab_size, 10 + i as u64).remove(0))
            .collect();
        let (batch, pads) = left_padded(&rows, 0);
        for mode in [Mode::Train, Mode::Infer] {
            let h = model
                .forward_hidden_with(&batch, &pads, None, mode)
                .unwrap();
            let logits = values(&model.lm_head(&h).unwrap());
            let (t, v) = (12, cfg.vocab_size);
            for (b, row) in rows.iter().enumerate() {
                let alone = row_logits(&model, row);
                for (i, expect) in alone.iter().enumerate() {
                    let pos = pads[b] + i;
                    let got = &logits[(b * t + pos) * v..(b * t + pos + 1) * v];
                    let d = max_diff(got, expect);
                    assert!(d < 1e-5, "{mode:?} row {b} token {i}: diff {d}");
                }
            }
        }
    }
}

#[test]
fn left_padded_prefill_then_decode_equals_separate_rows() {
    let cfg = tiny_llama_config();
    let model = random_model(cfg.clone(), 3, DType::F32, false);
    let rows: Vec<Vec<u32>> = [9, 4]
        .iter()
        .map(|&n| ids(1, n, cfg.vocab_size, n as u64).remove(0))
        .collect();
    let prefixes: Vec<Vec<u32>> = rows.iter().map(|r| r[..r.len() - 1].to_vec()).collect();
    let (batch, pads) = left_padded(&prefixes, 3);
    let mut cache = model.new_cache();
    model.prefill(&batch, &pads, &mut cache).unwrap();
    let last: Vec<Vec<u32>> = rows.iter().map(|r| vec![*r.last().unwrap()]).collect();
    let got = values(&model.decode_step(&tensor(&last), &mut cache).unwrap());
    let v = cfg.vocab_size;
    for (b, row) in rows.iter().enumerate() {
        let d = max_diff(&got[b * v..(b + 1) * v], &fresh_next_logits(&model, row));
        assert!(d < TOL, "row {b}: diff {d}");
    }
}

#[test]
fn gathered_and_forked_caches_equal_fresh_prefills() {
    let cfg = tiny_llama_config();
    let model = random_model(cfg.clone(), 4, DType::F32, false);
    let a = ids(1, 10, cfg.vocab_size, 21).remove(0);
    let b = ids(1, 6, cfg.vocab_size, 22).remove(0);
    let (batch, pads) = left_padded(&[a.clone(), b.clone()], 0);
    let mut cache = model.new_cache();
    model.prefill(&batch, &pads, &mut cache).unwrap();
    // Continue prefixes of different rows and lengths with one more token each.
    let picks = [(0usize, 4usize, 7u32), (1, 6, 9), (0, 10, 11), (0, 4, 7)];
    let slices: Vec<RowSlice> = picks
        .iter()
        .map(|&(row, keep, _)| RowSlice { row, keep })
        .collect();
    let mut gathered = cache.gather(&slices, 2).unwrap();
    let next: Vec<Vec<u32>> = picks.iter().map(|&(_, _, tok)| vec![tok]).collect();
    let got = values(&model.decode_step(&tensor(&next), &mut gathered).unwrap());
    let v = cfg.vocab_size;
    for (i, &(row, keep, tok)) in picks.iter().enumerate() {
        let src = if row == 0 { &a } else { &b };
        let mut prefix = src[..keep].to_vec();
        prefix.push(tok);
        let d = max_diff(
            &got[i * v..(i + 1) * v],
            &fresh_next_logits(&model, &prefix),
        );
        assert!(d < TOL, "pick {i}: diff {d}");
    }
    // Forking every row 3 ways and decoding the same token gives 3 identical copies.
    let mut forked = cache.fork(3, 0).unwrap();
    let same: Vec<Vec<u32>> = (0..6).map(|_| vec![5u32]).collect();
    let f = values(&model.decode_step(&tensor(&same), &mut forked).unwrap());
    for (i, src) in [&a, &a, &a, &b, &b, &b].iter().enumerate() {
        let mut prefix = src.to_vec();
        prefix.push(5);
        let d = max_diff(&f[i * v..(i + 1) * v], &fresh_next_logits(&model, &prefix));
        assert!(d < TOL, "fork {i}: diff {d}");
    }
}

#[test]
fn concatenated_caches_decode_like_separate_ones() {
    let cfg = tiny_qwen_config();
    let model = random_model(cfg.clone(), 5, DType::F32, false);
    let a = ids(1, 8, cfg.vocab_size, 31).remove(0);
    let b = ids(1, 3, cfg.vocab_size, 32).remove(0);
    let mut ca = model.new_cache();
    model
        .prefill(&tensor(std::slice::from_ref(&a)), &[], &mut ca)
        .unwrap();
    let mut cb = model.new_cache();
    model
        .prefill(&tensor(std::slice::from_ref(&b)), &[], &mut cb)
        .unwrap();
    let mut both = KvCache::concat(&[&ca, &cb], 1).unwrap();
    let got = values(
        &model
            .decode_step(&tensor(&[vec![1], vec![2]]), &mut both)
            .unwrap(),
    );
    let v = cfg.vocab_size;
    for (i, (src, tok)) in [(&a, 1u32), (&b, 2)].into_iter().enumerate() {
        let mut prefix = src.clone();
        prefix.push(tok);
        let d = max_diff(
            &got[i * v..(i + 1) * v],
            &fresh_next_logits(&model, &prefix),
        );
        assert!(d < TOL, "row {i}: diff {d}");
    }
}

#[test]
fn train_and_infer_paths_agree_with_a_cache() {
    let cfg = tiny_llama_config();
    let model = random_model(cfg.clone(), 6, DType::F32, true);
    let rows = ids(2, 9, cfg.vocab_size, 41);
    let (batch, pads) = (tensor(&rows), vec![2, 0]);
    let mut c_train = model.new_cache();
    let mut c_infer = model.new_cache();
    let first = batch.narrow(1, 0, 6).unwrap();
    let rest = batch.narrow(1, 6, 3).unwrap();
    let mut outs = Vec::new();
    for (cache, mode) in [(&mut c_train, Mode::Train), (&mut c_infer, Mode::Infer)] {
        let h1 = model
            .forward_hidden_with(&first, &pads, Some(cache), mode)
            .unwrap();
        let h2 = model
            .forward_hidden_with(&rest, &[], Some(cache), mode)
            .unwrap();
        outs.push([values(&h1), values(&h2)].concat());
    }
    let d = max_diff(&outs[0], &outs[1]);
    assert!(d < 1e-5, "diff {d}");
}

/// `cfg` with random (not zero) biases, so the fused decode's bias paths are exercised.
fn model_with_biases(cfg: ModelConfig, seed: u64) -> Transformer {
    let base = random_model(cfg.clone(), seed, DType::F32, false);
    let tensors = base
        .named_tensors()
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            let t = if name.ends_with(".bias") {
                (Tensor::randn(0f32, 0.5, t.dims(), &Device::Cpu).unwrap()
                    * (1.0 + i as f64 * 0.01))
                    .unwrap()
            } else {
                t.clone()
            };
            (name.clone(), t)
        })
        .collect();
    Transformer::from_tensors(base.config().clone(), tensors, false).unwrap()
}

/// The fused CPU prefill and decode step against the composed candle ops they replace, over
/// several steps of a left-padded batch (rows at different positions), for GQA Llama with
/// llama3 RoPE and for Qwen2 with q/k/v biases and a tied head. Same arithmetic up to
/// summation order: 1e-5.
#[test]
fn fused_decode_matches_the_composed_step() {
    for cfg in [tiny_llama_config(), tiny_qwen_config()] {
        let fused = model_with_biases(cfg.clone(), 9);
        let mut composed = fused.clone();
        composed.set_kernels(vine_model::Kernels::Composed);
        let rows = ids(3, 14, cfg.vocab_size, 77);
        let pads = [3usize, 0, 5];
        let mut logits = Vec::new();
        for m in [&fused, &composed] {
            let mut cache = m.new_cache();
            m.prefill(&tensor(&rows).narrow(1, 0, 8).unwrap(), &pads, &mut cache)
                .unwrap();
            let mut steps = Vec::new();
            for t in 8..14 {
                let step: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[t]]).collect();
                steps.extend(values(&m.decode_step(&tensor(&step), &mut cache).unwrap()));
            }
            logits.push(steps);
        }
        let d = max_diff(&logits[0], &logits[1]);
        assert!(d < 1e-5, "{:?}: max |Δlogit| {d}", cfg.architecture);
        // From an empty cache (one-token prefixes) the step is the whole forward.
        let first = tensor(&[vec![3], vec![5]]);
        let [a, b] = [&fused, &composed]
            .map(|m| values(&m.decode_step(&first, &mut m.new_cache()).unwrap()));
        let d = max_diff(&a, &b);
        assert!(
            d < 1e-5,
            "{:?}: first step, max |Δlogit| {d}",
            cfg.architecture
        );
    }
}

/// From 16 rows the fused step runs two row groups in a pipeline; every row's arithmetic is the
/// same as in a smaller batch (one group), so the logits must be identical, bit for bit. The
/// rows share one prefilled cache (split with `select`) so only the decode schedule differs.
#[test]
fn pipelined_decode_equals_smaller_batches() {
    for cfg in [tiny_llama_config(), tiny_qwen_config()] {
        let model = model_with_biases(cfg.clone(), 5);
        let n = 21;
        let rows = ids(n, 12, cfg.vocab_size, 31);
        let pads: Vec<usize> = (0..n).map(|i| (i * 5) % 7).collect();
        let mut cache = model.new_cache();
        model
            .prefill(&tensor(&rows).narrow(1, 0, 8).unwrap(), &pads, &mut cache)
            .unwrap();
        let groups: [Vec<usize>; 3] = [(0..7).collect(), (7..14).collect(), (14..n).collect()];
        let mut parts: Vec<KvCache> = groups.iter().map(|g| cache.select(g, 8).unwrap()).collect();
        for t in 8..12 {
            let step: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[t]]).collect();
            let whole = values(&model.decode_step(&tensor(&step), &mut cache).unwrap());
            let mut pieces = Vec::new();
            for (g, part) in groups.iter().zip(parts.iter_mut()) {
                let ids: Vec<Vec<u32>> = g.iter().map(|&r| step[r].clone()).collect();
                pieces.extend(values(&model.decode_step(&tensor(&ids), part).unwrap()));
            }
            assert_eq!(whole, pieces, "{:?}, step {t}", cfg.architecture);
        }
    }
}
