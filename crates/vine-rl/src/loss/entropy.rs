//! Entropy of the policy at the response positions, for logging.
//!
//! ```text
//! s = z − max z,   H = log Σ_v e^{s_v} − Σ_v e^{s_v}·s_v / Σ_v e^{s_v}     per position
//! H̄ = Σ_t m_t·H_t / Σ_t m_t
//! ```
//!
//! The reference computes `logsumexp(z) − Σ softmax(z)·z` over the whole `(B, T, V)` logits,
//! which holds several vocabulary-sized temporaries at once. Here positions are processed in
//! chunks of at most a quarter of the rows, so the temporaries (three chunk-sized tensors)
//! never add up to more than one extra `(B, T, V)` tensor. The logits are detached: this is a
//! metric, not a loss term (the paper's runs use no entropy bonus).

use candle_core::{DType, Result, Tensor, D};

/// Upper bound on the elements of one chunk's temporaries.
const CHUNK_ELEMS: usize = 1 << 22;

/// Entropy per row of `(N, V)` logits, `(N,)` f32.
fn row_entropy(z: &Tensor) -> Result<Tensor> {
    let z = z.to_dtype(DType::F32)?;
    let s = z.broadcast_sub(&z.max_keepdim(D::Minus1)?)?; // (n, V)
    let e = s.exp()?; // (n, V)
    let sum_e = e.sum(D::Minus1)?; // (n,)
    let sum_es = (&e * &s)?.sum(D::Minus1)?; // (n,)
    sum_e.log()? - sum_es.div(&sum_e)?
}

/// Masked mean entropy of the distributions given by `logits` `(B, T, V)` over the valid
/// positions of `mask` `(B, T)`; 0 when the mask is empty.
pub fn masked_entropy(logits: &Tensor, mask: &Tensor) -> Result<f32> {
    let (b, t, v) = logits.dims3()?;
    if mask.dims() != [b, t] {
        candle_core::bail!(
            "masked_entropy: mask shape {:?} does not match logits {:?}",
            mask.dims(),
            logits.dims()
        )
    }
    let n = b * t;
    let flat = logits.detach().reshape((n, v))?; // (N, V)
    let rows = (CHUNK_ELEMS / v.max(1)).clamp(1, n.div_ceil(4).max(1));
    let mut parts = Vec::with_capacity(n.div_ceil(rows));
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        parts.push(row_entropy(&flat.narrow(0, start, len)?)?);
        start += len;
    }
    let h = Tensor::cat(&parts, 0)?.reshape((b, t))?; // (B, T)
    let mean = crate::stats::masked_mean(&h, &mask.to_dtype(DType::F32)?)?;
    mean.to_scalar::<f32>()
}
