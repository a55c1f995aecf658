//! # vine-model
//!
//! Brief overview: the decoder-only transformer (Llama family and Qwen2) that vineppo trains and
//! samples from, with Hugging Face checkpoint I/O.
//!
//! - [`ModelConfig`]: `config.json` in and out (both RoPE layouts).
//! - [`Transformer`]: the decoder. [`Transformer::load`] / [`Transformer::new_random`] build it
//!   (trainable or frozen), [`Transformer::forward_hidden`] / [`Transformer::forward`] run it
//!   differentiably, [`Transformer::save_pretrained`] writes a directory transformers loads.
//! - [`KvCache`]: keys and values kept outside the model; forkable, sliceable, mergeable.
//! - [`CausalLm`]: the two calls the generation engine makes (`prefill`, `decode_step`),
//!   implemented by [`Transformer`] with a faster no-grad formulation.
//! - [`ValueModel`]: a scalar value head on a backbone (the PPO-with-critic baseline).
//! - [`Tokenizer`]: `tokenizer.json` with BOS/EOS/PAD resolved as transformers does.
//! - [`target_logprobs`]: fused `log softmax(logits / T)[target]` with an analytic backward.
//! - [`tune_allocator`], [`pin_thread_counts`]: call once at start-up (CPU speed).
//! - [`fused`]: CPU kernels with written backwards for the training forward ([`Kernels`]).
//! - [`bench::train_step`]: training-step throughput (wall and CPU time) of a model shape.
//!
//! Shapes: ids are `(B, T)` u32, hidden states `(B, T, H)`, logits `(B, T, V)`. Batches for
//! training are right-padded (`left_pad = []`); generation batches are left-padded.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use vine_model::{CausalLm, ModelConfig, Transformer};
//!
//! let cfg = ModelConfig::tiny_llama(100, 32, 2, 4, 2, 64); // vocab, width, layers, heads, kv, ffn
//! let model = Transformer::new_random(cfg, 0, DType::F32, &Device::Cpu, true)?;
//! let ids = Tensor::new(&[[1u32, 5, 7, 9]], &Device::Cpu)?; // (B, T)
//!
//! // Training: log p(ids[t+1] | ids[..=t]) at temperature 0.6, differentiable.
//! let logprobs = model.token_logprobs(&ids, &[], 0.6)?; // (B, T-1)
//! let grads = logprobs.mean_all()?.backward()?;
//! assert!(model.vars().iter().all(|(_, v)| grads.get(v.as_tensor()).is_some()));
//!
//! // Generation: prefill a prefix, then decode one token per step.
//! let mut cache = model.new_cache();
//! model.prefill(&ids.narrow(1, 0, 3)?, &[], &mut cache)?;
//! let next = model.decode_step(&ids.narrow(1, 3, 1)?, &mut cache)?; // (B, V) f32
//! assert_eq!(next.dims(), &[1, 100]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod attention;
pub mod bench;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod fused;
pub mod init;
pub mod layers;
pub mod lm;
pub mod logprobs;
pub mod rope;
pub mod tokenizer;
pub mod transformer;
pub mod tuning;
pub mod value;
pub mod weights;

pub use cache::{KvCache, RowSlice};
pub use checkpoint::{LoadOptions, SaveOptions};
pub use config::{Architecture, ModelConfig};
pub use error::{ModelError, ModelResult};
pub use fused::Kernels;
pub use layers::Mode;
pub use lm::CausalLm;
pub use logprobs::target_logprobs;
pub use rope::{RopeConfig, RopeScaling};
pub use tokenizer::Tokenizer;
pub use transformer::Transformer;
pub use tuning::{pin_thread_counts, tune_allocator};
pub use value::ValueModel;
