//! Token sampling from one row of logits: greedy, temperature, top-k, top-p.
//!
//! # What it computes
//!
//! With temperature `T > 0`, scaled logits `s = logits / T` and weights `w_i = exp(s_i − max s)`:
//! 1. *Canonical order*: tokens sorted by weight, descending, ties by token id ascending.
//! 2. *top-k*: keep the first `k` tokens of that order.
//! 3. *top-p*: keep the shortest head of the remaining order whose weight reaches
//!    `top_p · Σ(remaining weights)`, i.e. nucleus sampling on the renormalised top-k
//!    distribution (Hugging Face and vLLM apply top-k before top-p the same way).
//! 4. Draw `u ~ U[0, 1)` and return the first kept token (in canonical order) whose cumulative
//!    weight exceeds `u · Σ(kept weights)`. Without truncation the walk is in token-id order and
//!    no sort happens at all.
//!
//! The reported log-probability is `log softmax(s)[token]` over the *whole* vocabulary: top-k and
//! top-p are not accounted for, as in the reference trainer, which divides logits by the
//! temperature and ignores top-p (spec §1.7). Greedy (`T = 0`) returns the argmax (lowest id on
//! ties) with `log softmax(logits)[token]`, i.e. `T = 1`.
//!
//! # Cost
//!
//! One pass for the maximum and one for the weights and their sum. top-k selects with
//! `select_nth_unstable` (O(V)) and sorts only the `k` survivors. top-p without top-k sorts a
//! growing head: select the best 64, sort them, and double the head until it holds `top_p` of
//! the mass, so a peaked distribution over a 150k vocabulary costs O(V), not O(V log V).
//!
//! # Randomness
//!
//! [`SampleRng`] is a ChaCha8 stream keyed by `(request seed, sample index)` and consumed one
//! `f64` per sampled token, so a sample never depends on what else is in the batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::request::SamplingParams;

/// Head size of the first round of top-p selection.
const FIRST_HEAD: usize = 64;

/// The random stream of one sample: ChaCha8 keyed by the request seed, stream = sample index.
#[derive(Debug, Clone)]
pub struct SampleRng(ChaCha8Rng);

impl SampleRng {
    /// The stream of sample `index` of a request seeded with `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Self(rng)
    }

    /// Next uniform draw in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }
}

/// A sampled token and its log-probability (see the module docs for which distribution).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Token id.
    pub token: u32,
    /// `log softmax(logits / T)[token]`, `T = 1` when greedy.
    pub logprob: f32,
}

/// Samples tokens from logits rows, reusing its scratch buffers between calls.
#[derive(Debug, Default, Clone)]
pub struct Sampler {
    /// exp(s_i − max s), one per token.
    weights: Vec<f32>,
    /// Token ids being ordered.
    order: Vec<u32>,
}

impl Sampler {
    /// Samples one token from `logits` (one row, `(V,)`) with the uniform draw `u ∈ [0, 1)`.
    /// `u` is ignored when greedy.
    pub fn sample(&mut self, logits: &[f32], params: &SamplingParams, u: f64) -> Result<Choice> {
        let max = checked_max(logits)?;
        if params.is_greedy() {
            return Ok(greedy(logits, max));
        }
        let t = params.temperature;
        let m = max / t;
        self.weights.clear();
        self.weights
            .extend(logits.iter().map(|&l| (l / t - m).exp()));
        let z: f64 = self.weights.iter().map(|&w| w as f64).sum();
        let v = logits.len();
        let k = if params.top_k == 0 {
            v
        } else {
            params.top_k.min(v)
        };
        let token = if k == v && params.top_p >= 1.0 {
            walk(&self.weights, 0..v as u32, u * z)
        } else {
            let (n, mass) = self.truncate(k, params.top_p as f64, z);
            walk(&self.weights, self.order[..n].iter().copied(), u * mass)
        };
        let logprob = (logits[token as usize] / t - m) as f64 - z.ln();
        Ok(Choice {
            token,
            logprob: logprob as f32,
        })
    }

    /// Applies top-k then top-p; leaves the kept tokens in canonical order in `order[..n]` and
    /// returns `(n, their total weight)`. `z` is the total weight of all tokens. Called only when
    /// something is truncated (`k < V` or `top_p < 1`).
    fn truncate(&mut self, k: usize, top_p: f64, z: f64) -> (usize, f64) {
        let w = &self.weights;
        let cmp = |a: &u32, b: &u32| canonical(w, *a, *b);
        self.order.clear();
        self.order.extend(0..w.len() as u32);
        let total = if k < w.len() {
            self.order.select_nth_unstable_by(k - 1, cmp);
            self.order.truncate(k);
            self.order.sort_unstable_by(cmp);
            self.order.iter().map(|&i| w[i as usize] as f64).sum()
        } else {
            z
        };
        if top_p >= 1.0 {
            return (self.order.len(), total);
        }
        let threshold = top_p * total;
        let already_sorted = k < w.len();
        let len = self.order.len();
        let (mut sorted, mut cum, mut head) = (0, 0.0f64, FIRST_HEAD);
        loop {
            let end = if already_sorted {
                len
            } else {
                (sorted + head).min(len)
            };
            if !already_sorted {
                let rest = &mut self.order[sorted..];
                if end < len {
                    rest.select_nth_unstable_by(end - sorted - 1, cmp);
                }
                self.order[sorted..end].sort_unstable_by(cmp);
            }
            for i in sorted..end {
                cum += w[self.order[i] as usize] as f64;
                if cum >= threshold {
                    return (i + 1, cum);
                }
            }
            if end == len {
                return (len, cum);
            }
            sorted = end;
            head *= 2;
        }
    }
}

/// Weight descending, then token id ascending.
fn canonical(w: &[f32], a: u32, b: u32) -> Ordering {
    w[b as usize].total_cmp(&w[a as usize]).then(a.cmp(&b))
}

/// The first token of `order` whose cumulative weight exceeds `target`; if rounding leaves none,
/// the last token with a positive weight.
fn walk(w: &[f32], order: impl Iterator<Item = u32>, target: f64) -> u32 {
    let mut cum = 0.0f64;
    let mut last = None;
    for i in order {
        let wi = w[i as usize];
        if wi > 0.0 {
            last = Some(i);
        }
        cum += wi as f64;
        if cum > target {
            return i;
        }
    }
    // `checked_max` guarantees a token of weight 1 exists, so `last` is set.
    last.unwrap_or(0)
}

/// Maximum of a logits row; rejects empty rows, NaN, +inf and rows that are all -inf.
fn checked_max(logits: &[f32]) -> Result<f32> {
    let mut max = f32::NEG_INFINITY;
    for &l in logits {
        if l.is_nan() || l == f32::INFINITY {
            return Err(Error::BadLogits(format!("found {l}")));
        }
        max = max.max(l);
    }
    if max == f32::NEG_INFINITY {
        return Err(Error::BadLogits(format!(
            "a row of {} logits has no finite value",
            logits.len()
        )));
    }
    Ok(max)
}

/// Argmax (lowest id on ties) with its log-probability at `T = 1`.
fn greedy(logits: &[f32], max: f32) -> Choice {
    let token = logits.iter().position(|&l| l == max).unwrap_or(0);
    let z: f64 = logits.iter().map(|&l| ((l - max).exp()) as f64).sum();
    Choice {
        token: token as u32,
        logprob: -(z.ln()) as f32,
    }
}

#[cfg(test)]
mod tests;
