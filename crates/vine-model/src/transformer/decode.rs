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
//! then the final norm and the LM head.
//!
//! # Two row groups in a pipeline
//!
//! The attention is bound by memory (reading the cache), the GEMMs by arithmetic; one after
//! the other, each leaves the other resource idle. From 16 rows on, the batch is cut into two
//! groups `A` and `B` that go through the layers half a stage apart, so that one group's
//! attention runs (`rayon::join`) beside the other's GEMMs:
//!
//! ```text
//! qkv₀(A)
//! for each layer l:   attn_l(A) ∥ mlp_{l−1}(B) + qkv_l(B)
//!                     attn_l(B) ∥ mlp_l(A) + qkv_{l+1}(A)   (the last: + head(A))
//! mlp_last(B) + head(B)
//! ```
//!
//! New keys and values are written to the cache between the joined stages, so a stage reading
//! the cache never runs beside one writing it. Every row's arithmetic is the same in either
//! schedule (the GEMM tiles compute each output alone), so both give the same logits.
//!
//! The arithmetic is the composed path's (`Transformer::run` in `Mode::Infer`) up to the order
//! of summation inside dot products and GEMMs and a vectorised `exp` (2e-7 relative) in SwiGLU
//! and the softmax; in `tests/cache_equivalence.rs`, `fused_decode_matches_the_composed_step`
//! holds the two within 1e-5 and `pipelined_decode_equals_smaller_batches` holds the pipeline
//! to the single-group schedule bit for bit.
//!
//! It runs for CPU f32 models with contiguous weights and [`Kernels::Fused`] (the default);
//! everything else (f64, half types, CUDA, `VINEPPO_KERNELS=composed`) takes the composed step.

use std::ops::Range;

use candle_core::{DType, Result, Tensor};

use super::decode_ops::{add_assign, attend, project, rms_norm, rope, Heads};
use super::Transformer;
use crate::cache::KvCache;
use crate::fused::{self, CpuData, Kernels};
use crate::layers::Linear;

/// Rows from which the batch is decoded as two pipelined groups (see the module docs).
const PIPELINE_MIN_ROWS: usize = 16;

/// What every stage of one step reads.
struct Step<'a> {
    model: &'a Transformer,
    /// RoPE tables of every row's new position: `(B, d/2)` each.
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// First valid cache position of every row.
    starts: Vec<usize>,
    /// `1 / sqrt(head_dim)`.
    scale: f32,
}

/// Consecutive rows of the batch and their state within the step.
struct Group {
    rows: Range<usize>,
    /// Residual stream `(r, H)`.
    x: Vec<f32>,
    /// This layer's rotated, scaled queries `(r, n_heads·d)`.
    q: Vec<f32>,
    /// This layer's new keys and values `(r, n_kv·d)`, until written to the cache.
    kv: Option<(Vec<f32>, Vec<f32>)>,
    /// This layer's attention output `(r, n_heads·d)`.
    attn: Vec<f32>,
    /// Logits `(r, V)` once the head has run.
    logits: Vec<f32>,
}

