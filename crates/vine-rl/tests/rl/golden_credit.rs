//! Golden advantages of the four credit-assignment methods.

use vine_rl::credit::gae::{gae_episodes, KlRows};
use vine_rl::credit::group::{grpo, grpo_advantages, rloo};
use vine_rl::credit::vine::{fill_values, step_advantages, token_advantages};
use vine_rl::{GaeParams, GrpoParams};

use crate::common::{assert_close, episode};

/// VinePPO values with a cap, step advantages, and their mapping to tokens with the EOS trick,
/// against the reference's `_compute_step_advantages` / `_compute_token_advantages`.
/// Tolerance 1e-6 (f32 rounding of the same arithmetic).
///
/// ```python
/// # Reference `_compute_step_advantages` / `_compute_token_advantages`
/// # (math_episode_generator_with_mc_advantages.py), with string tokens and character offsets.
/// import numpy as np
/// EOS = "</s>"
/// tokens = ["\n", "We", " have", " 3", ".\n", "So", " 5", "\n", "####", " 5", EOS]
/// steps = ["\nWe have 3.", "\nSo 5", "\n#### 5"]  # "\n" of step 1 sits inside ".\n"
/// response_text = "".join(steps)
/// assert "".join(tokens[:-1]) == response_text
/// step_indices = np.cumsum([0] + [len(s) for s in steps]).tolist()
/// offsets, pos = [], 0
/// for t in tokens[:-1]:
///     offsets.append(pos); pos += len(t)
/// score = 1.0
/// values = [4 / 9, 7 / 9, None, None]  # cap = 1: V[0], V[1] rolled out, V[2] not, V[3] terminal
/// step_rewards = [0.0, 0.0, score]
/// values[-1] = 0.0
/// for i in range(len(values) - 2, -1, -1):
///     if values[i] is not None:
///         break
///     values[i] = step_rewards[i] + values[i + 1]
/// adv = [step_rewards[i] + values[i + 1] - values[i] for i in range(3)]
/// char_adv = np.ones(len(response_text)) * -7777777
/// for i, (s, e) in enumerate(zip(step_indices[:-1], step_indices[1:])):
///     char_adv[s:e] = adv[i]
/// tok_adv = [char_adv[o] for o in offsets] + [None]
/// tok_adv[-1] = tok_adv[-2]  # EOS copies the last text token
/// # token index where each step starts = first token whose start offset lies in the step
/// starts = [min(i for i, o in enumerate(offsets) if s <= o < e)
///           for s, e in zip(step_indices[:-1], step_indices[1:])]
/// # values [0.444.., 0.777.., 1.0, 0.0]; step_adv [0.33333334, 0.22222222, 0.0]
/// # tok_adv [0.33333334] * 5 + [0.22222222] * 2 + [0.0] * 4; starts [0, 5, 7]
/// ```
#[test]
fn vine_step_and_token_advantages_match_the_reference() {
    let resp: Vec<u32> = (10..20).chain([2]).collect();
    let ep = episode(0, &[1, 3, 4], &resp, true, 1.0, &[0, 5, 7]);
    let values = fill_values(&ep, &[4.0 / 9.0, 7.0 / 9.0]).unwrap();
    assert_close(&values, &[4.0 / 9.0, 7.0 / 9.0, 1.0, 0.0], 1e-7);
    let steps = step_advantages(&ep, &values).unwrap();
    assert_close(&steps, &[0.333_333_34, 0.222_222_22, 0.0], 1e-6);
    let tokens = token_advantages(&ep, &steps).unwrap();
    let want: Vec<f32> = [[0.333_333_34; 5].as_slice(), &[0.222_222_22; 2], &[0.0; 4]].concat();
    assert_close(&tokens, &want, 1e-6);
}

