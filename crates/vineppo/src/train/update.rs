//! The PPO update shared by every credit-assignment method (spec §1.7, §2.1).
//!
//! Per iteration: `epochs` passes over the episodes in seeded minibatches of `minibatch_size`
//! episodes, one optimizer step each. Within a minibatch:
//! - advantages are whitened over its valid tokens (token-weighted mean, unbiased variance);
//! - episodes are split into micro-batches of similar length; gradients accumulate over them;
//! - loss = clipped surrogate (token mean) + β · k3 KL to the reference (clamped to [0, 10],
//!   summed per sequence, mean over sequences); log-probs divide logits by the sampling
//!   temperature; with a critic, the clipped value loss is stepped by the critic's own AdamW.
//!
//! Deviation: token and sequence means are taken over the whole minibatch (a `Normalizer`), not
//! per micro-batch as the reference's per-device averaging does, so results do not depend on the
//! micro-batch size (and so on the hardware).

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use vine_model::{target_logprobs, Mode, Transformer, ValueModel};
use vine_rl::loss::{
    actor_loss, masked_entropy, value_loss, ActorInputs, KlConfig, Normalizer, PpoConfig,
};
use vine_rl::stats::{normalize, AdvantageNorm};
use vine_rl::{batch, Batch, Episode};

use crate::config::{KlPenalty, PpoSection};
use crate::metrics::Metrics;
use crate::optim::{AdamW, GradAccumulator, LrSchedule};
use crate::seeds::{seed_for, Purpose};

/// Per-token log-probs `(B, L−1)` of `batch` under `model`, with no gradient kept.
///
/// f32 models use the fused inference kernels. bf16/f16 models use the training formulation
/// ([`Mode::Train`], the ops [`policy_logprobs`] differentiates), because in half precision
/// the two round differently (mean |Δ log p| 0.04 nats at T = 0.6 on the test fixture): old
/// and reference log-probs computed the fast way would start every PPO update at ratios ≠ 1
/// and a non-zero KL, where the reference recomputes them with the training forward.
pub fn logprobs_nograd(model: &Transformer, batch: &Batch, temperature: f64) -> Result<Tensor> {
    let (b, l) = batch.input_ids.dims2()?;
    let mode = match model.dtype() {
        DType::BF16 | DType::F16 => Mode::Train,
        _ => Mode::Infer,
    };
    let hidden = model
        .forward_hidden_with(&batch.input_ids, &[], None, mode)?
        .narrow(1, 0, l - 1)?; // (B, L−1, H)
    let logits = model
        .lm_head(&hidden.detach())?
        .detach()
        .reshape((b * (l - 1), model.config().vocab_size))?; // (N, V)
    let targets = batch.targets.flatten_all()?;
    Ok(target_logprobs(&logits, &targets, temperature)?
        .reshape((b, l - 1))?
        .detach())
}

/// Response-token log-probs of every episode, computed in chunks of `chunk` episodes.
pub fn response_logprobs(
    model: &Transformer,
    episodes: &[Episode],
    chunk: usize,
    temperature: f64,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(episodes.len());
    for part in episodes.chunks(chunk.max(1)) {
        let b = Batch::collate(part, model.device())?;
        let lp = logprobs_nograd(model, &b, temperature)?;
        out.extend(b.response_rows(&lp)?);
    }
    Ok(out)
}

/// Critic values of the state before every response token, per episode.
pub fn critic_values(
    critic: &ValueModel,
    episodes: &[Episode],
    chunk: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(episodes.len());
    for part in episodes.chunks(chunk.max(1)) {
        let b = Batch::collate(part, critic.backbone.device())?;
        let l = b.seq_len();
        let v = critic
            .values(&b.input_ids, &[])?
            .narrow(1, 0, l - 1)?
            .detach(); // (B, L−1)
        out.extend(b.response_rows(&v)?);
    }
    Ok(out)
}

/// A trainable critic and its optimizer.
pub struct Critic {
    /// Backbone + value head.
    pub model: ValueModel,
    /// Its own AdamW.
    pub optimizer: AdamW,
    /// Value-loss clip range.
    pub clip: f32,
}

/// A critic's old values and the GAE returns, per episode and token.
pub type ValuesAndReturns<'a> = (&'a [Vec<f32>], &'a [Vec<f32>]);

/// What the update needs per episode, indexed like the episodes.
pub struct UpdateInputs<'a> {
    /// The episodes.
    pub episodes: &'a [Episode],
    /// Per-token advantages.
    pub advantages: &'a [Vec<f32>],
    /// Per-token log-probs of the sampling policy.
    pub old_logp: &'a [Vec<f32>],
    /// Per-token log-probs of the reference policy.
    pub ref_logp: &'a [Vec<f32>],
    /// GAE: old critic values and returns per token.
    pub values: Option<ValuesAndReturns<'a>>,
}

