//! Errors of the generation engine.

/// What can go wrong in [`crate::Engine::generate`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`crate::SamplingParams`] or [`crate::EngineConfig`] field is out of range.
    #[error("invalid sampling parameters: {0}")]
    InvalidParams(String),
    /// A request cannot be served as given.
    #[error("request {index}: {reason}")]
    InvalidRequest {
        /// Position of the request in the slice passed to `generate`.
        index: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The model returned logits the sampler cannot use (NaN, +inf, or all -inf).
    #[error("model returned unusable logits: {0}; check the checkpoint and its dtype")]
    BadLogits(String),
    /// The benchmark could not be set up (model construction, writing its files).
    #[error("benchmark setup failed: {0}")]
    Bench(String),
    /// An invariant of the engine itself was broken; please report it.
    #[error("internal error in the generation engine: {0}")]
    Internal(String),
    /// The model or a cache operation failed.
    #[error(transparent)]
    Model(#[from] candle_core::Error),
}

/// `Result` with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
