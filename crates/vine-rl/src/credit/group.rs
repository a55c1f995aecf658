//! Group baselines: GRPO and RLOO (spec 2.4), one advantage per episode broadcast to its tokens.
//!
//! Over the `G` samples of one prompt (episodes sharing [`Episode::group`]) with rewards `r_j`:
//!
//! ```text
//! GRPO:  A_i = (r_i − mean_j r_j) / (std_j r_j + eps),  std with Bessel's correction (÷ G−1)
//! RLOO:  A_i = r_i − mean_{j≠i} r_j  =  G/(G−1) · (r_i − mean_j r_j)
//! ```
//!
//! Every response token (EOS included) takes its episode's `A_i`: both methods treat all
//! states of a trajectory alike, which is the contrast the VinePPO paper draws.
//!
//! Choices, since the reference repository has neither method:
//! - GRPO uses the **sample** standard deviation (`torch.std`'s default), as the two common
//!   implementations do (TRL's `GRPOTrainer`, verl's `compute_grpo_outcome_advantage`); with
//!   0/1 rewards and G = 8 it is `sqrt(8/7)` times the population std.
//! - A group of one sample has no baseline; its advantage is 0 (it then contributes only
//!   through the KL term) rather than the raw reward. [`crate::Credit::validate`] rejects
//!   configurations with one sample per prompt, so this only happens to prompts whose other
//!   samples were dropped.
//! - A group whose rewards are all equal gets 0 for GRPO (`0 / (0 + eps)`) and RLOO alike.

use std::collections::BTreeMap;

use crate::credit::GrpoParams;
use crate::episode::Episode;

/// Indices of the episodes of every group, groups in increasing id order.
fn groups(episodes: &[Episode]) -> BTreeMap<usize, Vec<usize>> {
    let mut map: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, e) in episodes.iter().enumerate() {
        map.entry(e.group()).or_default().push(i);
    }
    map
}

/// Applies `f(rewards of the group) -> advantages` to every group.
fn per_group(episodes: &[Episode], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f32> {
    let mut out = vec![0.0f32; episodes.len()];
    for members in groups(episodes).values() {
        let rewards: Vec<f64> = members
            .iter()
            .map(|&i| f64::from(episodes[i].reward()))
            .collect();
        for (&i, a) in members.iter().zip(f(&rewards)) {
            out[i] = a as f32;
        }
    }
    out
}

/// GRPO advantage of every episode (one scalar each). See the module docs.
pub fn grpo(episodes: &[Episode], params: &GrpoParams) -> Vec<f32> {
    let eps = f64::from(params.eps);
    per_group(episodes, |r| {
        let g = r.len();
        if g < 2 {
            return vec![0.0; g];
        }
        let mean = r.iter().sum::<f64>() / g as f64;
        let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (g - 1) as f64;
        let denom = var.sqrt() + eps;
        r.iter().map(|x| (x - mean) / denom).collect()
    })
}

/// RLOO advantage of every episode (one scalar each). See the module docs.
pub fn rloo(episodes: &[Episode]) -> Vec<f32> {
    per_group(episodes, |r| {
        let g = r.len();
        if g < 2 {
            return vec![0.0; g];
        }
        let sum: f64 = r.iter().sum();
        r.iter().map(|x| x - (sum - x) / (g - 1) as f64).collect()
    })
}

/// Broadcasts one advantage per episode to all of its response tokens.
pub fn broadcast(episodes: &[Episode], per_episode: &[f32]) -> Vec<Vec<f32>> {
    episodes
        .iter()
        .zip(per_episode)
        .map(|(e, &a)| vec![a; e.response().len()])
        .collect()
}

/// GRPO token advantages: [`grpo`] then [`broadcast`].
pub fn grpo_advantages(episodes: &[Episode], params: &GrpoParams) -> Vec<Vec<f32>> {
    broadcast(episodes, &grpo(episodes, params))
}

/// RLOO token advantages: [`rloo`] then [`broadcast`].
pub fn rloo_advantages(episodes: &[Episode]) -> Vec<Vec<f32>> {
    broadcast(episodes, &rloo(episodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(group: usize, reward: f32) -> Episode {
        Episode::new(group, vec![1], vec![5, 2], true, reward, vec![0]).unwrap()
    }

    #[test]
    fn singletons_and_uniform_groups_get_zero() {
        let eps = vec![ep(0, 1.0), ep(1, 1.0), ep(1, 1.0), ep(2, 0.0), ep(2, 0.0)];
        assert!(grpo(&eps, &GrpoParams::default()).iter().all(|&a| a == 0.0));
        assert!(rloo(&eps).iter().all(|&a| a == 0.0));
    }

    #[test]
    fn interleaved_groups_are_separated() {
        let eps = vec![ep(7, 1.0), ep(3, 0.0), ep(7, 0.0), ep(3, 0.0), ep(3, 1.0)];
        let r = rloo(&eps);
        assert_eq!(r, vec![1.0, -0.5, -1.0, -0.5, 1.0]);
        let t = rloo_advantages(&eps);
        assert_eq!(t[0], vec![1.0, 1.0]);
    }
}
