//! Collation of episodes into right-padded training tensors, and minibatch splitting.
//!
//! For row `b` with prompt length `P` and response length `R` (EOS included), padded to
//! `L = max_b (P + R)`:
//!
//! ```text
//! input_ids      (B, L)      prompt ++ response ++ pad(0)
//! targets        (B, L−1)    input_ids[:, 1:]             position j predicts token j+1
//! response_mask  (B, L−1)    1 on j ∈ [P−1, P−1+R)         i.e. where a response token is predicted
//! per-token x_t  (B, L−1)    x_t at j = P−1+t, 0 elsewhere  (Batch::align)
//! ```
//!
//! This is the reference collator's layout after its shift by one (spec 1.5: advantages "shifted
//! by one to line up with the log-probabilities of the next token"; query positions are 0 and
//! masked). Rows are right-padded with `left_pad = 0`: causal attention never looks ahead, so no
//! attention mask is needed and the padding's outputs are simply masked out.
//!
//! Deviation: the reference fills padded log-prob and value slots with −1e9 sentinels; here
//! every off-response slot of an aligned tensor is 0, and the losses never read it.
//!
//! Minibatches are a seeded shuffle of all episodes cut into chunks ([`minibatches`]); each is
//! cut again into micro-batches for gradient accumulation ([`micro_batches`], or
//! [`micro_batches_by_length`] to reduce padding). The shuffle is a SplitMix64-driven
//! Fisher–Yates written here, so a seed gives the same order on every platform and version.

use candle_core::{DType, Device, Tensor};

use crate::episode::Episode;
use crate::error::{check_len, Result, RlError};

/// Right-padded tensors of a set of episodes. See the module docs for the layout.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `(B, L)` u32: prompt ++ response, right-padded with 0.
    pub input_ids: Tensor,
    /// `(B, L−1)` u32: `input_ids[:, 1:]`, the token each position predicts.
    pub targets: Tensor,
    /// `(B, L−1)` f32: 1 where the predicted token is a response token.
    pub response_mask: Tensor,
    /// Prompt length of every row.
    pub prompt_lens: Vec<usize>,
    /// Response length of every row (EOS included).
    pub response_lens: Vec<usize>,
    /// Reward of every row.
    pub rewards: Vec<f32>,
}