impl Step<'_> {
    /// RMSNorm, the q/k/v projections, RoPE and the query scale of layer `l`.
    fn qkv(&self, g: &mut Group, l: usize) -> Result<()> {
        let c = &self.model.config;
        let (r, d, half) = (g.rows.len(), c.head_dim, c.head_dim / 2);
        let layer = &self.model.layers[l];
        let attn = &layer.self_attn;
        let normed = rms_norm(
            &g.x,
            &layer.input_layernorm.weight,
            layer.input_layernorm.eps,
        )?;
        let [mut q, mut k, v] = project(&normed, r, [&attn.q_proj, &attn.k_proj, &attn.v_proj])?;
        let rows = g.rows.start * half..g.rows.end * half;
        let (cos, sin) = (&self.cos[rows.clone()], &self.sin[rows]);
        rope(&mut q, c.num_attention_heads, d, cos, sin);
        rope(&mut k, c.num_key_value_heads, d, cos, sin);
        for q in q.iter_mut() {
            *q *= self.scale;
        }
        g.q = q;
        g.kv = Some((k, v));
        Ok(())
    }

    /// Writes the group's new keys and values of layer `l` into the cache.
    fn write_kv(&self, cache: &mut KvCache, g: &mut Group, l: usize) -> Result<()> {
        let c = &self.model.config;
        let (n_kv, d) = (c.num_key_value_heads, c.head_dim);
        let (k, v) =
            g.kv.take()
                .ok_or_else(|| candle_core::Error::Msg("decode: keys written twice".into()))?;
        // (r, n_kv·d) is (r, n_kv, 1, d): the cache's layout for one new position.
        let shape = (g.rows.len(), n_kv, 1, d);
        let dev = &self.model.device;
        let (k, v) = (
            Tensor::from_vec(k, shape, dev)?,
            Tensor::from_vec(v, shape, dev)?,
        );
        cache.write_step_rows(l, g.rows.start, &k, &v)
    }

    /// The group's attention over the cache of layer `l` (its new keys already written).
    fn attention(&self, cache: &KvCache, g: &mut Group, l: usize) -> Result<()> {
        let c = &self.model.config;
        let (kb, vb) = cache
            .layer_buffers(l)
            .ok_or_else(|| candle_core::Error::Msg(format!("no cache layer {l}")))?;
        let shape = Heads {
            n_heads: c.num_attention_heads,
            n_kv: c.num_key_value_heads,
            d: c.head_dim,
            cap: kb.dims()[2],
            end: cache.len() + 1,
            row0: g.rows.start,
        };
        let starts = &self.starts[g.rows.clone()];
        g.attn = CpuData::new(&[kb, vb])?
            .with::<f32, _>(|kv| Ok(attend(&g.q, kv[0], kv[1], starts, shape)))?;
        Ok(())
    }

    /// The output projection and the MLP of layer `l`, each added to the residual stream.
    fn mlp(&self, g: &mut Group, l: usize) -> Result<()> {
        let layer = &self.model.layers[l];
        let r = g.rows.len();
        let [o] = project(&g.attn, r, [&layer.self_attn.o_proj])?;
        add_assign(&mut g.x, &o);
        let (mlp, post) = (&layer.mlp, &layer.post_attention_layernorm);
        let normed = rms_norm(&g.x, &post.weight, post.eps)?;
        let [gate, up] = project(&normed, r, [&mlp.gate_proj, &mlp.up_proj])?;
        let act = fused::silu_mul(&gate, &up);
        let [down] = project(&act, r, [&mlp.down_proj])?;
        add_assign(&mut g.x, &down);
        Ok(())
    }

    /// The final norm and the LM head.
    fn head(&self, g: &mut Group) -> Result<()> {
        let m = self.model;
        let normed = rms_norm(&g.x, &m.norm.weight, m.norm.eps)?;
        let head = Linear {
            weight: m.lm_head.as_ref().unwrap_or(&m.embed_tokens).clone(),
            bias: None,
        };
        let [logits] = project(&normed, g.rows.len(), [&head])?;
        g.logits = logits;
        Ok(())
    }

    /// The MLP of layer `l`, then the next layer's q/k/v, or the head after the last layer.
    fn mlp_then_next(&self, g: &mut Group, l: usize) -> Result<()> {
        self.mlp(g, l)?;
        if l + 1 < self.model.layers.len() {
            self.qkv(g, l + 1)
        } else {
            self.head(g)
        }
    }
}

/// Both results of a `rayon::join`, the first error first.
fn both(r: (Result<()>, Result<()>)) -> Result<()> {
    r.0.and(r.1)
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
        let (b, h) = (ids.len(), c.hidden_size);
        let n_layers = c.num_hidden_layers;
        super::prepare_cache(cache, &vec![0; b], b, n_layers)?;
        let tables = self
            .rope
            .tables(&cache.positions(1), b, 1, DType::F32, &self.device)?;
        let step = Step {
            model: self,
            cos: tables.cos.flatten_all()?.to_vec1::<f32>()?,
            sin: tables.sin.flatten_all()?.to_vec1::<f32>()?,
            starts: cache.starts().to_vec(),
            scale: 1.0 / (c.head_dim as f32).sqrt(),
        };
        let embed = |rows: Range<usize>| -> Result<Group> {
            let x = CpuData::new(&[&self.embed_tokens])?.with::<f32, _>(|e| {
                Ok(ids[rows.clone()]
                    .iter()
                    .flat_map(|&id| &e[0][id as usize * h..][..h])
                    .copied()
                    .collect::<Vec<f32>>())
            })?;
            Ok(Group {
                rows,
                x,
                q: Vec::new(),
                kv: None,
                attn: Vec::new(),
                logits: Vec::new(),
            })
        };
        let (n_kv, d) = (c.num_key_value_heads, c.head_dim);
        cache.reserve_step(1, n_kv, d, DType::F32, &self.device)?;
        let logits = if b < PIPELINE_MIN_ROWS || n_layers == 0 {
            let mut g = embed(0..b)?;
            for l in 0..n_layers {
                step.qkv(&mut g, l)?;
                step.write_kv(cache, &mut g, l)?;
                step.attention(cache, &mut g, l)?;
                step.mlp(&mut g, l)?;
            }
            step.head(&mut g)?;
            g.logits
        } else {
            let (mut a, mut z) = (embed(0..b / 2)?, embed(b / 2..b)?);
            step.qkv(&mut a, 0)?;
            step.write_kv(cache, &mut a, 0)?;
            for l in 0..n_layers {
                let shared = &*cache;
                both(rayon::join(
                    || step.attention(shared, &mut a, l),
                    || match l {
                        0 => step.qkv(&mut z, 0),
                        _ => step.mlp_then_next(&mut z, l - 1),
                    },
                ))?;
                step.write_kv(cache, &mut z, l)?;
                let shared = &*cache;
                both(rayon::join(
                    || step.mlp_then_next(&mut a, l),
                    || step.attention(shared, &mut z, l),
                ))?;
                if l + 1 < n_layers {
                    step.write_kv(cache, &mut a, l + 1)?;
                }
            }
            step.mlp_then_next(&mut z, n_layers - 1)?;
            [a.logits, z.logits].concat()
        };
        cache.advance(1)?;
        Tensor::from_vec(logits, (b, c.vocab_size), &self.device)
    }
}
