//! Credit assignment: which advantage every response token gets.
//!
//! Four methods, one [`Credit`] enum (the trainer `match`es on it):
//!
//! | arm | baseline for token `t` | module | spec |
//! | --- | --- | --- | --- |
//! | [`Credit::Vine`] | MC value of the state where `t`'s step starts | [`vine`] | 1.3–1.5 |
//! | [`Credit::Gae`] | learned critic, GAE(γ, λ) over tokens | [`gae`] | 2.1 |
//! | [`Credit::Grpo`] | group mean, divided by the group std | [`group`] | 2.4 |
//! | [`Credit::Rloo`] | mean of the other samples of the prompt | [`group`] | 2.4 |
//!
//! Every method yields one `Vec<f32>` per episode with one entry per response token (EOS
//! included), ready for [`crate::Batch::align`]. Whitening is applied later, per minibatch
//! ([`crate::stats::normalize`]).
//!
//! The enum is deserialised from the trainer's TOML with an internal `kind` tag, e.g.
//!
//! ```toml
//! [credit]
//! kind = "vine"
//! mc_rollouts = 9
//! max_value_steps = 25
//! ```
//!
//! Missing fields take the reference values ([`VineParams::default`], ...); unknown keys are
//! errors.

pub mod gae;
pub mod group;
pub mod vine;

use serde::{Deserialize, Serialize};

/// The credit-assignment method and its parameters. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Credit {
    /// VinePPO: Monte-Carlo values at reasoning-step boundaries.
    Vine(VineParams),
    /// PPO with a critic and generalised advantage estimation.
    Gae(GaeParams),
    /// GRPO: reward standardised within the samples of a prompt.
    Grpo(GrpoParams),
    /// RLOO: reward minus the mean reward of the other samples of the prompt. (An empty
    /// struct variant rather than a unit one, so that stray keys such as `eps` are rejected.)
    Rloo {},
}

/// Parameters of [`Credit::Vine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VineParams {
    /// K, the rollouts per value state (reference: 9).
    pub mc_rollouts: usize,
    /// Only states `V[1..=cap]` are rolled out; later ones are filled with the trajectory's
    /// return (reference: 25 on GSM8K, none on MATH).
    pub max_value_steps: Option<usize>,
}

impl Default for VineParams {
    fn default() -> Self {
        Self {
            mc_rollouts: 9,
            max_value_steps: None,
        }
    }
}

/// Parameters of [`Credit::Gae`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaeParams {
    /// Discount γ (reference: 1).
    pub gamma: f32,
    /// GAE λ (reference: 1, `configs/trainers/lam1.jsonnet`).
    pub lambda: f32,
    /// Clip range of the value loss around the old values (reference: 0.2).
    pub value_clip: f32,
}

impl Default for GaeParams {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            lambda: 1.0,
            value_clip: 0.2,
        }
    }
}

/// Parameters of [`Credit::Grpo`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoParams {
    /// Added to the group std before dividing (verl's default, 1e-6).
    pub eps: f32,
}

impl Default for GrpoParams {
    fn default() -> Self {
        Self { eps: 1e-6 }
    }
}

impl Credit {
    /// The lowercase name used as `kind` in configs and in metric names.
    pub fn name(&self) -> &'static str {
        match self {
            Credit::Vine(_) => "vine",
            Credit::Gae(_) => "gae",
            Credit::Grpo(_) => "grpo",
            Credit::Rloo {} => "rloo",
        }
    }

    /// Whether the method trains a critic (only GAE does).
    pub fn needs_critic(&self) -> bool {
        matches!(self, Credit::Gae(_))
    }

    /// Checks the parameters against the sampling setup. Returns one message per problem,
    /// naming the config key and the fix; empty when the configuration is usable.
    pub fn validate(&self, samples_per_prompt: usize) -> Vec<String> {
        let mut errs = Vec::new();
        match self {
            Credit::Vine(p) => {
                if p.mc_rollouts == 0 {
                    errs.push(
                        "credit.mc_rollouts = 0: VinePPO needs at least 1 rollout per state \
                         (the reference uses 9)"
                            .to_string(),
                    );
                }
            }
            Credit::Gae(p) => {
                if !(0.0..=1.0).contains(&p.gamma) {
                    errs.push(format!("credit.gamma = {}: set it within [0, 1]", p.gamma));
                }
                if !(0.0..=1.0).contains(&p.lambda) {
                    errs.push(format!(
                        "credit.lambda = {}: set it within [0, 1]",
                        p.lambda
                    ));
                }
                if !(p.value_clip.is_finite() && p.value_clip > 0.0) {
                    errs.push(format!(
                        "credit.value_clip = {}: set a positive clip range (reference 0.2)",
                        p.value_clip
                    ));
                }
            }
            Credit::Grpo(p) => {
                if !(p.eps.is_finite() && p.eps > 0.0) {
                    errs.push(format!(
                        "credit.eps = {}: set a small positive value such as 1e-6, or groups \
                         whose rewards are all equal divide 0 by 0",
                        p.eps
                    ));
                }
                errs.extend(group_size_error("grpo", samples_per_prompt));
            }
            Credit::Rloo {} => errs.extend(group_size_error("rloo", samples_per_prompt)),
        }
        errs
    }
}

