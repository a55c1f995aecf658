//! Token sampling from one row of logits: greedy, temperature, top-k, top-p.
//!
//! # What it computes
//!
//! With temperature `T > 0`, scaled logits `s = logits / T` and weights
//! `w_i = exp(s_i − max s)`, computed as `exp((logits_i − max logits) / T)` so that tiny
//! temperatures cannot overflow:
//! 1. *Canonical order*: tokens sorted by weight, descending, ties by token id ascending.
//! 2. *top-k*: keep the first `k` tokens of that order.
//! 3. *top-p*: keep the shortest head of the remaining order whose weight reaches
//!    `top_p · Σ(remaining weights)`, i.e. nucleus sampling on the renormalised top-k
//!    distribution (Hugging Face and vLLM apply top-k before top-p the same way).
//! 4. Draw `u ~ U[0, 1)` and walk the kept tokens **in token-id order**: return the first whose
//!    cumulative weight exceeds `u · Σ(kept weights)`. Any fixed walk order samples the kept
//!    distribution exactly; id order needs no sort.
//!
//! The reported log-probability is `log softmax(s)[token]` over the *whole* vocabulary: top-k and
//! top-p are not accounted for, as in the reference trainer, which divides logits by the
//! temperature and ignores top-p (spec §1.7). Greedy (`T = 0`) returns the argmax (lowest id on
//! ties) with `log softmax(logits)[token]`, i.e. `T = 1`.
//!
//! # Cost: O(V) per row, no sort
//!
//! One pass for the maximum, one for the weights (a vectorised `exp`) and their sum. Truncation
//! only needs the *last* kept token of the canonical order, the boundary (module `select`): top-k
//! finds it with `select_nth_unstable`, top-p with a radix pass over the weights' float bits
//! followed by a weighted quickselect inside one bucket. Both are O(V) whatever the shape of the
//! distribution: a near-uniform row of an untrained model costs about what a peaked one does.
//! A last pass sums the kept weights and walks them until the draw is reached.
//!
//! # Randomness
//!
//! [`SampleRng`] is a ChaCha8 stream keyed by `(request seed, sample index)` and consumed one
//! `f64` per sampled token, so a sample never depends on what else is in the batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::request::SamplingParams;

mod kernels;
mod select;

use kernels::{checked_max, sum, sum_where, weights};
use select::{key, Selector};

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
    selector: Selector,
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
        weights(logits, t, max, &mut self.weights);
        let w = &self.weights;
        let z = sum(w);
        let v = logits.len();
        let k = if params.top_k == 0 {
            v
        } else {
            params.top_k.min(v)
        };
        let token = if k == v && params.top_p >= 1.0 {
            walk(w, 0..v as u32, u * z)
        } else {
            let b = self.selector.boundary(w, k, params.top_p as f64, z);
            let mass = sum_where(w, |i, x| key(x, i) >= b);
            walk(
                w,
                (0..v as u32).filter(|&i| key(w[i as usize], i) >= b),
                u * mass,
            )
        };
        let logprob = ((logits[token as usize] - max) / t) as f64 - z.ln();
        Ok(Choice {
            token,
            logprob: logprob as f32,
        })
    }
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
    // The maximum has weight 1 and is kept, so `last` is set.
    last.unwrap_or(0)
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
