//! # vine-rollout
//!
//! Brief overview: the generation engine. Token ids in; sampled token ids, their
//! log-probabilities and finish reasons out. It knows nothing about text: tokenizers, prompts
//! and stop-string decoding belong to the caller.
//!
//! - [`Request`]: a prefix to continue `n` times with its own seed.
//! - [`SamplingParams`]: temperature / top-k / top-p, token budgets, stop tokens.
//! - [`Engine::generate`]: runs any [`vine_model::CausalLm`] over a batch of requests and returns
//!   one [`Sample`] per requested continuation, grouped per request.
//! - [`StopStrings`]: the hook through which a caller with a tokenizer ends samples on text.
//! - [`mock::MockLm`]: a weight-free model for tests of this crate and of the trainer.
//! - [`bench`](mod@bench): the `vineppo bench generate` throughput benchmark.
//!
//! The engine is built for VinePPO's Monte-Carlo value estimates, where most of the work is `K`
//! continuations from every reasoning-step boundary of every sampled solution: equal and nested
//! prefixes are prefilled once and their cache is forked ([`vine_model::KvCache::gather`]),
//! rows decode with continuous batching (finished rows are replaced or dropped before the next
//! step), and every sample draws from its own random stream keyed by `(seed, sample index)`, so
//! results never depend on batch composition or engine settings.
//!
//! ```
//! use vine_rollout::mock::MockLm;
//! use vine_rollout::{Engine, EngineConfig, FinishReason, Request, SamplingParams};
//!
//! let lm = MockLm::hashed(32, 0); // a 32-token mock model
//! let params = SamplingParams {
//!     max_new_tokens: 5,
//!     stop_token_ids: vec![1], // EOS
//!     ..SamplingParams::default()
//! };
//! // Continue a prompt and one of its prefixes, 3 samples each: one shared prefill.
//! let requests = [
//!     Request::new(vec![0, 7, 9, 4], 3, 1),
//!     Request::new(vec![0, 7], 3, 2),
//! ];
//! let engine = Engine::new(EngineConfig::default())?;
//! let samples = engine.generate(&lm, &requests, &params, None, &mut |_progress| {})?;
//! assert_eq!(samples.len(), 2);
//! for s in samples.iter().flatten() {
//!     assert!(s.tokens.len() <= 5 && !s.tokens.contains(&1));
//!     assert_eq!(s.logprobs.len(), s.tokens.len());
//!     assert!(s.finish == FinishReason::Length || s.finish.is_stop());
//! }
//! assert_eq!(lm.stats().prefill_tokens, 3); // only [0, 7, 9] was prefilled
//! # Ok::<(), vine_rollout::Error>(())
//! ```

#![warn(missing_docs)]

mod batch;
pub mod bench;
mod engine;
pub mod error;
pub mod mock;
mod plan;
pub mod request;
pub mod sampling;
mod scheduler;

pub use engine::{Engine, EngineConfig, Progress};
pub use error::{Error, Result};
pub use request::{
    FinishReason, Request, Sample, SamplingParams, StopHit, StopKind, StopSequences, StopStrings,
};
