//! The small interface the generation engine needs from a model.

use candle_core::{Device, Result, Tensor};

use crate::cache::KvCache;

/// A causal language model that decodes through an external [`KvCache`].
///
/// The engine never asks for logits of a prefill: to continue a prefix of `L` tokens it prefills
/// the first `L - 1` and feeds the last one as the first decode step. That also lets it cut a
/// cached trajectory at any prefix and continue from there (VinePPO's MC rollouts).
pub trait CausalLm {
    /// Size of the output distribution (the model's `vocab_size`, which may exceed the
    /// tokenizer's).
    fn vocab_size(&self) -> usize;

    /// Device the model and its caches live on.
    fn device(&self) -> &Device;

    /// An empty cache with the model's layer count.
    fn new_cache(&self) -> KvCache;

    /// Runs `ids` `(B, T)` through the model and appends them to `cache`, computing no logits.
    /// When `cache` is empty, `left_pad[b]` leading ids of row `b` are padding; otherwise
    /// `left_pad` must be all zeros (or empty).
    fn prefill(&self, ids: &Tensor, left_pad: &[usize], cache: &mut KvCache) -> Result<()>;

    /// Appends one token per row (`ids`: `(B, 1)`) and returns the next-token logits `(B, V)` in
    /// f32.
    fn decode_step(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor>;
}
