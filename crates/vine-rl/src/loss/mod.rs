//! Training losses on per-token log-prob tensors.
//!
//! Every loss takes `(B, T)` f32 tensors aligned as [`crate::Batch`] lays them out (position `j`
//! holds the log-prob of the token `j` predicts) and a 0/1 f32 `mask` `(B, T)` that is 1 on the
//! positions that count (the batch's `response_mask`). Values at masked positions are never read,
//! even when non-finite: masking uses `where_cond` ([`crate::stats::masked`]), not multiplication.
//!
//! | function | loss | reduction | spec |
//! | --- | --- | --- | --- |
//! | [`ppo_loss`] | `max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))` | token mean | 1.7 |
//! | [`kl_loss`] | `β·clamp(k3, 0, 10)` | sum per sequence, mean over sequences | 1.7 |
//! | [`actor_loss`] | the two above with the ratio safety rule | | 1.7 |
//! | [`value_loss`] | `½·max((V−R)², (clip(V, V_old±c)−R)²)` | token mean | 2.1 |
//! | [`sft_loss`] | `−logπ` | mean per sequence, mean over sequences | 2.2 |
//! | [`dpo_positive_loss`] | `−log σ(β·z)` (DPO-Positive) | mean over pairs | 2.3 |
//! | [`masked_entropy`] | policy entropy, for logging | token mean | – |
//!
//! **Reduction under gradient accumulation.** The reference computes each mean over the
//! micro-batch it sees (one micro-batch per device and step in its configs). Passing a
//! [`Normalizer`] with the totals of the whole minibatch instead divides every micro-batch's
//! sum by those totals, so the accumulated gradient equals the gradient of the minibatch's mean
//! whatever the micro-batch split. `None` keeps the reference's per-call mean.

mod dpo;
mod entropy;
mod kl;
mod policy;
mod sft;
mod value;

pub use dpo::{dpo_positive_loss, DpoConfig, DpoLoss, DpoStats, PairSide};
pub use entropy::masked_entropy;
pub use kl::{kl_loss, KlConfig, KlLoss, KlStats};
pub use policy::{
    actor_loss, ppo_loss, ActorInputs, ActorLoss, PolicyLoss, PolicyStats, PpoConfig,
};
pub use sft::{sequence_logp, sft_loss};
pub use value::{value_loss, ValueLoss, ValueStats};

use candle_core::{Result, Tensor};

use crate::batch::Batch;

/// What summed losses are divided by: the totals of a minibatch, for gradient accumulation.
/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer {
    /// Valid tokens (for token means).
    pub tokens: f64,
    /// Sequences, or pairs for DPO (for sequence means).
    pub sequences: f64,
}

impl Normalizer {
    /// The totals of the micro-batches that make up one minibatch.
    pub fn of_batches<'a>(batches: impl IntoIterator<Item = &'a Batch>) -> Self {
        let (tokens, sequences) = batches.into_iter().fold((0usize, 0usize), |(t, s), b| {
            (t + b.n_tokens(), s + b.rows())
        });
        Self {
            tokens: tokens as f64,
            sequences: sequences as f64,
        }
    }
}

/// `sum / Σ mask` (0 for an empty mask), or `sum / tokens` with a normaliser.
pub(crate) fn token_mean(sum: &Tensor, mask: &Tensor, norm: Option<&Normalizer>) -> Result<Tensor> {
    match norm {
        Some(n) => sum.affine(1.0 / n.tokens.max(1.0), 0.0),
        None => sum.div(&mask.sum_all()?.maximum(1.0)?),
    }
}

/// `sum / rows`, or `sum / sequences` with a normaliser.
pub(crate) fn sequence_mean(
    sum: &Tensor,
    rows: usize,
    norm: Option<&Normalizer>,
) -> Result<Tensor> {
    let d = norm.map_or(rows as f64, |n| n.sequences);
    sum.affine(1.0 / d.max(1.0), 0.0)
}

/// Checks that all tensors have the same shape `(B, T)` as the first.
pub(crate) fn same_shape(name: &str, ts: &[&Tensor]) -> Result<(usize, usize)> {
    let dims = ts[0].dims2()?;
    for t in &ts[1..] {
        if t.dims() != ts[0].dims() {
            candle_core::bail!(
                "{name}: inputs must share the shape {:?}, got {:?}",
                ts[0].dims(),
                t.dims()
            )
        }
    }
    Ok(dims)
}

/// Reads several scalar f32 tensors with a single device synchronisation.
pub(crate) fn read_scalars(ts: &[Tensor]) -> Result<Vec<f32>> {
    let flat = ts
        .iter()
        .map(|t| t.detach().reshape(1))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&flat, 0)?.to_vec1::<f32>()
}