/// Running sums of the update's diagnostics.
#[derive(Default)]
struct Totals {
    steps: f64,
    loss: f64,
    clip_frac: f64,
    approx_kl: f64,
    ratio_min: f64,
    ratio_max: f64,
    k3: f64,
    k1: f64,
    entropy: f64,
    entropy_n: f64,
    grad_norm: f64,
    value_loss: f64,
    value_clip: f64,
    critic_grad_norm: f64,
    skipped: f64,
    lr: f64,
}

/// Runs `ppo.epochs` epochs over the episodes; returns the optimizer steps taken.
#[allow(clippy::too_many_arguments)]
pub fn ppo_update(
    policy: &Transformer,
    optimizer: &mut AdamW,
    schedule: &LrSchedule,
    mut critic: Option<&mut Critic>,
    inputs: &UpdateInputs<'_>,
    ppo: &PpoSection,
    temperature: f64,
    seed: u64,
    iteration: u64,
    m: &mut Metrics,
) -> Result<u64> {
    let device = policy.device().clone();
    let n = inputs.episodes.len();
    let mut t = Totals {
        ratio_min: f64::INFINITY,
        ratio_max: f64::NEG_INFINITY,
        ..Totals::default()
    };
    let kl = (ppo.kl_penalty == KlPenalty::Loss && ppo.kl_coef > 0.0).then_some(KlConfig {
        coef: ppo.kl_coef as f32,
        clamp_min: 0.0,
        clamp_max: ppo.kl_clamp as f32,
    });
    let ppo_cfg = PpoConfig {
        clip: ppo.clip as f32,
        ratio_threshold: ppo.ratio_threshold.map(|r| r as f32),
    };
    let mut steps = 0u64;
    for epoch in 0..ppo.epochs {
        let order = batch::minibatches(
            n,
            ppo.minibatch_size,
            seed_for(seed, Purpose::Minibatches, iteration, epoch as u64),
        )?;
        for mb in order {
            let advantages: Vec<Vec<f32>> =
                mb.iter().map(|&i| inputs.advantages[i].clone()).collect();
            let advantages = if ppo.whiten_advantages {
                normalize(&advantages, AdvantageNorm::Whiten)
            } else {
                advantages
            };
            let local: Vec<usize> = (0..mb.len()).collect();
            let mb_eps: Vec<Episode> = mb.iter().map(|&i| inputs.episodes[i].clone()).collect();
            let micro = batch::micro_batches_by_length(&mb_eps, &local, ppo.micro_batch_size)?;
            let batches: Vec<Batch> = micro
                .iter()
                .map(|ix| Batch::collate(ix.iter().map(|&j| &mb_eps[j]), &device))
                .collect::<std::result::Result<_, _>>()?;
            let norm = Normalizer::of_batches(&batches);
            let mut grads = GradAccumulator::default();
            let mut critic_grads = GradAccumulator::default();
            for (mi, (ix, b)) in micro.iter().zip(&batches).enumerate() {
                let rows = |src: &[Vec<f32>]| -> Vec<Vec<f32>> {
                    ix.iter().map(|&j| src[mb[j]].clone()).collect()
                };
                let adv = b.align(
                    &ix.iter()
                        .map(|&j| advantages[j].clone())
                        .collect::<Vec<_>>(),
                )?;
                let old = b.align(&rows(inputs.old_logp))?;
                let reference = b.align(&rows(inputs.ref_logp))?;
                let (logp, entropy) = policy_logprobs(policy, b, temperature, mi == 0)?;
                if let Some(e) = entropy {
                    t.entropy += e as f64;
                    t.entropy_n += 1.0;
                }
                let actor = actor_loss(
                    &ActorInputs {
                        logp: &logp,
                        old_logp: &old,
                        ref_logp: kl.map(|_| &reference),
                        advantages: &adv,
                        mask: &b.response_mask,
                    },
                    &ppo_cfg,
                    kl.as_ref(),
                    Some(&norm),
                )?;
                grads.add(optimizer.params(), &actor.loss.backward()?, 1.0)?;
                let share = b.rows() as f64 / norm.sequences.max(1.0);
                t.loss += actor.total as f64 * share;
                t.clip_frac += actor.policy.clip_frac as f64 * share;
                t.approx_kl += actor.policy.approx_kl as f64 * share;
                t.ratio_min = t.ratio_min.min(actor.policy.ratio_min as f64);
                t.ratio_max = t.ratio_max.max(actor.policy.ratio_max as f64);
                t.skipped += actor.policy.skipped as u8 as f64 * share;
                if let Some(k) = actor.kl {
                    t.k3 += k.k3 as f64 * share;
                    t.k1 += k.k1 as f64 * share;
                }
                if let (Some(c), Some((old_values, returns))) =
                    (critic.as_deref_mut(), inputs.values)
                {
                    let l = b.seq_len();
                    let values = c.model.values(&b.input_ids, &[])?.narrow(1, 0, l - 1)?; // (B, L−1)
                    let vl = value_loss(
                        &values,
                        &b.align(&rows(old_values))?,
                        &b.align(&rows(returns))?,
                        &b.response_mask,
                        c.clip,
                        Some(&norm),
                    )?;
                    critic_grads.add(c.optimizer.params(), &vl.loss.backward()?, 1.0)?;
                    t.value_loss += vl.stats.loss as f64 * share;
                    t.value_clip += vl.stats.clip_frac as f64 * share;
                }
            }
            let step = optimizer.steps_taken();
            let lr = schedule.lr(step);
            let stats = optimizer
                .step(&grads, lr)
                .context("policy optimizer step")?;
            if let Some(c) = critic.as_deref_mut() {
                let cs = c
                    .optimizer
                    .step(&critic_grads, schedule.lr(step))
                    .context("critic optimizer step")?;
                t.critic_grad_norm += cs.grad_norm;
            }
            t.grad_norm += stats.grad_norm;
            t.lr = lr;
            t.steps += 1.0;
            steps += 1;
        }
    }
    log_totals(m, &t, critic.is_some());
    Ok(steps)
}

