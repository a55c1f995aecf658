//! The clipped value loss of the PPO critic (spec 2.1; reference `_compute_critics_loss`).
//!
//! ```text
//! V̄_t  = clip(V_t, V_old,t − c, V_old,t + c)
//! L_V  = ½ · Σ_t m_t·max((V_t − R_t)², (V̄_t − R_t)²) / Σ_t m_t     token mean, c = 0.2
//! ```
//!
//! `V` are the critic's current values of the states before each response token, `V_old` the
//! values it gave when the episodes were collected, `R` the GAE returns, all laid out with
//! [`crate::Batch::align`] (`(B, T)`). `clip_frac` is the fraction of valid tokens where the
//! clipped term is the larger one; `mse` the unclipped mean squared error.
//!
//! Deviation: none. Like the reference, the loss is not scaled by a `vf_coef`: the critic has its
//! own optimiser.

use candle_core::{Result, Tensor};

use super::{read_scalars, same_shape, token_mean, Normalizer};
use crate::stats::masked;

/// Diagnostics of the value loss.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ValueStats {
    /// The loss value.
    pub loss: f32,
    /// Fraction of tokens where the clipped term was selected.
    pub clip_frac: f32,
    /// Mean of `(V − R)²`.
    pub mse: f32,
    /// Mean predicted value.
    pub value_mean: f32,
}

/// The value loss and its statistics.
#[derive(Debug, Clone)]
pub struct ValueLoss {
    /// Scalar loss, differentiable with respect to `values`.
    pub loss: Tensor,
    /// Diagnostics (means over the call's valid tokens).
    pub stats: ValueStats,
}

/// Clipped value loss; see the module docs. `clip` is `c` (reference 0.2).
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: f32,
    norm: Option<&Normalizer>,
) -> Result<ValueLoss> {
    same_shape("value_loss", &[values, old_values, returns, mask])?;
    let values = masked(values, mask)?;
    let old = masked(old_values, mask)?;
    let returns = masked(returns, mask)?;
    let c = f64::from(clip);
    let clipped = values.maximum(&(&old - c)?)?.minimum(&(&old + c)?)?;
    let vf1 = (&values - &returns)?.sqr()?;
    let vf2 = (&clipped - &returns)?.sqr()?;
    // Masked positions hold 0 in every input, so both terms are 0 there.
    let sum = vf1.maximum(&vf2)?.sum_all()?;
    let loss = token_mean(&sum, mask, norm)?.affine(0.5, 0.0)?;
    let per_token = mask.sum_all()?.maximum(1.0)?;
    let s = read_scalars(&[
        loss.clone(),
        masked(&vf2.gt(&vf1)?.to_dtype(vf1.dtype())?, mask)?
            .sum_all()?
            .div(&per_token)?,
        vf1.sum_all()?.div(&per_token)?,
        values.sum_all()?.div(&per_token)?,
    ])?;
    Ok(ValueLoss {
        loss,
        stats: ValueStats {
            loss: s[0],
            clip_frac: s[1],
            mse: s[2],
            value_mean: s[3],
        },
    })
}
