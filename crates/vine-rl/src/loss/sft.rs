//! Supervised fine-tuning loss (RestEM and the SFT stage; spec 2.2 and 3.1).
//!
//! ```text
//! L_SFT = (1/B) Σ_b [ −Σ_t m_bt·logπ(t) / Σ_t m_bt ]
//! ```
//!
//! The reference's `per_instance_non_pad_tokens_then_batch` reduction: the NLL is averaged over
//! the response tokens of each sequence, then over the sequences, so short and long solutions
//! weigh the same. Deviation: a row without valid tokens contributes 0 instead of NaN.

use candle_core::{Result, Tensor, D};

use super::{same_shape, sequence_mean, Normalizer};
use crate::stats::masked;

/// Per-sequence sums of the masked log-probs: `(B, T)` → `(B,)`.
pub fn sequence_logp(logp: &Tensor, mask: &Tensor) -> Result<Tensor> {
    same_shape("sequence_logp", &[logp, mask])?;
    masked(logp, mask)?.sum(D::Minus1)
}

/// The SFT loss over `(B, T)` log-probs of the target tokens; see the module docs. With a
/// normaliser the per-sequence means are summed and divided by `norm.sequences`.
pub fn sft_loss(logp: &Tensor, mask: &Tensor, norm: Option<&Normalizer>) -> Result<Tensor> {
    let (b, _) = same_shape("sft_loss", &[logp, mask])?;
    let nll = sequence_logp(logp, mask)?.neg()?; // (B,)
    let counts = mask.sum(D::Minus1)?.maximum(1.0)?; // (B,)
    let per_seq = nll.div(&counts)?;
    sequence_mean(&per_seq.sum_all()?, b, norm)
}