/// Differentiable log-probs `(B, L−1)` at `temperature`, and (when asked) the mean entropy of
/// the temperature-scaled distribution over the response tokens.
pub fn policy_logprobs(
    policy: &Transformer,
    b: &Batch,
    temperature: f64,
    want_entropy: bool,
) -> Result<(Tensor, Option<f32>)> {
    let (rows, l) = b.input_ids.dims2()?;
    let hidden = policy
        .forward_hidden(&b.input_ids, &[], None)?
        .narrow(1, 0, l - 1)?; // (B, L−1, H)
    let logits = policy.lm_head(&hidden)?; // (B, L−1, V)
    let entropy = if want_entropy {
        Some(masked_entropy(
            &(logits.detach().to_dtype(candle_core::DType::F32)? / temperature)?,
            &b.response_mask,
        )?)
    } else {
        None
    };
    let flat = logits.reshape((rows * (l - 1), policy.config().vocab_size))?; // (N, V)
    let logp =
        target_logprobs(&flat, &b.targets.flatten_all()?, temperature)?.reshape((rows, l - 1))?;
    Ok((logp, entropy))
}

fn log_totals(m: &mut Metrics, t: &Totals, critic: bool) {
    let s = t.steps.max(1.0);
    m.set("ppo/loss", t.loss / s);
    m.set("ppo/clip_frac", t.clip_frac / s);
    m.set("ppo/approx_kl", t.approx_kl / s);
    m.set("ppo/ratio_min", t.ratio_min);
    m.set("ppo/ratio_max", t.ratio_max);
    m.set("ppo/skipped_frac", t.skipped / s);
    m.set("ppo/grad_norm", t.grad_norm / s);
    m.set("ppo/lr", t.lr);
    m.set("ppo/entropy", t.entropy / t.entropy_n.max(1.0));
    m.set("ppo/kl_k3_seq", t.k3 / s);
    m.set("ppo/kl_k1_seq", t.k1 / s);
    if critic {
        m.set("critic/value_loss", t.value_loss / s);
        m.set("critic/clip_frac", t.value_clip / s);
        m.set("critic/grad_norm", t.critic_grad_norm / s);
    }
}

/// KL of the sampling policy to the reference over the iteration's episodes: per-sequence sums
/// of k1 = log π − log π_ref and of clamped k3, averaged over sequences (`kl/*` metrics).
pub fn log_rollout_kl(m: &mut Metrics, old_logp: &[Vec<f32>], ref_logp: &[Vec<f32>], clamp: f64) {
    let (mut k1, mut k3) = (0f64, 0f64);
    for (o, r) in old_logp.iter().zip(ref_logp) {
        for (&lo, &lr) in o.iter().zip(r) {
            let d = (lr - lo) as f64;
            k1 -= d;
            k3 += (d.exp() - d - 1.0).clamp(0.0, clamp);
        }
    }
    let n = old_logp.len().max(1) as f64;
    m.set("kl/k1_seq_mean", k1 / n);
    m.set("kl/k3_seq_mean", k3 / n);
}
