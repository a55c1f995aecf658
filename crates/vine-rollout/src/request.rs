//! What the engine is asked for and what it returns.
//!
//! A [`Request`] is a token prefix to continue `n` times; [`SamplingParams`] say how to sample
//! and when to stop; every continuation comes back as a [`Sample`] with its tokens, their
//! log-probabilities and why it ended ([`FinishReason`]).
//!
//! Stopping follows vLLM, which the reference implementation used (spec §1.3, §1.6, §1.8):
//! a stop token or stop string ends a sample as [`FinishReason::Stop`] and is *not* part of
//! [`Sample::tokens`]; running out of `max_new_tokens` or of the context window ends it as
//! [`FinishReason::Length`]. A stop token counts towards both budgets (vLLM does the same), so
//! `prefix + tokens + [EOS]` always fits in `max_context`.

use crate::error::{Error, Result};

/// How to sample and when to stop. One set applies to a whole [`crate::Engine::generate`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax). VinePPO samples at 0.6 (spec §1.8).
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`; `1` turns it off. Applied after `top_k`, on the renormalised top-k distribution.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `0` turns it off.
    pub top_k: usize,
    /// Most tokens generated per sample, stop token included. [`Request::max_new_tokens`]
    /// overrides it per request.
    pub max_new_tokens: usize,
    /// Cap on prefix + generated tokens (stop token included), e.g. the model's context length.
    pub max_context: usize,
    /// Tokens that end a sample, typically the tokenizer's EOS.
    pub stop_token_ids: Vec<u32>,
    /// Ignore `stop_token_ids` (stop strings still apply): samples then run until a length
    /// limit, which is what throughput benchmarks want.
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    /// The reference trainer's rollout settings (spec §1.8) without stop tokens, which depend on
    /// the tokenizer: T = 0.6, top-p 0.9, 1024 new tokens, 2047 tokens of context.
    fn default() -> Self {
        Self {
            temperature: 0.6,
            top_p: 0.9,
            top_k: 0,
            max_new_tokens: 1024,
            max_context: 2047,
            stop_token_ids: Vec::new(),
            ignore_eos: false,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding with the given budget and no stop tokens.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens,
            max_context: usize::MAX,
            stop_token_ids: Vec::new(),
            ignore_eos: false,
        }
    }

    /// True when sampling is the argmax of the logits.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the ranges, with messages naming the field and its valid values.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::InvalidParams(format!("`{field}` {why}")));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(
                "temperature",
                format!(
                    "must be finite and >= 0 (0 = greedy), got {}",
                    self.temperature
                ),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(
                "top_p",
                format!("must be in (0, 1] (1 = off), got {}", self.top_p),
            );
        }
        if self.max_context == 0 {
            return bad("max_context", "must be at least 1".to_string());
        }
        Ok(())
    }

    /// Whether token `id` ends a sample.
    pub(crate) fn is_stop_token(&self, id: u32) -> bool {
        !self.ignore_eos && self.stop_token_ids.contains(&id)
    }
}

/// Continue `prefix` `n` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Token ids to continue, BOS included if the model wants one. Must not be empty.
    pub prefix: Vec<u32>,
    /// Number of independent samples.
    pub n: usize,
    /// Randomness of sample `j` comes from `(seed, j)` only. Two requests with the same seed and
    /// the same prefix therefore return the same samples: give every request its own seed.
    pub seed: u64,
    /// Overrides [`SamplingParams::max_new_tokens`] for this request.
    pub max_new_tokens: Option<usize>,
}

impl Request {
    /// `n` samples continuing `prefix`, seeded by `seed`.
    pub fn new(prefix: Vec<u32>, n: usize, seed: u64) -> Self {
        Self {
            prefix,
            n,
            seed,
            max_new_tokens: None,
        }
    }

    /// Tokens this request may generate per sample: the smaller of its `max_new_tokens` and
    /// what is left of the context window after the prefix.
    pub fn budget(&self, params: &SamplingParams) -> usize {
        let new = self.max_new_tokens.unwrap_or(params.max_new_tokens);
        new.min(params.max_context.saturating_sub(self.prefix.len()))
    }
}

/// Which stop condition ended a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopKind {
    /// One of [`SamplingParams::stop_token_ids`] was sampled (and dropped from the tokens).
    Token(u32),
    /// Stop string number `index` (as numbered by the [`StopStrings`] implementation) appeared.
    String(usize),
}

/// Why a sample ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The model finished: a stop token or stop string.
    Stop(StopKind),
    /// A length limit: `max_new_tokens` or the context cap. The response is unfinished.
    Length,
}

impl FinishReason {
    /// True for [`FinishReason::Stop`].
    pub fn is_stop(&self) -> bool {
        matches!(self, FinishReason::Stop(_))
    }
}

/// One continuation of a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Generated token ids, without the stop token or the tokens of a stop string.
    pub tokens: Vec<u32>,
    /// `logprobs[i] = log softmax(logits / T)[tokens[i]]` under the sampling temperature `T`
    /// (`T = 1` when greedy), ignoring top-k/top-p truncation as the reference trainer does
    /// (spec §1.7).
    pub logprobs: Vec<f32>,
    /// Why the sample ended.
    pub finish: FinishReason,
}

/// Where a stop string was found, as reported by [`StopStrings::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopHit {
    /// Which stop string (reported back in [`StopKind::String`]).
    pub index: usize,
    /// How many generated tokens to keep: those before the stop string.
    pub keep: usize,
}

