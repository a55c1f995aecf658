//! The DPO-Positive (DPOP, "DPO+") loss (spec 2.3; reference `dpo_positive_trainer.py`).
//!
//! With sequence-summed log-probs of the chosen (`c`) and rejected (`r`) responses under the
//! policy (`π`) and the frozen reference (`ref`):
//!
//! ```text
//! z = (logπ(c) − logπ(r)) − (logπ_ref(c) − logπ_ref(r)) − λ·max(0, logπ_ref(c) − logπ(c))
//! L = mean_pairs [ −(1−s)·log σ(β·z) − s·log σ(−β·z) ]       s = label smoothing (reference 0)
//! ```
//!
//! As in the reference, the positive penalty sits **inside** the logit and is multiplied by β
//! together with the DPO margin (λ = 50, β = 0.1 on MATH, 0.3 on GSM8K). `log σ` is evaluated
//! as `−(relu(−x) + log(1 + exp(−|x|)))`, which is exact in floating point for large `|x|`.
//!
//! Statistics use the DPO paper's implicit rewards `β·(logπ − logπ_ref)` (the reference logs
//! them without β; accuracies do not depend on it): `reward_accuracy` is the fraction of pairs
//! whose chosen reward is higher, `policy_accuracy` (the reference's `actor/ahr`) the fraction
//! where the policy itself gives the chosen response the higher log-prob.

use candle_core::{Result, Tensor};

use super::sft::sequence_logp;
use super::{read_scalars, sequence_mean, Normalizer};

/// Settings of the DPO+ loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpoConfig {
    /// β, the inverse temperature of the preference logit (reference 0.1 MATH, 0.3 GSM8K).
    pub beta: f32,
    /// λ, the weight of the positive penalty (reference 50).
    pub lambda: f32,
    /// Label smoothing `s` (reference 0).
    pub label_smoothing: f32,
}

impl Default for DpoConfig {
    fn default() -> Self {
        Self {
            beta: 0.1,
            lambda: 50.0,
            label_smoothing: 0.0,
        }
    }
}

/// One side (chosen or rejected) of a batch of pairs: `(B, T)` log-probs and mask.
#[derive(Debug, Clone, Copy)]
pub struct PairSide<'a> {
    /// Per-token log-probs under the policy (differentiable).
    pub logp: &'a Tensor,
    /// Per-token log-probs under the reference model.
    pub ref_logp: &'a Tensor,
    /// Response mask.
    pub mask: &'a Tensor,
}

/// Diagnostics of the DPO+ loss (means over the call's pairs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DpoStats {
    /// The loss value.
    pub loss: f32,
    /// Fraction of pairs whose chosen implicit reward is higher.
    pub reward_accuracy: f32,
    /// Mean of chosen minus rejected implicit reward.
    pub reward_margin: f32,
    /// Mean chosen implicit reward `β·(logπ(c) − logπ_ref(c))`.
    pub chosen_reward: f32,
    /// Mean rejected implicit reward `β·(logπ(r) − logπ_ref(r))`.
    pub rejected_reward: f32,
    /// Mean of `max(0, logπ_ref(c) − logπ(c))`, the positive penalty before λ.
    pub positive_penalty: f32,
    /// Fraction of pairs where `logπ(c) > logπ(r)`.
    pub policy_accuracy: f32,
}

/// The loss and its statistics.
#[derive(Debug, Clone)]
pub struct DpoLoss {
    /// Scalar loss, differentiable with respect to both sides' `logp`.
    pub loss: Tensor,
    /// Diagnostics.
    pub stats: DpoStats,
}

/// `−log σ(x)`, elementwise and stable.
fn neg_log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    x.neg()?.relu()? + tail
}

/// The DPO+ loss over `B` pairs; row `b` of `chosen` and of `rejected` form one pair (their `T`
/// may differ). See the module docs; with a normaliser, divided by `norm.sequences` pairs.
pub fn dpo_positive_loss(
    chosen: &PairSide<'_>,
    rejected: &PairSide<'_>,
    cfg: &DpoConfig,
    norm: Option<&Normalizer>,
) -> Result<DpoLoss> {
    let pc = sequence_logp(chosen.logp, chosen.mask)?; // (B,)
    let rc = sequence_logp(chosen.ref_logp, chosen.mask)?.detach();
    let pr = sequence_logp(rejected.logp, rejected.mask)?;
    let rr = sequence_logp(rejected.ref_logp, rejected.mask)?.detach();
    let b = pc.dims1()?;
    if pr.dims1()? != b {
        candle_core::bail!(
            "dpo_positive_loss: {b} chosen rows but {} rejected rows",
            pr.dims1()?
        )
    }
    let beta = f64::from(cfg.beta);
    let penalty = (&rc - &pc)?.relu()?; // (B,)
    let z = (((&pc - &pr)? - (&rc - &rr)?)? - penalty.affine(f64::from(cfg.lambda), 0.0)?)?;
    let bz = z.affine(beta, 0.0)?;
    let s = f64::from(cfg.label_smoothing);
    let per_pair = if s == 0.0 {
        neg_log_sigmoid(&bz)?
    } else {
        (neg_log_sigmoid(&bz)?.affine(1.0 - s, 0.0)?
            + neg_log_sigmoid(&bz.neg()?)?.affine(s, 0.0)?)?
    };
    let loss = sequence_mean(&per_pair.sum_all()?, b, norm)?;

    let chosen_r = (&pc - &rc)?.affine(beta, 0.0)?.detach();
    let rejected_r = (&pr - &rr)?.affine(beta, 0.0)?.detach();
    let mean = |t: Tensor| t.to_dtype(candle_core::DType::F32)?.mean_all();
    let v = read_scalars(&[
        loss.clone(),
        mean(chosen_r.gt(&rejected_r)?)?,
        mean((&chosen_r - &rejected_r)?)?,
        mean(chosen_r.clone())?,
        mean(rejected_r.clone())?,
        mean(penalty)?,
        mean(pc.gt(&pr)?)?,
    ])?;
    Ok(DpoLoss {
        loss,
        stats: DpoStats {
            loss: v[0],
            reward_accuracy: v[1],
            reward_margin: v[2],
            chosen_reward: v[3],
            rejected_reward: v[4],
            positive_penalty: v[5],
            policy_accuracy: v[6],
        },
    })
}
