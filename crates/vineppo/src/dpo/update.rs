//! One DPO+ optimizer step over a batch of pairs (spec §2.3; reference
//! `dpo_positive_trainer.py::_compute_actor_loss`).
//!
//! A micro-batch of `m` pairs is collated as one `(2m, L)` batch, the chosen responses in rows
//! `0..m` and the rejected ones in rows `m..2m`, so one forward pass serves both sides. Log-probs
//! divide logits by the sampling temperature, for the policy and the reference alike, as the
//! reference does. The loss is vine-rl's [`dpo_positive_loss`], averaged over the pairs of the
//! whole batch (a [`Normalizer`] counting pairs), so the micro-batch split does not change the
//! gradient.
//!
//! The frozen reference is read only through each response's summed log-prob, computed once
//! before training; the loss gets it as a row holding the sum at the response's first position
//! and zeros elsewhere, whose masked sum is that number exactly.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use vine_model::Transformer;
use vine_rl::loss::{dpo_positive_loss, DpoConfig, DpoLoss, DpoStats, Normalizer, PairSide};
use vine_rl::{Batch, Episode};

use crate::optim::GradAccumulator;
use crate::sft::target_token_logprobs;

/// The pairs the update trains on.
pub struct PairData {
    /// One episode per response that appears in a pair.
    pub episodes: Vec<Episode>,
    /// `Σ_t log π_ref` of each response (at the sampling temperature).
    pub ref_logp: Vec<f32>,
    /// `(chosen, rejected)` indices into `episodes`.
    pub pairs: Vec<(usize, usize)>,
}

/// The micro-batch of `pairs` as one batch: chosen rows, then rejected rows.
pub fn collate_pairs(data: &PairData, pairs: &[(usize, usize)], dev: &Device) -> Result<Batch> {
    let rows = pairs
        .iter()
        .map(|p| &data.episodes[p.0])
        .chain(pairs.iter().map(|p| &data.episodes[p.1]));
    Ok(Batch::collate(rows, dev)?)
}

/// The DPO+ loss of a collated micro-batch of `pairs` given the policy's `(2m, L−1)` log-probs.
pub fn pair_loss(
    logp: &Tensor,
    batch: &Batch,
    data: &PairData,
    pairs: &[(usize, usize)],
    cfg: &DpoConfig,
    norm: Option<&Normalizer>,
) -> Result<DpoLoss> {
    let m = pairs.len();
    let ids = pairs.iter().map(|p| p.0).chain(pairs.iter().map(|p| p.1));
    let sums: Vec<Vec<f32>> = ids
        .zip(&batch.response_lens)
        .map(|(i, &len)| {
            let mut row = vec![0f32; len];
            row[0] = data.ref_logp[i];
            row
        })
        .collect();
    let reference = batch.align(&sums)?; // (2m, L−1)
    let mask = &batch.response_mask;
    let side = |start: usize| -> Result<(Tensor, Tensor, Tensor)> {
        Ok((
            logp.narrow(0, start, m)?,
            reference.narrow(0, start, m)?,
            mask.narrow(0, start, m)?,
        ))
    };
    let (cl, cr, cm) = side(0)?;
    let (rl, rr, rm) = side(m)?;
    let chosen = PairSide {
        logp: &cl,
        ref_logp: &cr,
        mask: &cm,
    };
    let rejected = PairSide {
        logp: &rl,
        ref_logp: &rr,
        mask: &rm,
    };
    Ok(dpo_positive_loss(&chosen, &rejected, cfg, norm)?)
}

/// Running sums of the loss statistics, weighted by pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    /// Pairs seen.
    pub pairs: f64,
    /// Σ pairs × loss.
    pub loss: f64,
    /// Σ pairs × reward accuracy.
    pub reward_accuracy: f64,
    /// Σ pairs × margin.
    pub margin: f64,
    /// Σ pairs × chosen reward.
    pub chosen_reward: f64,
    /// Σ pairs × rejected reward.
    pub rejected_reward: f64,
    /// Σ pairs × positive penalty.
    pub positive_penalty: f64,
    /// Σ pairs × policy accuracy.
    pub policy_accuracy: f64,
    /// Response tokens processed.
    pub tokens: usize,
}

impl StepStats {
    fn add(&mut self, s: &DpoStats, pairs: usize) {
        let w = pairs as f64;
        self.pairs += w;
        self.loss += w * f64::from(s.loss);
        self.reward_accuracy += w * f64::from(s.reward_accuracy);
        self.margin += w * f64::from(s.reward_margin);
        self.chosen_reward += w * f64::from(s.chosen_reward);
        self.rejected_reward += w * f64::from(s.rejected_reward);
        self.positive_penalty += w * f64::from(s.positive_penalty);
        self.policy_accuracy += w * f64::from(s.policy_accuracy);
    }

    /// Adds another window's sums.
    pub fn merge(&mut self, o: &StepStats) {
        self.pairs += o.pairs;
        self.loss += o.loss;
        self.reward_accuracy += o.reward_accuracy;
        self.margin += o.margin;
        self.chosen_reward += o.chosen_reward;
        self.rejected_reward += o.rejected_reward;
        self.positive_penalty += o.positive_penalty;
        self.policy_accuracy += o.policy_accuracy;
        self.tokens += o.tokens;
    }
}

