//! The PPO clipped surrogate and the actor loss (spec 1.7; reference `_compute_actor_loss`).
//!
//! ```text
//! ρ_t   = exp(logπ(t) − logπ_old(t))
//! ℓ_t   = max(−A_t·ρ_t, −A_t·clip(ρ_t, 1−ε, 1+ε))
//! L_PPO = Σ_t m_t·ℓ_t / Σ_t m_t                                 token mean
//! L     = L_PPO + β·L_KL                                        (actor_loss, see kl.rs)
//! L     = 0·L   if mean_t ρ_t > ratio_threshold                 (safety rule, default 10)
//! ```
//!
//! Statistics follow the reference's names: `clip_frac` is the fraction of valid tokens where
//! the clipped term is the larger one, `approx_kl = ½·mean((logπ − logπ_old)²)` and
//! `policy_kl = mean(logπ_old − logπ)`. Ratio min/max are over valid tokens.
//!
//! The safety rule zeroes the whole actor loss of the call (policy and KL terms), as the
//! reference does. Deviation: the zeroed loss is `0·L` through `affine`, which candle's backward
//! treats as constant, so no gradient reaches the parameters at all (rather than gradients of
//! zero that could still be NaN where a ratio overflowed). A skipped micro-batch therefore adds
//! nothing to accumulated gradients, and optimisers skip parameters without a gradient.

use candle_core::{Result, Tensor};

use super::kl::{kl_loss, KlConfig, KlStats};
use super::{read_scalars, same_shape, token_mean, Normalizer};
use crate::stats::masked;

/// Settings of the clipped surrogate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoConfig {
    /// ε, the ratio clip range (reference 0.2).
    pub clip: f32,
    /// Zero the loss when the mean ratio exceeds this (reference 10); `None` disables the rule.
    pub ratio_threshold: Option<f32>,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            clip: 0.2,
            ratio_threshold: Some(10.0),
        }
    }
}

/// Diagnostics of one PPO loss evaluation (values over the valid tokens of the call).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyStats {
    /// The surrogate loss value (0 when skipped).
    pub loss: f32,
    /// Fraction of tokens where the clipped term was selected.
    pub clip_frac: f32,
    /// Mean importance ratio.
    pub ratio_mean: f32,
    /// Smallest ratio (1 when there are no tokens).
    pub ratio_min: f32,
    /// Largest ratio (1 when there are no tokens).
    pub ratio_max: f32,
    /// `½·mean((logπ − logπ_old)²)`.
    pub approx_kl: f32,
    /// `mean(logπ_old − logπ)`.
    pub policy_kl: f32,
    /// Number of valid tokens.
    pub tokens: f32,
    /// The safety rule zeroed the loss.
    pub skipped: bool,
}

/// The clipped surrogate and its statistics.
#[derive(Debug, Clone)]
pub struct PolicyLoss {
    /// Scalar loss, differentiable with respect to `logp`.
    pub loss: Tensor,
    /// Diagnostics.
    pub stats: PolicyStats,
}

