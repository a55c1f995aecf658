//! Seeded Hugging Face-style initialisation of fresh weights.
//!
//! As transformers' `_init_weights` for Llama/Qwen2: every linear weight and the embedding are
//! drawn from N(0, `initializer_range`²) (the embedding's padding row, if the config names a
//! `pad_token_id`, is zero), biases are 0 and norm weights 1. The embedding deliberately does
//! *not* use candle's N(0, 1): with a tied head that produces huge logits and subnormal floats
//! that make the backward pass several times slower.
//!
//! Draws are made on the host with ChaCha8 seeded by `(seed, parameter index)`, so a model is
//! reproducible from its seed on any device.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::ModelConfig;

/// `n` samples of N(0, std²) from `rng` (Box–Muller).
pub fn normal_samples(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let a = std::f64::consts::TAU * u2;
        out.push((r * a.cos()) as f32);
        out.push((r * a.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// A generator for parameter `index` of a model seeded with `seed`.
pub fn param_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Fresh weights for `cfg`, keyed by Hugging Face name, in `dtype` on `device`.
pub fn init_tensors(
    cfg: &ModelConfig,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let std = cfg.initializer_range;
    let mut out = HashMap::new();
    for (index, (name, shape)) in cfg.parameter_shapes().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let data = if name.ends_with("norm.weight") {
            vec![1f32; n]
        } else if name.ends_with(".bias") {
            vec![0f32; n]
        } else {
            let mut v = normal_samples(&mut param_rng(seed, index as u64), n, std);
            if name == "model.embed_tokens.weight" {
                if let Some(pad) = cfg.pad_token_id.map(|p| p as usize) {
                    let h = cfg.hidden_size;
                    if pad < cfg.vocab_size {
                        v[pad * h..(pad + 1) * h].iter_mut().for_each(|x| *x = 0.0);
                    }
                }
            }
            v
        };
        let t = Tensor::from_vec(data, shape, device)?.to_dtype(dtype)?;
        out.insert(name, t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_samples_have_the_right_moments() {
        let v = normal_samples(&mut param_rng(7, 0), 200_000, 0.02);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        // Standard errors: mean 0.02/sqrt(n) ≈ 4.5e-5, std ≈ 0.02/sqrt(2n) ≈ 3e-5.
        assert!(mean.abs() < 2e-4, "mean {mean}");
        assert!((var.sqrt() - 0.02).abs() < 2e-4, "std {}", var.sqrt());
    }

    #[test]
    fn init_is_seeded_and_hf_shaped() {
        let cfg = ModelConfig::tiny_llama(50, 16, 1, 4, 2, 32);
        let a = init_tensors(&cfg, 3, DType::F32, &Device::Cpu).unwrap();
        let b = init_tensors(&cfg, 3, DType::F32, &Device::Cpu).unwrap();
        let c = init_tensors(&cfg, 4, DType::F32, &Device::Cpu).unwrap();
        let get = |m: &HashMap<String, Tensor>, k: &str| -> Vec<f32> {
            m[k].flatten_all().unwrap().to_vec1().unwrap()
        };
        let q = "model.layers.0.self_attn.q_proj.weight";
        assert_eq!(get(&a, q), get(&b, q));
        assert_ne!(get(&a, q), get(&c, q));
        assert!(get(&a, "model.norm.weight").iter().all(|&x| x == 1.0));
        assert_eq!(a.len(), cfg.parameter_shapes().len());
    }
}
