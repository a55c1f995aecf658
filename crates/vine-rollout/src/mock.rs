//! Mock language models: exact, weight-free [`CausalLm`]s for testing the engine and the
//! trainer.
//!
//! A [`MockLm`] has no transformer layers. Its [`KvCache`] holds one pseudo-layer whose "keys"
//! are the token ids themselves, so at every decode step the mock reads each row's complete
//! history back *out of the cache* and computes the next-token logits as a pure function of it.
//! That makes it a strict check of the engine's cache handling: a wrong gather, fork, refill,
//! compaction or padding shows up as a different history, hence different logits and samples,
//! exactly as it would with a real model, while the results stay bit-exact (no floating-point
//! noise from batch composition).
//!
//! The logits function is any `Fn(history, &mut logits)`; two are built in:
//! - [`MockLm::hashed`]: peaked pseudo-random logits from a hash of the whole history;
//! - [`MockLm::scripted`]: an n-gram [`Script`] such as "after tokens X, emit EOS with
//!   probability p", for trainer tests that need known rewards.
//!
//! The mock also counts the work it is given ([`MockStats`]), so tests can check that prefixes
//! are prefilled once and that finished rows stop being decoded.
//!
//! It is always compiled (not behind a feature): it is small, has no dependencies beyond the
//! crate's own, and the crate doctest and other crates' tests use it without feature plumbing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};
use vine_model::{CausalLm, KvCache};

/// Logit of tokens a [`Script`] rules out: finite (so log-softmax stays finite) but with
/// probability exactly 0 in f32.
pub const IMPOSSIBLE: f32 = -1e9;

/// Next-token logits as a function of a row's history (prefix plus generated tokens).
pub type LogitsFn = dyn Fn(&[u32], &mut [f32]) + Send + Sync;

/// Work counters of a [`MockLm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Calls to `prefill`.
    pub prefill_calls: usize,
    /// `B × T` summed over prefill calls (padding included).
    pub prefill_positions: usize,
    /// Non-padding tokens prefilled.
    pub prefill_tokens: usize,
    /// Calls to `decode_step`.
    pub decode_steps: usize,
    /// Rows summed over decode steps.
    pub decode_rows: usize,
}

#[derive(Debug, Default)]
struct Counters([AtomicUsize; 5]);

impl Counters {
    fn add(&self, i: usize, n: usize) {
        self.0[i].fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self, i: usize) -> usize {
        self.0[i].load(Ordering::Relaxed)
    }
}

/// A weight-free [`CausalLm`] whose logits are a function of each row's token history; see the
/// module docs.
pub struct MockLm {
    vocab: usize,
    device: Device,
    logits: Arc<LogitsFn>,
    counters: Counters,
}

impl std::fmt::Debug for MockLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockLm")
            .field("vocab", &self.vocab)
            .field("stats", &self.stats())
            .finish()
    }
}

impl MockLm {
    /// A mock over `vocab` tokens whose logits are `logits(history, out)`; `out` arrives zeroed.
    pub fn from_fn(vocab: usize, logits: Arc<LogitsFn>) -> Self {
        Self {
            vocab,
            device: Device::Cpu,
            logits,
            counters: Counters::default(),
        }
    }