fn group_size_error(kind: &str, samples_per_prompt: usize) -> Option<String> {
    (samples_per_prompt < 2).then(|| {
        format!(
            "credit.kind = \"{kind}\" with {samples_per_prompt} sample(s) per prompt: the group \
             baseline needs at least 2; raise the samples per prompt (the paper uses 8)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Credit, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn deserialises_every_arm_with_defaults() {
        assert_eq!(
            parse(r#"{"kind":"vine","max_value_steps":25}"#).unwrap(),
            Credit::Vine(VineParams {
                mc_rollouts: 9,
                max_value_steps: Some(25)
            })
        );
        assert_eq!(
            parse(r#"{"kind":"gae","lambda":0.95}"#).unwrap(),
            Credit::Gae(GaeParams {
                lambda: 0.95,
                ..GaeParams::default()
            })
        );
        assert_eq!(
            parse(r#"{"kind":"grpo"}"#).unwrap(),
            Credit::Grpo(GrpoParams::default())
        );
        assert_eq!(parse(r#"{"kind":"rloo"}"#).unwrap(), Credit::Rloo {});
    }

    #[test]
    fn rejects_unknown_keys_and_kinds() {
        assert!(parse(r#"{"kind":"vine","mc_rollout":9}"#).is_err());
        assert!(parse(r#"{"kind":"gae","eps":0.1}"#).is_err());
        assert!(parse(r#"{"kind":"rloo","eps":0.1}"#).is_err());
        assert!(parse(r#"{"kind":"reinforce"}"#).is_err());
    }

    /// The trainer's TOML embeds the enum as a `[credit]` table next to other settings.
    #[test]
    fn embeds_in_a_toml_config() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            credit: Credit,
            advantage_norm: crate::AdvantageNorm,
        }
        let text = "advantage_norm = \"whiten_keep_mean\"\n\
                    [credit]\nkind = \"vine\"\nmc_rollouts = 3\nmax_value_steps = 25\n";
        let cfg: Config = toml::from_str(text).unwrap();
        assert_eq!(
            cfg.credit,
            Credit::Vine(VineParams {
                mc_rollouts: 3,
                max_value_steps: Some(25)
            })
        );
        assert_eq!(cfg.advantage_norm, crate::AdvantageNorm::WhitenKeepMean);
        let typo = "advantage_norm = \"off\"\n[credit]\nkind = \"gae\"\nlamda = 0.9\n";
        let err = toml::from_str::<Config>(typo).unwrap_err().to_string();
        assert!(err.contains("lamda"), "{err}");
    }

    #[test]
    fn validate_names_the_key_and_the_fix() {
        let vine = Credit::Vine(VineParams {
            mc_rollouts: 0,
            max_value_steps: None,
        });
        let errs = vine.validate(8);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("credit.mc_rollouts"), "{errs:?}");

        let gae = Credit::Gae(GaeParams {
            lambda: 1.5,
            ..GaeParams::default()
        });
        assert!(gae.validate(1)[0].contains("credit.lambda"));

        assert!(Credit::Rloo {}.validate(1)[0].contains("at least 2"));
        assert_eq!(Credit::Grpo(GrpoParams::default()).validate(1).len(), 1);
        assert!(Credit::Grpo(GrpoParams::default()).validate(8).is_empty());
        assert!(Credit::Vine(VineParams::default()).validate(1).is_empty());
    }
}