/// Gradients of the DPO+ loss over the batch `pairs`, in micro-batches of `micro` pairs sorted
/// by length; returns them with the batch's statistics (per-pair means, as sums × pairs).
pub fn dpo_step(
    policy: &Transformer,
    data: &PairData,
    pairs: &[(usize, usize)],
    micro: usize,
    temperature: f64,
    cfg: &DpoConfig,
) -> Result<(GradAccumulator, StepStats)> {
    let mut sorted = pairs.to_vec();
    sorted.sort_by_key(|&(c, r)| (data.episodes[c].len().max(data.episodes[r].len()), c, r));
    let norm = Normalizer {
        tokens: 0.0,
        sequences: pairs.len() as f64,
    };
    let vars = policy.vars();
    let mut grads = GradAccumulator::default();
    let mut stats = StepStats::default();
    for part in sorted.chunks(micro.max(1)) {
        let batch = collate_pairs(data, part, policy.device())?;
        let logp = target_token_logprobs(policy, &batch, temperature)?; // (2m, L−1)
        let loss = pair_loss(&logp, &batch, data, part, cfg, Some(&norm))?;
        grads.add(&vars, &loss.loss.backward()?, 1.0)?;
        // The statistics are per-micro-batch means; the normalised loss is not.
        let mut s = loss.stats;
        s.loss *= pairs.len() as f32 / part.len() as f32;
        stats.add(&s, part.len());
        stats.tokens += batch.n_tokens();
    }
    Ok((grads, stats))
}

/// Per-response summed log-probs under `model` (the frozen reference), in chunks of `chunk`.
pub fn sequence_logprobs(
    model: &Transformer,
    episodes: &[Episode],
    chunk: usize,
    temperature: f64,
) -> Result<Vec<f32>> {
    let rows = crate::train::update::response_logprobs(model, episodes, chunk, temperature)
        .context("reference log-probs of the pair responses")?;
    Ok(rows.iter().map(|r| r.iter().sum::<f32>()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpo::pairs::build_pairs;
    use crate::sampled::Graded;

    fn ep(response: &[u32]) -> Episode {
        Episode::new(0, vec![1, 2], response.to_vec(), true, 0.0, vec![0]).unwrap()
    }

    /// Pair construction feeds the loss the right sides. One problem, three responses:
    /// r0 ✓ (2 tokens + EOS), r1 ✗ (1 token + EOS), r2 ✓ (1 token + EOS) → pairs (0, 1), (2, 1).
    /// Policy per-token log-probs and reference sums:
    ///
    /// ```text
    /// r0: logπ = −0.5 −0.25 −0.25 = −1.0    logπ_ref = −1.5
    /// r1: logπ = −0.75 −0.25      = −1.0    logπ_ref = −0.5
    /// r2: logπ = −1.0  −1.0       = −2.0    logπ_ref = −1.0
    /// pair (r0, r1): z = (−1 − −1) − (−1.5 − −0.5) − 50·max(0, −1.5 − −1)   = 1
    /// pair (r2, r1): z = (−2 − −1) − (−1   − −0.5) − 50·max(0, −1 − −2)     = −50.5
    /// β = 0.1: L = mean(−log σ(0.1), −log σ(−5.05))
    /// ```
    /// ```python
    /// import math; nls = lambda x: math.log1p(math.exp(-x))
    /// print((nls(0.1) + nls(-5.05)) / 2)   # 2.8503927705...
    /// ```
    /// Tolerance 1e-5 (f32).
    #[test]
    fn pairs_feed_the_dpo_positive_loss() {
        let graded: Vec<Graded> = [(true, 2), (false, 1), (true, 1)]
            .iter()
            .map(|&(correct, n)| Graded {
                problem: 0,
                tokens: vec![7; n],
                finished: true,
                correct,
            })
            .collect();
        let (pairs, _) = build_pairs(&graded, 3, None, 0);
        assert_eq!(pairs, vec![(0, 1), (2, 1)]);
        let data = PairData {
            episodes: vec![ep(&[7, 7, 0]), ep(&[7, 0]), ep(&[7, 0])],
            ref_logp: vec![-1.5, -0.5, -1.0],
            pairs: pairs.clone(),
        };
        let batch = collate_pairs(&data, &pairs, &Device::Cpu).unwrap();
        // Rows: r0, r2 (chosen), r1, r1 (rejected); prompt length 2 → responses start at column 1.
        let per_token: Vec<Vec<f32>> = vec![
            vec![-0.5, -0.25, -0.25],
            vec![-1.0, -1.0],
            vec![-0.75, -0.25],
            vec![-0.75, -0.25],
        ];
        let logp = batch.align(&per_token).unwrap();
        let cfg = DpoConfig {
            beta: 0.1,
            lambda: 50.0,
            label_smoothing: 0.0,
        };
        let loss = pair_loss(&logp, &batch, &data, &pairs, &cfg, None).unwrap();
        let got = loss.loss.to_scalar::<f32>().unwrap();
        assert!((got - 2.850_392_8).abs() < 1e-5, "{got}");
        // Implicit rewards β·(logπ − logπ_ref): chosen 0.05 and −0.1, rejected −0.05 twice.
        assert!((loss.stats.reward_accuracy - 0.5).abs() < 1e-6);
        assert!((loss.stats.positive_penalty - 0.5).abs() < 1e-6);
    }
}