/// GAE on a right-padded batch with KL in the reward, γ = 0.9, λ = 0.8, against the reference's
/// `_compute_rewards` + `_compute_advantages`, which run over the whole padded row; the per-
/// episode computation must agree at the response positions. Tolerance 1e-6.
///
/// ```python
/// import torch
/// P, R = [3, 2], [4, 3]                         # prompt / response lengths; L = 7
/// scores = torch.tensor([1.0, 0.0])
/// L = max(p + r for p, r in zip(P, R))
/// attn = torch.zeros(2, L, dtype=torch.long)
/// mask = torch.zeros(2, L - 1)
/// vals = torch.full((2, L), 123.0)             # critic output, garbage off-response
/// old = torch.full((2, L - 1), -9.0); ref = torch.full((2, L - 1), 4.0)
/// resp_values = [[0.2, 0.5, 0.4, 0.9], [0.3, 0.1, 0.6]]
/// resp_old = [[-0.5, -1.0, -0.2, -0.1], [-2.0, -0.3, -0.7]]
/// resp_ref = [[-0.6, -0.8, -0.2, -0.4], [-1.5, -0.3, -1.0]]
/// for b in range(2):
///     attn[b, : P[b] + R[b]] = 1
///     s = P[b] - 1
///     mask[b, s : s + R[b]] = 1
///     vals[b, s : s + R[b]] = torch.tensor(resp_values[b])
///     old[b, s : s + R[b]] = torch.tensor(resp_old[b]); ref[b, s : s + R[b]] = torch.tensor(resp_ref[b])
/// kl_coef, gamma, lam = 0.05, 0.9, 0.8
/// kl = old - ref
/// rewards = -kl_coef * kl
/// last = torch.cumsum(attn, dim=1)[:, -1] - 1 - 1
/// rewards[torch.arange(2), last] += scores
/// valid_values = vals[:, :-1] * mask
/// rewards = rewards * mask
/// lastgaelam, rev = 0, []
/// T = rewards.shape[-1]
/// for t in reversed(range(T)):
///     nv = valid_values[:, t + 1] if t < T - 1 else 0.0
///     delta = rewards[:, t] + gamma * nv - valid_values[:, t]
///     lastgaelam = delta + gamma * lam * lastgaelam
///     rev.append(lastgaelam)
/// adv = torch.stack(rev[::-1]).transpose(0, 1)
/// ret = adv + valid_values
/// for b in range(2):
///     s = P[b] - 1
///     print(adv[b, s : s + R[b]].tolist(), ret[b, s : s + R[b]].tolist())
/// ```
#[test]
fn gae_matches_the_reference_padded_recursion() {
    let episodes = [
        episode(0, &[1, 5, 6], &[10, 11, 12, 2], true, 1.0, &[0]),
        episode(1, &[1, 7], &[13, 14, 15], false, 0.0, &[0]),
    ];
    let values = vec![vec![0.2, 0.5, 0.4, 0.9], vec![0.3, 0.1, 0.6]];
    let logp = vec![vec![-0.5, -1.0, -0.2, -0.1], vec![-2.0, -0.3, -0.7]];
    let ref_logp = vec![vec![-0.6, -0.8, -0.2, -0.4], vec![-1.5, -0.3, -1.0]];
    let params = GaeParams {
        gamma: 0.9,
        lambda: 0.8,
        value_clip: 0.2,
    };
    let kl = KlRows {
        logp: &logp,
        ref_logp: &ref_logp,
        coef: 0.05,
    };
    let out = gae_episodes(&episodes, &values, &params, Some(&kl)).unwrap();
    assert_close(
        &out[0].advantages,
        &[0.395_670_06, 0.209_263_95, 0.471_199_96, 0.085_000_04],
        1e-6,
    );
    assert_close(
        &out[0].returns,
        &[0.595_670_04, 0.709_263_9, 0.871_199_97, 0.985_000_0],
        1e-6,
    );
    assert_close(
        &out[1].advantages,
        &[-0.187_016_01, -0.002_799_988, -0.615],
        1e-6,
    );
    assert_close(
        &out[1].returns,
        &[0.112_984, 0.097_200_01, -0.014_999_986],
        1e-6,
    );
}

/// GRPO (sample std, eps 1e-6) and RLOO over interleaved groups. Tolerance 1e-6.
///
/// ```python
/// import numpy as np
/// groups  = [0, 1, 0, 0, 1, 2, 1, 0, 2]
/// rewards = np.array([1, 0, 0, 1, 1, 1, 1, 1, 1], dtype=np.float64)
/// grpo = np.zeros_like(rewards); rloo = np.zeros_like(rewards)
/// for g in set(groups):
///     idx = [i for i, x in enumerate(groups) if x == g]
///     r = rewards[idx]
///     grpo[idx] = (r - r.mean()) / (r.std(ddof=1) + 1e-6)
///     rloo[idx] = [r[i] - np.delete(r, i).mean() for i in range(len(r))]
/// print(np.float32(grpo).tolist(), np.float32(rloo).tolist())
/// ```
#[test]
fn grpo_and_rloo_match_numpy() {
    let groups = [0, 1, 0, 0, 1, 2, 1, 0, 2];
    let rewards = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let episodes: Vec<_> = groups
        .iter()
        .zip(rewards)
        .map(|(&g, r)| episode(g, &[1], &[9, 2], true, r, &[0]))
        .collect();
    let g = grpo(&episodes, &GrpoParams { eps: 1e-6 });
    let want_g = [
        0.499_998_99,
        -1.154_698_5,
        -1.499_997,
        0.499_998_99,
        0.577_349_25,
        0.0,
        0.577_349_25,
        0.499_998_99,
        0.0,
    ];
    assert_close(&g, &want_g, 1e-6);
    let r = rloo(&episodes);
    let want_r = [
        1.0 / 3.0,
        -1.0,
        -1.0,
        1.0 / 3.0,
        0.5,
        0.0,
        0.5,
        1.0 / 3.0,
        0.0,
    ];
    assert_close(&r, &want_r, 1e-6);
    let tokens = grpo_advantages(&episodes, &GrpoParams { eps: 1e-6 });
    assert_eq!(tokens[2], vec![g[2]; 2]);
}
