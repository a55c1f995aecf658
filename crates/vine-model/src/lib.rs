//! # vine-model
//!
//! Brief overview: the decoder-only transformer (Llama family and Qwen2) that vineppo trains and
//! samples from, with Hugging Face checkpoint I/O.
//!
//! - [`KvCache`]: keys and values kept outside the model; forkable, sliceable, mergeable.
//! - [`CausalLm`]: the two calls the generation engine makes (`prefill`, `decode_step`).

pub mod cache;
pub mod lm;

pub use cache::{KvCache, RowSlice};
pub use lm::CausalLm;