    /// Peaked pseudo-random logits `6·x³`, `x ∈ [-1, 1)` drawn from a hash of `seed`, the whole
    /// history and the token id: a few tokens carry most of the mass, and the ranking changes
    /// with every token of the history.
    pub fn hashed(vocab: usize, seed: u64) -> Self {
        Self::from_fn(
            vocab,
            Arc::new(move |history: &[u32], out: &mut [f32]| {
                let h = history
                    .iter()
                    .fold(splitmix(seed), |h, &t| splitmix(h ^ t as u64));
                for (v, o) in out.iter_mut().enumerate() {
                    let bits = splitmix(h ^ (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let x = (bits >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                    *o = 6.0 * x * x * x;
                }
            }),
        )
    }

    /// A mock that follows `script`. Fails if the script names a token `>= vocab`.
    pub fn scripted(vocab: usize, script: Script) -> crate::Result<Self> {
        if let Some(t) = script.tokens().find(|&t| t as usize >= vocab) {
            return Err(crate::Error::InvalidParams(format!(
                "script names token {t}, outside the mock's vocabulary of {vocab}"
            )));
        }
        Ok(Self::from_fn(
            vocab,
            Arc::new(move |h: &[u32], out: &mut [f32]| script.logits(h, out)),
        ))
    }

    /// Work done so far.
    pub fn stats(&self) -> MockStats {
        let c = &self.counters;
        MockStats {
            prefill_calls: c.get(0),
            prefill_positions: c.get(1),
            prefill_tokens: c.get(2),
            decode_steps: c.get(3),
            decode_rows: c.get(4),
        }
    }

    /// The logits the mock gives after `history`, `(V,)`: what a correct engine sees.
    pub fn logits_after(&self, history: &[u32]) -> Vec<f32> {
        let mut out = vec![0.0; self.vocab];
        (self.logits)(history, &mut out);
        out
    }

    fn check_ids(&self, ids: &Tensor) -> Result<(usize, usize, Vec<u32>)> {
        let (b, t) = ids.dims2()?;
        let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        if let Some(bad) = flat.iter().find(|&&i| i as usize >= self.vocab) {
            candle_core::bail!("token id {bad} is outside the vocabulary of {}", self.vocab)
        }
        Ok((b, t, flat))
    }
}

impl CausalLm for MockLm {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(1)
    }

    fn prefill(&self, ids: &Tensor, left_pad: &[usize], cache: &mut KvCache) -> Result<()> {
        let (b, t, _) = self.check_ids(ids)?;
        let pad = if left_pad.is_empty() {
            vec![0; b]
        } else {
            left_pad.to_vec()
        };
        if pad.len() != b || pad.iter().any(|&p| p > t) {
            candle_core::bail!("left_pad {pad:?} does not fit ids of shape ({b}, {t})")
        }
        if cache.is_empty() {
            cache.set_left_padding(&pad)?;
        } else if pad.iter().any(|&p| p != 0) {
            candle_core::bail!("left padding on a non-empty cache")
        }
        self.counters.add(0, 1);
        self.counters.add(1, b * t);
        self.counters.add(2, b * t - pad.iter().sum::<usize>());
        if t > 0 {
            let k = ids.to_dtype(DType::F32)?.reshape((b, 1, t, 1))?;
            cache.append(0, &k, &k)?;
            cache.advance(t)?;
        }
        Ok(())
    }

    fn decode_step(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t, _) = self.check_ids(ids)?;
        if t != 1 {
            candle_core::bail!("decode_step takes one token per row, got {t}")
        }
        let k = ids.to_dtype(DType::F32)?.reshape((b, 1, 1, 1))?;
        let (keys, _) = cache.append(0, &k, &k)?; // (B, 1, len + 1, 1)
        cache.advance(1)?;
        let len = cache.len();
        let all: Vec<f32> = keys.flatten_all()?.to_vec1()?; // (B * len)
        let mut logits = vec![0.0f32; b * self.vocab];
        for (row, out) in logits.chunks_mut(self.vocab).enumerate() {
            let history: Vec<u32> = all[row * len + cache.starts()[row]..(row + 1) * len]
                .iter()
                .map(|&x| x as u32)
                .collect();
            (self.logits)(&history, out);
        }
        self.counters.add(3, 1);
        self.counters.add(4, b);
        Tensor::from_vec(logits, (b, self.vocab), &self.device)
    }
}

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash step.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An n-gram script for [`MockLm::scripted`]: the next-token distribution is that of the
/// longest rule whose context is a suffix of the history, else the fallback.
///
/// A distribution is a list of `(token, probability)`; unlisted tokens get [`IMPOSSIBLE`]
/// logits, and an empty list is uniform over the vocabulary.
///
/// ```
/// use vine_rollout::mock::Script;
/// const EOS: u32 = 2;
/// // After token 7 the answer is 8 (p = 0.75) or 9; after an answer comes EOS.
/// let script = Script::new(&[(7, 1.0)])
///     .after(&[7], &[(8, 0.75), (9, 0.25)])
///     .after(&[8], &[(EOS, 1.0)])
///     .after(&[9], &[(EOS, 1.0)]);
/// # let _ = script;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Script {
    fallback: Dist,
    rules: Vec<(Vec<u32>, Dist)>,
}

