//! The fused CPU decode step: one new token for every row of a cached batch, in f32, written
//! as plain loops and GEMMs over the weights' own memory instead of ~35 candle ops per layer.
//!
//! At the widths vineppo samples from on a CPU (hidden 256–2048, 32–256 rows) a decode step
//! through candle's ops was dominated by per-op costs, not arithmetic: every op allocates its
//! output, most run on one thread, the mask and RoPE tables are rebuilt as tensors, K/V are
//! viewed, transposed and made contiguous. Here a layer is
//!
//! ```text
//! x (B, H) ─ rms_norm ─ q = x Wqᵀ (B, nh·d), k = x Wkᵀ, v = x Wvᵀ (B, nkv·d)   3 GEMMs
//!          ─ RoPE(q, k), q /= sqrt(d); append k, v to the cache (in place)
//!          ─ per row and head: softmax(q Kᵀ) V over the row's cached positions   rows ∥
//!          ─ x += attn Woᵀ                                                      1 GEMM
//!          ─ rms_norm ─ x += (silu(x Wgᵀ) ⊙ x Wuᵀ) Wdᵀ                           3 GEMMs
//! ```
//!
//! then the final norm and the LM head. The arithmetic is the composed path's
//! (`Transformer::run` in `Mode::Infer`) up to the order of summation inside dot products and
//! GEMMs; `tests::fused_decode_matches_the_composed_step` holds the two within 1e-5.
//!
//! It runs for CPU f32 models with contiguous weights and [`Kernels::Fused`] (the default);
//! everything else (f64, half types, CUDA, `VINEPPO_KERNELS=composed`) takes the composed step.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::Transformer;
use crate::cache::KvCache;
use crate::fused::{self, CpuData, Kernels};
use crate::layers::Linear;

/// `yᵢ (m × nᵢ) = x (m × k) · Wᵢᵀ + bᵢ` for Hugging Face `(nᵢ, k)` weights sharing the input
/// `x` (one parallel region for all of them).
fn project<const N: usize>(x: &[f32], m: usize, maps: [&Linear; N]) -> Result<[Vec<f32>; N]> {
    let k = maps.first().map_or(Ok(0), |l| l.weight.dim(1))?;
    let mut ys: [Vec<f32>; N] = std::array::from_fn(|_| Vec::new());
    for (y, l) in ys.iter_mut().zip(&maps) {
        *y = vec![0.0f32; m * l.weight.dim(0)?];
    }
    let weights: Vec<&Tensor> = maps.iter().map(|l| &l.weight).collect();
    CpuData::new(&weights)?.with::<f32, _>(|ws| {
        let mut jobs: Vec<_> = ws
            .iter()
            .zip(ys.iter_mut())
            .zip(&maps)
            .map(|((w, y), l)| (*w, l.weight.dims()[0], y.as_mut_slice()))
            .collect();
        fused::matmul_wt_many(x, m, k, &mut jobs);
        Ok(())
    })?;
    for (y, l) in ys.iter_mut().zip(&maps) {
        if let Some(b) = &l.bias {
            CpuData::new(&[b])?.with::<f32, _>(|b| {
                for row in y.chunks_exact_mut(b[0].len()) {
                    add_assign(row, b[0]);
                }
                Ok(())
            })?;
        }
    }
    Ok(ys)
}

