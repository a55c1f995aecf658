//! Shared helpers of the integration tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use vine_model::{Architecture, ModelConfig, RopeScaling, Transformer};

/// A 2-layer GQA Llama with llama3 RoPE scaling and untied head.
pub fn tiny_llama_config() -> ModelConfig {
    let mut c = ModelConfig::tiny_llama(61, 32, 2, 4, 2, 48);
    c.rope.theta = 500_000.0;
    c.rope.scaling = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 16,
    };
    c
}

/// A 2-layer Qwen2 (q/k/v bias, tied embeddings).
pub fn tiny_qwen_config() -> ModelConfig {
    let mut c = ModelConfig::tiny_llama(67, 32, 2, 4, 1, 40);
    c.architecture = Architecture::Qwen2;
    c.qkv_bias = true;
    c.tie_word_embeddings = true;
    c.rms_norm_eps = 1e-6;
    c
}

/// A random model with larger-than-HF init so that attention patterns are not uniform.
pub fn random_model(cfg: ModelConfig, seed: u64, dtype: DType, trainable: bool) -> Transformer {
    let mut cfg = cfg;
    cfg.initializer_range = 0.2;
    Transformer::new_random(cfg, seed, dtype, &Device::Cpu, trainable).unwrap()
}

/// Pseudo-random ids in `[0, vocab)`.
pub fn ids(rows: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..rows)
        .map(|_| {
            (0..len)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) % vocab as u64) as u32
                })
                .collect()
        })
        .collect()
}

/// `(B, T)` u32 tensor of rows of equal length.
pub fn tensor(rows: &[Vec<u32>]) -> Tensor {
    let t = rows[0].len();
    let flat: Vec<u32> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
}

/// Left-pads rows of different lengths with `pad`, returning the tensor and the pad counts.
pub fn left_padded(rows: &[Vec<u32>], pad: u32) -> (Tensor, Vec<usize>) {
    let t = rows.iter().map(Vec::len).max().unwrap();
    let mut out = Vec::new();
    let mut pads = Vec::new();
    for r in rows {
        pads.push(t - r.len());
        let mut row = vec![pad; t - r.len()];
        row.extend_from_slice(r);
        out.push(row);
    }
    (tensor(&out), pads)
}

/// Flattened f32 values.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest absolute difference.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