/// The PPO clipped surrogate over `(B, T)` log-probs of the current policy (`logp`), of the
/// policy that sampled the episodes (`old_logp`), per-token `advantages` and the response
/// `mask`. See the module docs; `norm` as in [`crate::loss`].
pub fn ppo_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    cfg: &PpoConfig,
    norm: Option<&Normalizer>,
) -> Result<PolicyLoss> {
    same_shape("ppo_loss", &[logp, old_logp, advantages, mask])?;
    let diff = masked(&(logp - old_logp)?, mask)?; // (B, T), 0 at masked positions
    let ratio = diff.exp()?;
    let neg_adv = masked(advantages, mask)?.neg()?;
    let lo = 1.0 - f64::from(cfg.clip);
    let hi = 1.0 + f64::from(cfg.clip);
    let pg1 = (&neg_adv * &ratio)?;
    let pg2 = (&neg_adv * ratio.clamp(lo, hi)?)?;
    let loss = token_mean(&pg1.maximum(&pg2)?.sum_all()?, mask, norm)?;

    let count = mask.sum_all()?;
    let per_token = count.maximum(1.0)?;
    let keep = mask.gt(0.5)?;
    let inf = ratio.ones_like()?.affine(0.0, f64::INFINITY)?;
    let s = read_scalars(&[
        loss.clone(),
        masked(&pg2.gt(&pg1)?.to_dtype(ratio.dtype())?, mask)?
            .sum_all()?
            .div(&per_token)?,
        masked(&ratio, mask)?.sum_all()?.div(&per_token)?,
        keep.where_cond(&ratio, &inf)?.flatten_all()?.min(0)?,
        keep.where_cond(&ratio, &inf.neg()?)?
            .flatten_all()?
            .max(0)?,
        (diff.sqr()?.sum_all()?.div(&per_token)? * 0.5)?,
        diff.sum_all()?.neg()?.div(&per_token)?,
        count,
    ])?;
    let has_tokens = s[7] > 0.0;
    let ratio_mean = if has_tokens { s[2] } else { 1.0 };
    let skipped = cfg.ratio_threshold.is_some_and(|t| ratio_mean > t);
    let loss = if skipped {
        loss.affine(0.0, 0.0)?
    } else {
        loss
    };
    let stats = PolicyStats {
        loss: if skipped { 0.0 } else { s[0] },
        clip_frac: s[1],
        ratio_mean,
        ratio_min: if has_tokens { s[3] } else { 1.0 },
        ratio_max: if has_tokens { s[4] } else { 1.0 },
        approx_kl: s[5],
        policy_kl: s[6],
        tokens: s[7],
        skipped,
    };
    Ok(PolicyLoss { loss, stats })
}

/// Inputs of [`actor_loss`], all `(B, T)` f32.
#[derive(Debug, Clone, Copy)]
pub struct ActorInputs<'a> {
    /// Log-probs of the current policy (differentiable).
    pub logp: &'a Tensor,
    /// Log-probs of the policy that sampled the episodes.
    pub old_logp: &'a Tensor,
    /// Log-probs of the frozen reference model; required when the KL term is on.
    pub ref_logp: Option<&'a Tensor>,
    /// Per-token advantages (whitened or not, as the trainer chose).
    pub advantages: &'a Tensor,
    /// The response mask.
    pub mask: &'a Tensor,
}

/// The actor loss of one (micro-)batch.
#[derive(Debug, Clone)]
pub struct ActorLoss {
    /// Scalar loss: PPO surrogate plus the KL term, zeroed by the safety rule.
    pub loss: Tensor,
    /// The value of `loss`.
    pub total: f32,
    /// Surrogate diagnostics.
    pub policy: PolicyStats,
    /// KL diagnostics, when the KL term is on (describing the term before the safety rule).
    pub kl: Option<KlStats>,
}

/// PPO surrogate plus, when `kl` is given, the k3 penalty to the reference, with the safety
/// rule applied to the sum (the reference's `_compute_actor_loss`).
pub fn actor_loss(
    inputs: &ActorInputs<'_>,
    ppo: &PpoConfig,
    kl: Option<&KlConfig>,
    norm: Option<&Normalizer>,
) -> Result<ActorLoss> {
    let unguarded = PpoConfig {
        ratio_threshold: None,
        ..*ppo
    };
    let policy = ppo_loss(
        inputs.logp,
        inputs.old_logp,
        inputs.advantages,
        inputs.mask,
        &unguarded,
        norm,
    )?;
    let (mut loss, kl_stats) = match kl {
        None => (policy.loss, None),
        Some(cfg) => {
            let Some(ref_logp) = inputs.ref_logp else {
                candle_core::bail!(
                    "actor_loss: the KL term is on but no reference log-probs were given"
                )
            };
            let k = kl_loss(inputs.logp, ref_logp, inputs.mask, cfg, norm)?;
            ((policy.loss + k.loss)?, Some(k.stats))
        }
    };
    let mut stats = policy.stats;
    stats.skipped = ppo.ratio_threshold.is_some_and(|t| stats.ratio_mean > t);
    if stats.skipped {
        loss = loss.affine(0.0, 0.0)?;
        stats.loss = 0.0;
    }
    let total = if stats.skipped {
        0.0
    } else {
        stats.loss + kl_stats.map_or(0.0, |k| k.loss)
    };
    Ok(ActorLoss {
        loss,
        total,
        policy: stats,
        kl: kl_stats,
    })
}