/// `x += y`, element-wise.
fn add_assign(x: &mut [f32], y: &[f32]) {
    for (x, &y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

/// Rotates every head of `x` `(B, heads·d)` in place: `x' = x·cos + rotate_half(x)·sin` with the
/// row's half-width tables `cos`, `sin` `(B, d/2)`.
fn rope(x: &mut [f32], heads: usize, d: usize, cos: &[f32], sin: &[f32]) {
    let half = d / 2;
    for (b, row) in x.chunks_exact_mut(heads * d).enumerate() {
        let (c, s) = (&cos[b * half..][..half], &sin[b * half..][..half]);
        for head in row.chunks_exact_mut(d) {
            let (x1, x2) = head.split_at_mut(half);
            for i in 0..half {
                let (a, b) = (x1[i], x2[i]);
                x1[i] = a * c[i] - b * s[i];
                x2[i] = b * c[i] + a * s[i];
            }
        }
    }
}

/// The shapes one attention call needs.
#[derive(Clone, Copy)]
struct Heads {
    n_heads: usize,
    n_kv: usize,
    d: usize,
    /// Physical positions per cached row (the buffers' third dim).
    cap: usize,
    /// Physical length after this step's append.
    end: usize,
}

/// `softmax(q Kᵀ) V` for one new query per row over the row's valid cached positions
/// `starts[b]..end`. `q` `(B, n_heads·d)` already scaled; `k`, `v` `(B, n_kv, cap, d)`;
/// returns `(B, n_heads·d)`. Rows run in parallel, heads two at a time (their keys and values
/// stream from memory together).
fn attend(q: &[f32], k: &[f32], v: &[f32], starts: &[usize], s: Heads) -> Vec<f32> {
    let (d, groups) = (s.d, s.n_heads / s.n_kv);
    let mut out = vec![0.0f32; q.len()];
    out.par_chunks_mut(s.n_heads * d)
        .zip(q.par_chunks(s.n_heads * d))
        .enumerate()
        .for_each_init(Vec::new, |scores, (b, (out, q))| {
            let first = starts[b];
            // This row's keys and values of query head `h`'s kv head at `first..end`: (S, d).
            let kv = |h: usize| {
                let base = (b * s.n_kv + h / groups) * s.cap * d;
                let range = base + first * d..base + s.end * d;
                (&k[range.clone()], &v[range])
            };
            let mut heads = out.chunks_exact_mut(d).zip(q.chunks_exact(d)).enumerate();
            while let Some((h, (o0, q0))) = heads.next() {
                let (k0, v0) = kv(h);
                match heads.next() {
                    Some((_, (o1, q1))) => {
                        let (k1, v1) = kv(h + 1);
                        fused::attend::<2>([q0, q1], [k0, k1], [v0, v1], scores, [o0, o1]);
                    }
                    None => fused::attend::<1>([q0], [k0], [v0], scores, [o0]),
                }
            }
        });
    out
}

impl Transformer {
    /// True when [`Transformer::decode_fused`] can run this model.
    pub(super) fn decodes_fused(&self) -> bool {
        self.device.is_cpu()
            && self.dtype == DType::F32
            && self.kernels == Kernels::Fused
            && self.params.iter().all(|(_, t)| t.is_contiguous())
    }

    /// Appends one token per row (`ids`, one per cache row, already checked by
    /// `Transformer::check_ids`) and returns the logits `(B, V)`. See the module docs.
    ///
    /// The step runs on a worker of rayon's pool: called from outside it, each of the step's
    /// ~30 parallel regions would hand its work to the pool and put the caller to sleep until
    /// it is done, two context switches per region.
    pub(super) fn decode_fused(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        rayon::scope(|_| self.decode_fused_on_pool(ids, cache))
    }

    /// [`Transformer::decode_fused`]'s body.
    fn decode_fused_on_pool(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let c = &self.config;
        let (b, h, vocab) = (ids.len(), c.hidden_size, c.vocab_size);
        let (n_heads, n_kv, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        super::prepare_cache(cache, &vec![0; b], b, c.num_hidden_layers)?;
        // RoPE tables of every row's new position: (B, d/2).
        let positions = cache.positions(1);
        let tables = self
            .rope
            .tables(&positions, b, 1, DType::F32, &self.device)?;
        let cos = tables.cos.flatten_all()?.to_vec1::<f32>()?;
        let sin = tables.sin.flatten_all()?.to_vec1::<f32>()?;
        // Embeddings: (B, H).
        let mut x = CpuData::new(&[&self.embed_tokens])?.with::<f32, _>(|e| {
            Ok(ids
                .iter()
                .flat_map(|&id| &e[0][id as usize * h..][..h])
                .copied()
                .collect::<Vec<f32>>())
        })?;
        let scale = 1.0 / (d as f32).sqrt();
        let starts = cache.starts().to_vec();
        for (l, layer) in self.layers.iter().enumerate() {
            let attn = &layer.self_attn;
            let normed = rms_norm(&x, &layer.input_layernorm.weight, layer.input_layernorm.eps)?;
            let [mut q, mut k, v] =
                project(&normed, b, [&attn.q_proj, &attn.k_proj, &attn.v_proj])?;
            rope(&mut q, n_heads, d, &cos, &sin);
            rope(&mut k, n_kv, d, &cos, &sin);
            for q in q.iter_mut() {
                *q *= scale;
            }
            // (B, n_kv·d) is (B, n_kv, 1, d): the cache's layout for one new position.
            let k = Tensor::from_vec(k, (b, n_kv, 1, d), &self.device)?;
            let v = Tensor::from_vec(v, (b, n_kv, 1, d), &self.device)?;
            cache.append(l, &k, &v)?;
            let (kb, vb) = cache
                .layer_buffers(l)
                .ok_or_else(|| candle_core::Error::Msg(format!("no cache layer {l}")))?;
            let shape = Heads {
                n_heads,
                n_kv,
                d,
                cap: kb.dims()[2],
                end: cache.len() + 1,
            };
            let out = CpuData::new(&[kb, vb])?
                .with::<f32, _>(|kv| Ok(attend(&q, kv[0], kv[1], &starts, shape)))?;
            let [o] = project(&out, b, [&attn.o_proj])?;
            add_assign(&mut x, &o);

            let mlp = &layer.mlp;
            let post = &layer.post_attention_layernorm;
            let normed = rms_norm(&x, &post.weight, post.eps)?;
            let [gate, up] = project(&normed, b, [&mlp.gate_proj, &mlp.up_proj])?;
            let act = fused::silu_mul(&gate, &up);
            let [down] = project(&act, b, [&mlp.down_proj])?;
            add_assign(&mut x, &down);
        }
        cache.advance(1)?;
        let normed = rms_norm(&x, &self.norm.weight, self.norm.eps)?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        let head = Linear {
            weight: head.clone(),
            bias: None,
        };
        let [logits] = project(&normed, b, [&head])?;
        Tensor::from_vec(logits, (b, vocab), &self.device)
    }
}

/// RMSNorm of every row of `x` `(B, H)` with weight `w` `(H)`.
fn rms_norm(x: &[f32], w: &Tensor, eps: f64) -> Result<Vec<f32>> {
    CpuData::new(&[w])?.with::<f32, _>(|w| Ok(fused::rms_norm_rows(x, w[0], eps)))
}