/// Stop strings, checked on token ids by a caller that owns a tokenizer; the engine itself never
/// decodes text.
///
/// [`StopStrings::check`] is called after every generated token with all tokens generated so far
/// for that sample (never the prefix), so a stop string can only have been completed by the last
/// token: an implementation needs to decode only a short tail. Tokens are kept up to the token
/// in which the stop string starts (exclusive); a token that straddles the start of the stop
/// string is dropped with it.
pub trait StopStrings {
    /// A stop string ending in the last token of `generated`, if any.
    fn check(&self, generated: &[u32]) -> Option<StopHit>;
}

/// Stop sequences given directly as token ids: `sequences[i]` ends a sample when the generated
/// tokens end with it. Useful when the stop string always tokenizes the same way, and in tests.
#[derive(Debug, Clone, Default)]
pub struct StopSequences {
    /// The token sequences, numbered by position.
    pub sequences: Vec<Vec<u32>>,
}

impl StopStrings for StopSequences {
    fn check(&self, generated: &[u32]) -> Option<StopHit> {
        self.sequences
            .iter()
            .enumerate()
            .find(|(_, s)| !s.is_empty() && generated.ends_with(s))
            .map(|(index, s)| StopHit {
                index,
                keep: generated.len() - s.len(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_the_tighter_limit() {
        let mut p = SamplingParams::greedy(10);
        p.max_context = 8;
        let mut r = Request::new(vec![1, 2, 3], 1, 0);
        assert_eq!(r.budget(&p), 5);
        r.max_new_tokens = Some(2);
        assert_eq!(r.budget(&p), 2);
        r.prefix = vec![0; 9];
        assert_eq!(r.budget(&p), 0);
    }

    #[test]
    fn validate_names_the_field() {
        let mut p = SamplingParams::default();
        assert!(p.validate().is_ok());
        p.top_p = 0.0;
        assert!(p.validate().unwrap_err().to_string().contains("top_p"));
        p.top_p = 1.0;
        p.temperature = f32::NAN;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("temperature"));
    }

    #[test]
    fn ignore_eos_disables_stop_tokens() {
        let mut p = SamplingParams::greedy(4);
        p.stop_token_ids = vec![2];
        assert!(p.is_stop_token(2));
        p.ignore_eos = true;
        assert!(!p.is_stop_token(2));
    }

    #[test]
    fn stop_sequences_report_the_kept_length() {
        let s = StopSequences {
            sequences: vec![vec![7, 8], vec![9]],
        };
        assert_eq!(s.check(&[1, 7]), None);
        assert_eq!(s.check(&[1, 7, 8]), Some(StopHit { index: 0, keep: 1 }));
        assert_eq!(s.check(&[9]), Some(StopHit { index: 1, keep: 0 }));
    }
}
