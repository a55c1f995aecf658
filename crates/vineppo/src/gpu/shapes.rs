//! Model shapes for GPU benchmarks: real architectures at Hugging Face init (no weights are
//! downloaded), plus a tiny one that exercises the same code on CPU in tests.

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use vine_model::{Architecture, ModelConfig, RopeConfig, Transformer};

/// A named decoder shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// 2 layers, width 64, vocabulary 512 (tests and smoke runs).
    Tiny,
    /// Qwen2.5-0.5B: 24 layers, width 896, 14/2 heads (GQA), SwiGLU 4864, vocabulary 151,936,
    /// tied embeddings, q/k/v bias.
    #[value(name = "0.5b")]
    Qwen05b,
    /// TinyLlama / RhoMath 1.1B (the paper's small policy): 22 layers, width 2048, 32/4 heads,
    /// SwiGLU 5632, vocabulary 32,000, untied.
    #[value(name = "1.1b")]
    Llama1b,
    /// Llama-2 / DeepSeekMath-7B-class: 32 layers, width 4096, 32 heads, SwiGLU 11,008,
    /// vocabulary 32,000, untied.
    #[value(name = "7b")]
    Llama7b,
}

impl Shape {
    /// The model configuration (context 4096, RoPE θ 10,000 unless the original differs).
    pub fn config(self) -> ModelConfig {
        // (vocab, hidden, layers, heads, kv heads, intermediate)
        let (v, h, l, q, kv, i) = match self {
            Shape::Tiny => (512, 64, 2, 4, 2, 176),
            Shape::Qwen05b => (151_936, 896, 24, 14, 2, 4864),
            Shape::Llama1b => (32_000, 2048, 22, 32, 4, 5632),
            Shape::Llama7b => (32_000, 4096, 32, 32, 32, 11_008),
        };
        let mut c = ModelConfig::tiny_llama(v, h, l, q, kv, i);
        c.max_position_embeddings = 4096;
        c.initializer_range = 0.02;
        c.bos_token_id = Some(0);
        c.eos_token_ids = vec![1];
        c.pad_token_id = Some(2);
        if self == Shape::Qwen05b {
            c.architecture = Architecture::Qwen2;
            c.qkv_bias = true;
            c.tie_word_embeddings = true;
            c.rms_norm_eps = 1e-6;
            c.rope = RopeConfig {
                theta: 1_000_000.0,
                ..RopeConfig::default()
            };
        } else {
            c.tie_word_embeddings = false;
        }
        c
    }

    /// Name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Tiny => "tiny",
            Shape::Qwen05b => "0.5b",
            Shape::Llama1b => "1.1b",
            Shape::Llama7b => "7b",
        }
    }

    /// A randomly initialised model of this shape on `device` in `dtype`.
    pub fn build(
        self,
        seed: u64,
        dtype: DType,
        device: &Device,
        trainable: bool,
    ) -> Result<Transformer> {
        Transformer::new_random(self.config(), seed, dtype, device, trainable)
            .with_context(|| format!("building a random {} model", self.name()))
    }
}

/// What a configuration costs: parameter count and the FLOPs and bytes the benchmarks divide by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// All parameters (a tied head counted once).
    pub params: f64,
    /// Bytes one KV-cache position takes over all layers (keys and values) in `dtype`.
    pub kv_bytes_per_token: f64,
    /// Layers × width, for the attention FLOPs term.
    pub layers_x_width: f64,
}

impl Costs {
    /// The costs of `c` with `bytes` per element.
    pub fn of(c: &ModelConfig, bytes: f64) -> Self {
        Self {
            params: c.num_parameters() as f64,
            kv_bytes_per_token: (2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim)
                as f64
                * bytes,
            layers_x_width: (c.num_hidden_layers * c.hidden_size) as f64,
        }
    }

    /// Training FLOPs per token at context `t`: `6·N + 12·L·H·t` (PaLM's accounting: forward
    /// and backward, attention scores and values without the causal halving).
    pub fn train_flops_per_token(&self, t: usize) -> f64 {
        6.0 * self.params + 12.0 * self.layers_x_width * t as f64
    }

    /// Bytes one decode step must read from memory at batch `b` and mean context `ctx`: every
    /// weight once plus every row's cache.
    pub fn decode_bytes(&self, bytes: f64, b: usize, ctx: f64) -> f64 {
        self.params * bytes + b as f64 * ctx * self.kv_bytes_per_token
    }
}

/// Bytes per element of `dtype`.
pub fn dtype_bytes(dtype: DType) -> f64 {
    dtype.size_in_bytes() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_their_published_sizes() {
        // Published parameter counts: Qwen2.5-0.5B 494M, TinyLlama 1.10B, Llama-2-7B 6.74B.
        let n = |s: Shape| s.config().num_parameters() as f64 / 1e9;
        assert!(
            (n(Shape::Qwen05b) - 0.494).abs() < 0.005,
            "{}",
            n(Shape::Qwen05b)
        );
        assert!(
            (n(Shape::Llama1b) - 1.100).abs() < 0.005,
            "{}",
            n(Shape::Llama1b)
        );
        assert!(
            (n(Shape::Llama7b) - 6.738).abs() < 0.005,
            "{}",
            n(Shape::Llama7b)
        );
        // TinyLlama's cache: 22 layers × 4 kv heads × 64 dims × 2 (k, v) × 2 bytes = 22.5 KiB.
        let c = Costs::of(&Shape::Llama1b.config(), 2.0);
        assert_eq!(c.kv_bytes_per_token, 22.0 * 4.0 * 64.0 * 2.0 * 2.0);
    }
}