/// A next-token distribution: `(token, probability)` pairs, empty for uniform.
type Dist = Vec<(u32, f32)>;

impl Script {
    /// A script that samples from `fallback` when no rule matches.
    pub fn new(fallback: &[(u32, f32)]) -> Self {
        Self {
            fallback: fallback.to_vec(),
            rules: Vec::new(),
        }
    }

    /// Adds a rule: when the history ends with `context`, the next token follows `next`.
    pub fn after(mut self, context: &[u32], next: &[(u32, f32)]) -> Self {
        self.rules.push((context.to_vec(), next.to_vec()));
        self
    }

    fn tokens(&self) -> impl Iterator<Item = u32> + '_ {
        let dists = std::iter::once(&self.fallback).chain(self.rules.iter().map(|r| &r.1));
        let contexts = self.rules.iter().flat_map(|r| r.0.iter().copied());
        dists
            .flat_map(|d| d.iter().map(|&(t, _)| t))
            .chain(contexts)
    }

    fn logits(&self, history: &[u32], out: &mut [f32]) {
        let dist = self
            .rules
            .iter()
            .filter(|(c, _)| history.ends_with(c))
            .max_by_key(|(c, _)| c.len())
            .map(|(_, d)| d)
            .unwrap_or(&self.fallback);
        if dist.is_empty() {
            return;
        }
        out.fill(IMPOSSIBLE);
        for &(t, p) in dist {
            out[t as usize] = if p > 0.0 { p.ln() } else { IMPOSSIBLE };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: &[&[u32]]) -> Tensor {
        let t = rows[0].len();
        let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap()
    }

    fn row(logits: &Tensor, r: usize) -> Vec<f32> {
        logits.get(r).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn logits_follow_the_history_through_padding_and_forks() {
        let lm = MockLm::hashed(50, 1);
        let mut cache = lm.new_cache();
        // Rows [5, 6, 7] and [9] (left-padded by 2), then one decode step each.
        lm.prefill(&ids(&[&[5, 6, 7], &[0, 0, 9]]), &[0, 2], &mut cache)
            .unwrap();
        let mut forked = cache.fork(2, 4).unwrap();
        let logits = lm
            .decode_step(&ids(&[&[1], &[1], &[3], &[4]]), &mut forked)
            .unwrap();
        assert_eq!(row(&logits, 0), lm.logits_after(&[5, 6, 7, 1]));
        assert_eq!(row(&logits, 1), row(&logits, 0));
        assert_eq!(row(&logits, 2), lm.logits_after(&[9, 3]));
        assert_eq!(row(&logits, 3), lm.logits_after(&[9, 4]));
        assert_ne!(row(&logits, 2), row(&logits, 3));
        let s = lm.stats();
        assert_eq!(
            (s.prefill_positions, s.prefill_tokens, s.decode_rows),
            (6, 4, 4)
        );
    }

    #[test]
    fn rejects_tokens_outside_the_vocabulary() {
        let lm = MockLm::hashed(10, 0);
        let mut cache = lm.new_cache();
        assert!(lm.prefill(&ids(&[&[3, 10]]), &[], &mut cache).is_err());
        assert!(MockLm::scripted(10, Script::new(&[(10, 1.0)])).is_err());
    }

    #[test]
    fn script_uses_the_longest_matching_rule() {
        let s = Script::new(&[])
            .after(&[1], &[(2, 0.5), (3, 0.5)])
            .after(&[4, 1], &[(5, 1.0)]);
        let lm = MockLm::scripted(6, s).unwrap();
        assert_eq!(lm.logits_after(&[0]), vec![0.0; 6]);
        let after_1 = lm.logits_after(&[0, 1]);
        assert_eq!(after_1[2], 0.5f32.ln());
        assert_eq!(after_1[0], IMPOSSIBLE);
        assert_eq!(lm.logits_after(&[4, 1])[5], 0.0);
    }
}
