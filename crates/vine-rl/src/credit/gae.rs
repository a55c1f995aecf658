//! Generalised advantage estimation over response tokens, for PPO with a critic (spec 2.1).
//!
//! For a response of `T` tokens (EOS included), with `V_t` the critic's value of the state
//! before token `t` (the prompt plus `response[..t]`) and `V_T = 0` after the last token:
//!
//! ```text
//! r_t    = −β·(logπ_old(t) − logπ_ref(t))  [only with KL-in-reward]   + score·[t = T−1]
//! δ_t    = r_t + γ·V_{t+1} − V_t
//! A_t    = δ_t + γλ·A_{t+1},   A_T = 0
//! R_t    = A_t + V_t          (the value target)
//! ```
//!
//! With γ = λ = 1 (the paper's setting) and no KL shaping, `A_t = score − V_t` and `R_t = score`.
//! The per-token KL shaping uses k1 between the *old* policy and the reference, as the
//! reference's `_compute_rewards` does when the KL is not in the loss; the paper's runs keep the
//! KL in the loss instead (spec 1.7), so the trainer passes `None` there.
//!
//! Deviation: the reference runs the recursion over the whole padded row with masked values set
//! to 0; restricting it to the response tokens is the same computation (the positions after the
//! last token contribute 0 and the recursion runs backwards, so prompt positions never feed
//! into response positions).
//!
//! The clipped value loss lives in [`crate::loss::value_loss`].

use crate::credit::GaeParams;
use crate::episode::Episode;
use crate::error::{check_len, Result};

/// Per-token KL shaping of the rewards: `r_t −= coef · (logp_t − ref_logp_t)`.
#[derive(Debug, Clone, Copy)]
pub struct KlShaping<'a> {
    /// Log-probs of the response tokens under the policy that sampled them, one per token.
    pub logp: &'a [f32],
    /// Log-probs of the response tokens under the reference model, one per token.
    pub ref_logp: &'a [f32],
    /// β, the KL coefficient.
    pub coef: f32,
}

/// Token-level rewards of one episode: its score on the last response token, plus the KL
/// shaping if given. Returns `response().len()` entries.
pub fn token_rewards(episode: &Episode, kl: Option<&KlShaping<'_>>) -> Result<Vec<f32>> {
    let t = episode.response().len();
    let mut rewards = vec![0.0f32; t];
    if let Some(kl) = kl {
        check_len("reference log-probs", kl.ref_logp.len(), t)?;
        check_len("log-probs", kl.logp.len(), t)?;
        for (r, (lp, rp)) in rewards.iter_mut().zip(kl.logp.iter().zip(kl.ref_logp)) {
            *r = -kl.coef * (lp - rp);
        }
    }
    rewards[t - 1] += episode.reward();
    Ok(rewards)
}

/// Advantages and value targets of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct GaeOutput {
    /// `A_t`, one per response token.
    pub advantages: Vec<f32>,
    /// `R_t = A_t + V_t`, one per response token.
    pub returns: Vec<f32>,
}

/// GAE over one response: `rewards` and `values` hold one entry per response token (see the
/// module docs for the alignment of `values`).
pub fn gae(rewards: &[f32], values: &[f32], gamma: f32, lambda: f32) -> Result<GaeOutput> {
    check_len("values", values.len(), rewards.len())?;
    let t = rewards.len();
    let mut advantages = vec![0.0f32; t];
    let mut last = 0.0f32;
    for i in (0..t).rev() {
        let next = if i + 1 < t { values[i + 1] } else { 0.0 };
        let delta = rewards[i] + gamma * next - values[i];
        last = delta + gamma * lambda * last;
        advantages[i] = last;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    Ok(GaeOutput {
        advantages,
        returns,
    })
}

/// KL shaping for a set of episodes: per-episode rows of [`KlShaping`].
#[derive(Debug, Clone, Copy)]
pub struct KlRows<'a> {
    /// Old-policy log-probs of every episode's response tokens.
    pub logp: &'a [Vec<f32>],
    /// Reference log-probs of every episode's response tokens.
    pub ref_logp: &'a [Vec<f32>],
    /// β, the KL coefficient.
    pub coef: f32,
}

/// GAE for every episode. `values[e]` holds the critic's old values of episode `e`'s response
/// tokens ([`crate::Batch::response_rows`] of the critic's `(B, L−1)` output); `kl` turns on
/// KL-in-reward.
pub fn gae_episodes(
    episodes: &[Episode],
    values: &[Vec<f32>],
    params: &GaeParams,
    kl: Option<&KlRows<'_>>,
) -> Result<Vec<GaeOutput>> {
    check_len("critic value rows", values.len(), episodes.len())?;
    if let Some(kl) = kl {
        check_len("log-prob rows", kl.logp.len(), episodes.len())?;
        check_len("reference log-prob rows", kl.ref_logp.len(), episodes.len())?;
    }
    episodes
        .iter()
        .enumerate()
        .map(|(e, ep)| {
            let shaping = kl.map(|kl| KlShaping {
                logp: &kl.logp[e],
                ref_logp: &kl.ref_logp[e],
                coef: kl.coef,
            });
            let rewards = token_rewards(ep, shaping.as_ref()).map_err(|err| err.at_episode(e))?;
            gae(&rewards, &values[e], params.gamma, params.lambda).map_err(|err| err.at_episode(e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_lambda_one_is_score_minus_value() {
        let ep = Episode::new(0, vec![1], vec![5, 6, 7, 2], true, 1.0, vec![0]).unwrap();
        let rewards = token_rewards(&ep, None).unwrap();
        assert_eq!(rewards, vec![0.0, 0.0, 0.0, 1.0]);
        let values = [0.2, 0.4, 0.9, 0.5];
        let out = gae(&rewards, &values, 1.0, 1.0).unwrap();
        for (a, v) in out.advantages.iter().zip(values) {
            assert!((a - (1.0 - v)).abs() < 1e-6);
        }
        assert!(out.returns.iter().all(|r| (r - 1.0).abs() < 1e-6));
    }
}
