//! The algorithm math of VinePPO and its baselines, on plain episodes: no model, no engine.
//!
//! # Brief overview
//!
//! - [`Episode`]: prompt ids, response ids (EOS iff finished), reward, reasoning-step starts.
//! - [`Credit`]: the credit-assignment method, deserialised from the trainer's config:
//!   - [`credit::vine`]: VinePPO. [`credit::vine::estimate_values`] lists the value states of
//!     all episodes, deduplicates identical prefixes, asks an [`McRollouts`] implementation
//!     (the trainer's engine + grader) for K graded continuations of each, and averages them;
//!     [`credit::vine::advantages`] turns the values into per-token advantages.
//!   - [`credit::gae`]: PPO's token-level GAE from critic values.
//!   - [`credit::group`]: GRPO and RLOO group baselines.
//! - [`stats`]: whitening ([`stats::normalize`] per minibatch), masked statistics, summaries.
//! - [`Batch`]: right-padded `(B, L)` ids, shifted targets, response mask, and
//!   [`Batch::align`] to lay per-token values next to the log-probs; [`batch::minibatches`].
//! - [`loss`]: PPO clipped surrogate, k3 KL penalty, clipped value loss, SFT, DPO+, entropy,
//!   all on `(B, T)` log-prob tensors.
//!
//! Formulas, spec sections and deviations from the reference implementation are documented at
//! the top of each module.
//!
//! # Example: VinePPO advantages for two samples of one prompt
//!
//! ```
//! use vine_rl::credit::vine::{advantages, estimate_values, McRollouts, RolloutOutcome};
//! use vine_rl::{Episode, RlError, VineParams};
//!
//! /// A policy that solves the problem from any state with probability 1/2, exactly.
//! struct Coin;
//! impl McRollouts for Coin {
//!     type Error = RlError;
//!     fn rollout(&mut self, prefixes: &[Vec<u32>], k: usize)
//!         -> Result<Vec<Vec<RolloutOutcome>>, RlError> {
//!         let outcome = |j: usize| RolloutOutcome { reward: (j % 2) as f32, truncated: false };
//!         Ok(prefixes.iter().map(|_| (0..k).map(outcome).collect()).collect())
//!     }
//! }
//!
//! const BOS: u32 = 1;
//! const EOS: u32 = 2;
//! // Two steps ([10, 11] and [12]) and EOS; correct.
//! let a = Episode::new(0, vec![BOS, 5], vec![10, 11, 12, EOS], true, 1.0, vec![0, 2])?;
//! // One step, cut off by the length limit: no EOS, reward 0.
//! let b = Episode::new(0, vec![BOS, 5], vec![20, 21], false, 0.0, vec![0])?;
//! let episodes = [a, b];
//!
//! let params = VineParams { mc_rollouts: 4, max_value_steps: None };
//! let values = estimate_values(&episodes, &params, &mut Coin)?;
//! assert_eq!(values.stats.queries, 3); // V[0] of both, V[1] of the first
//! assert_eq!(values.stats.unique, 2); // the prompt state is shared
//! assert_eq!(values.values[0], vec![0.5, 0.5, 0.0]);
//!
//! let adv = advantages(&episodes, &values.values)?;
//! // Step 0 gains nothing (0.5 → 0.5); step 1 and the EOS earn 1 − 0.5.
//! assert_eq!(adv[0], vec![0.0, 0.0, 0.5, 0.5]);
//! assert_eq!(adv[1], vec![-0.5, -0.5]);
//! # Ok::<(), RlError>(())
//! ```

pub mod batch;
pub mod credit;
pub mod episode;
pub mod error;
pub mod loss;
pub mod stats;

pub use batch::Batch;
pub use credit::vine::{McRollouts, RolloutOutcome};
pub use credit::{Credit, GaeParams, GrpoParams, VineParams};
pub use episode::Episode;
pub use error::RlError;
pub use stats::AdvantageNorm;