impl Batch {
    /// Collates `episodes` on `device`.
    pub fn collate<'a>(
        episodes: impl IntoIterator<Item = &'a Episode>,
        device: &Device,
    ) -> Result<Self> {
        let episodes: Vec<&Episode> = episodes.into_iter().collect();
        if episodes.is_empty() {
            return Err(RlError::Empty(
                "cannot collate an empty set of episodes".into(),
            ));
        }
        let b = episodes.len();
        let l = episodes.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0f32; b * (l - 1)];
        for (row, e) in episodes.iter().enumerate() {
            let dst = &mut ids[row * l..row * l + e.len()];
            dst[..e.prompt().len()].copy_from_slice(e.prompt());
            dst[e.prompt().len()..].copy_from_slice(e.response());
            let start = row * (l - 1) + e.prompt().len() - 1;
            mask[start..start + e.response().len()].fill(1.0);
        }
        let input_ids = Tensor::from_vec(ids, (b, l), device)?;
        let targets = input_ids.narrow(1, 1, l - 1)?.contiguous()?;
        Ok(Self {
            input_ids,
            targets,
            response_mask: Tensor::from_vec(mask, (b, l - 1), device)?,
            prompt_lens: episodes.iter().map(|e| e.prompt().len()).collect(),
            response_lens: episodes.iter().map(|e| e.response().len()).collect(),
            rewards: episodes.iter().map(|e| e.reward()).collect(),
        })
    }

    /// Number of rows `B`.
    pub fn rows(&self) -> usize {
        self.prompt_lens.len()
    }

    /// Padded length `L` of `input_ids`.
    pub fn seq_len(&self) -> usize {
        self.input_ids.dims()[1]
    }

    /// Number of response tokens (valid positions of the mask).
    pub fn n_tokens(&self) -> usize {
        self.response_lens.iter().sum()
    }

    /// Left padding of every row for the model's forward: all 0 (rows are right-padded).
    pub fn left_pad(&self) -> Vec<usize> {
        vec![0; self.rows()]
    }

    /// Places one value per response token of every row (advantages, returns, old values,
    /// sampling log-probs) at the positions that predict those tokens: `(B, L−1)` f32, 0
    /// elsewhere. `per_token[b]` must have `response_lens[b]` entries.
    pub fn align<R: AsRef<[f32]>>(&self, per_token: &[R]) -> Result<Tensor> {
        check_len("per-token rows", per_token.len(), self.rows())?;
        let width = self.seq_len() - 1;
        let mut out = vec![0f32; self.rows() * width];
        for (row, values) in per_token.iter().enumerate() {
            let values = values.as_ref();
            check_len("per-token values", values.len(), self.response_lens[row])
                .map_err(|e| e.at_episode(row))?;
            let start = row * width + self.prompt_lens[row] - 1;
            out[start..start + values.len()].copy_from_slice(values);
        }
        Ok(Tensor::from_vec(
            out,
            (self.rows(), width),
            self.input_ids.device(),
        )?)
    }

    /// The inverse of [`Batch::align`]: reads the response positions of a `(B, L−1)` tensor
    /// (per-token log-probs, critic values of the states before each token) back into one
    /// vector per row.
    pub fn response_rows(&self, t: &Tensor) -> Result<Vec<Vec<f32>>> {
        let (b, w) = t.dims2()?;
        check_len("tensor rows", b, self.rows())?;
        check_len("tensor columns", w, self.seq_len() - 1)?;
        let all = t.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        Ok(all
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                let start = self.prompt_lens[row] - 1;
                v[start..start + self.response_lens[row]].to_vec()
            })
            .collect())
    }
}

/// SplitMix64: a tiny, well-mixed counter-based generator; enough for shuffles.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (`n > 0`), by 128-bit multiply (bias below 2⁻⁶⁴·n).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Fisher–Yates shuffle of `0..n` driven by `seed`.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i + 1));
    }
    idx
}

/// Shuffles `0..n` with `seed` and cuts it into minibatches of `size` (the last one smaller if
/// `size` does not divide `n`).
pub fn minibatches(n: usize, size: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if size == 0 {
        return Err(RlError::Invalid(
            "minibatch size is 0; set it to at least 1".into(),
        ));
    }
    Ok(shuffled(n, seed)
        .chunks(size)
        .map(<[usize]>::to_vec)
        .collect())
}

/// Cuts a minibatch into micro-batches of at most `size`, in order.
pub fn micro_batches(minibatch: &[usize], size: usize) -> Result<Vec<Vec<usize>>> {
    if size == 0 {
        return Err(RlError::Invalid(
            "micro-batch size is 0; set it to at least 1".into(),
        ));
    }
    Ok(minibatch.chunks(size).map(<[usize]>::to_vec).collect())
}

/// Like [`micro_batches`], after sorting the minibatch by episode length so that each
/// micro-batch pads little. The summed gradient is unchanged when the losses are normalised by
/// minibatch totals ([`crate::loss::Normalizer`]); with per-micro-batch means it reweights.
pub fn micro_batches_by_length(
    episodes: &[Episode],
    minibatch: &[usize],
    size: usize,
) -> Result<Vec<Vec<usize>>> {
    if let Some(&bad) = minibatch.iter().find(|&&i| i >= episodes.len()) {
        return Err(RlError::Invalid(format!(
            "minibatch index {bad} out of range for {} episodes",
            episodes.len()
        )));
    }
    let mut sorted = minibatch.to_vec();
    sorted.sort_by_key(|&i| (episodes[i].len(), i));
    micro_batches(&sorted, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let a = shuffled(100, 7);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_eq!(a, shuffled(100, 7));
        assert_ne!(a, shuffled(100, 8));
        assert_eq!(
            minibatches(10, 4, 1)
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [4, 4, 2]
        );
    }
}
