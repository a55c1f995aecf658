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
//! - [`tune_allocator`]: call once at start-up.

pub mod alloc;
pub mod attention;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod init;
pub mod layers;
pub mod lm;
pub mod logprobs;
pub mod rope;
pub mod tokenizer;
pub mod transformer;
pub mod value;
pub mod weights;

pub use alloc::tune_allocator;
pub use cache::{KvCache, RowSlice};
pub use checkpoint::{LoadOptions, SaveOptions};
pub use config::{Architecture, ModelConfig};
pub use error::{ModelError, ModelResult};
pub use layers::Mode;
pub use lm::CausalLm;
pub use logprobs::target_logprobs;
pub use rope::{RopeConfig, RopeScaling};
pub use tokenizer::Tokenizer;
pub use transformer::Transformer;
pub use value::ValueModel;
