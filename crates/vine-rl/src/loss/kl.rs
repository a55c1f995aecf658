//! KL penalty to the reference model, in the loss (spec 1.7; the reference's
//! `kl_penalty_loss_type: control_variate` with `kl_penalty_loss_clip_{min,max}: 0, 10`).
//!
//! ```text
//! d_t  = logπ_ref(t) − logπ(t)
//! k3_t = exp(d_t) − d_t − 1                       Schulman's unbiased, non-negative estimator
//! L_KL = β · mean_b Σ_t clamp(m_t·k3_t, 0, 10)    summed per sequence, averaged over sequences
//! k1   = mean_b Σ_t m_t·(logπ(t) − logπ_ref(t))   logged only
//! ```
//!
//! The clamp is per token; its gradient is 0 where k3 exceeds 10. For KL in the *reward* (the
//! reference's other option) see [`crate::credit::gae::KlShaping`].
//!
//! Deviation: none in the value; positions are masked with `where_cond` before the estimator, so
//! padding with non-finite log-probs cannot turn the sum into NaN.

use candle_core::{Result, Tensor};

use super::{read_scalars, same_shape, sequence_mean, Normalizer};
use crate::stats::masked;

/// Settings of the KL penalty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlConfig {
    /// β (reference 1e-4).
    pub coef: f32,
    /// Per-token lower clamp of k3 (reference 0).
    pub clamp_min: f32,
    /// Per-token upper clamp of k3 (reference 10).
    pub clamp_max: f32,
}

impl Default for KlConfig {
    fn default() -> Self {
        Self {
            coef: 1e-4,
            clamp_min: 0.0,
            clamp_max: 10.0,
        }
    }
}

/// Diagnostics of the KL term.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KlStats {
    /// Mean over sequences of the per-sequence sum of clamped k3 (before β).
    pub k3: f32,
    /// Mean over sequences of the per-sequence sum of k1 = logπ − logπ_ref.
    pub k1: f32,
    /// The loss value, `β·k3` (with a normaliser, the call's share of it).
    pub loss: f32,
}

/// The KL term and its statistics.
#[derive(Debug, Clone)]
pub struct KlLoss {
    /// Scalar loss, differentiable with respect to `logp`.
    pub loss: Tensor,
    /// Diagnostics (per-call means over the call's sequences).
    pub stats: KlStats,
}

/// The k3 KL penalty between the current policy's `logp` and the reference's `ref_logp`,
/// `(B, T)`, over the valid positions of `mask`. See the module docs.
pub fn kl_loss(
    logp: &Tensor,
    ref_logp: &Tensor,
    mask: &Tensor,
    cfg: &KlConfig,
    norm: Option<&Normalizer>,
) -> Result<KlLoss> {
    let (b, _) = same_shape("kl_loss", &[logp, ref_logp, mask])?;
    let d = masked(&(ref_logp - logp)?, mask)?; // (B, T), 0 at masked positions
    let k3 = ((d.exp()? - &d)? - 1.0)?;
    let k3 = k3.clamp(f64::from(cfg.clamp_min), f64::from(cfg.clamp_max))?;
    let total = k3.sum_all()?;
    let loss = sequence_mean(&total, b, norm)?.affine(f64::from(cfg.coef), 0.0)?;
    let s = read_scalars(&[
        sequence_mean(&total, b, None)?,
        sequence_mean(&d.sum_all()?.neg()?, b, None)?,
        loss.clone(),
    ])?;
    Ok(KlLoss {
        loss,
        stats: KlStats {
            k3: s[0],
            k1: s[1],
            loss: s[2],
        },
    })
}
