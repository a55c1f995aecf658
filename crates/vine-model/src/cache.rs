//! The key/value cache, kept outside the model so it can be forked, sliced and merged.
//!
//! # Layout
//!
//! Every layer holds one key and one value buffer of shape `(B, n_kv_heads, capacity, head_dim)`.
//! All rows share one physical length `len`; rows are *left-padded*: row `b` owns the physical
//! positions `starts[b]..len`, and the token at physical index `j` has the logical (RoPE) position
//! `j - starts[b]`. Positions before `starts[b]` hold garbage and are masked out.
//!
//! This is what makes VinePPO's Monte-Carlo stage cheap: a trajectory is prefilled once, and the
//! cache of any of its prefixes is a [`KvCache::gather`] of the first `keep` tokens of that row,
//! repeated K times ([`RowSlice`]). Rows from different prefixes (of different lengths) are
//! right-aligned into one batch, so all MC rollouts of all states decode together.
//!
//! Appends write in place into preallocated capacity (one copy per row and head on the CPU); the capacity doubles
//! when it runs out. Gathers build a fresh buffer with one `index_select` per layer and tensor.

use candle_core::{Device, Result, Tensor};

mod rows;
mod write;

use write::write_positions;

/// Which tokens of which source row become one row of a gathered cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSlice {
    /// Row of the source cache.
    pub row: usize,
    /// How many of the row's valid tokens to keep, counted from its first token.
    pub keep: usize,
}

#[derive(Debug, Clone)]
struct LayerKv {
    /// (B, n_kv, capacity, head_dim), contiguous.
    k: Tensor,
    /// (B, n_kv, capacity, head_dim), contiguous.
    v: Tensor,
}

/// Per-layer keys and values of a batch of left-padded rows. See the module docs.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    starts: Vec<usize>,
    len: usize,
    /// Physical length written by the step in progress (set by the first `append` of a step).
    pending: Option<usize>,
    /// Extra positions allocated with a layer's first write (see [`KvCache::reserve_first`]).
    first_reserve: usize,
}

/// Large negative additive mask value; finite so that a fully masked row cannot produce NaN.
pub const MASK_VALUE: f32 = -1e30;

impl KvCache {
    /// An empty cache for a model with `n_layers` layers. The batch size is fixed by the first
    /// [`KvCache::set_left_padding`] (or by the model's first forward on it).
    pub fn new(n_layers: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            starts: Vec::new(),
            len: 0,
            pending: None,
            first_reserve: 0,
        }
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.starts.len()
    }

    /// Physical length shared by all rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First valid physical position of every row.
    pub fn starts(&self) -> &[usize] {
        &self.starts
    }

    /// Number of valid tokens of `row`.
    pub fn row_len(&self, row: usize) -> usize {
        self.len - self.starts[row]
    }

    /// Number of layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Allocated positions per row (0 before the first write).
    pub fn capacity(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .next()
            .map(|l| l.k.dims()[2])
            .unwrap_or(0)
    }

    /// Declares the batch and its left padding before the first write. `left_pad[b]` leading
    /// positions of row `b` in the first chunk of ids are padding.
    pub fn set_left_padding(&mut self, left_pad: &[usize]) -> Result<()> {
        if !self.is_empty() {
            candle_core::bail!("set_left_padding on a non-empty cache (len {})", self.len)
        }
        self.starts = left_pad.to_vec();
        Ok(())
    }

    /// Logical positions of `t_new` tokens about to be appended: row-major `(B * t_new)`.
    pub fn positions(&self, t_new: usize) -> Vec<u32> {
        positions(&self.starts, self.len, t_new)
    }

    /// Additive attention mask `(B, 1, t_new, len + t_new)` for `t_new` tokens about to be
    /// appended: 0 where a query may attend, [`MASK_VALUE`] elsewhere.
    pub fn attention_mask(&self, t_new: usize, device: &Device) -> Result<Tensor> {
        attention_mask(&self.starts, self.len, t_new, device)
    }

    /// Appends `k`, `v` of shape `(B, n_kv, t_new, head_dim)` to `layer` and returns the keys and
    /// values of all positions, `(B, n_kv, len + t_new, head_dim)`. Every layer must append the
    /// same `t_new` during one step; call [`KvCache::advance`] after the last layer.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, _, t_new, _) = k.dims4()?;
        if b != self.batch() {
            candle_core::bail!("cache holds {} rows, got keys for {b}", self.batch())
        }
        let end = self.len + t_new;
        self.begin_step(end)?;
        let len = self.len;
        let l = self.make_room(layer, end, k)?;
        write_positions(&l.k, k, len)?;
        write_positions(&l.v, v, len)?;
        Ok((l.k.narrow(2, 0, end)?, l.v.narrow(2, 0, end)?))
    }

    /// Records that the step in progress writes positions up to `end`; every layer of a step
    /// must agree.
    fn begin_step(&mut self, end: usize) -> Result<()> {
        match self.pending {
            Some(p) if p != end => candle_core::bail!("layers appended different lengths"),
            _ => self.pending = Some(end),
        }
        Ok(())
    }

    /// Gives `layer` room for `end` positions: created with [`KvCache::reserve_first`]'s extra
    /// room (at least 16), doubled when full, keeping the first `len`. `like` has the buffers'
    /// rows, heads, head size, dtype and device.
    fn make_room(&mut self, layer: usize, end: usize, like: &Tensor) -> Result<&LayerKv> {
        let (len, first_reserve) = (self.len, self.first_reserve);
        let slot = self
            .layers
            .get_mut(layer)
            .ok_or_else(|| candle_core::Error::Msg(format!("no cache layer {layer}")))?;
        if slot.as_ref().is_none_or(|l| l.k.dims()[2] < end) {
            let cap = slot
                .as_ref()
                .map_or(end + first_reserve, |l| l.k.dims()[2] * 2)
                .max(end)
                .max(16);
            *slot = Some(LayerKv {
                k: grow(slot.as_ref().map(|l| &l.k), like, cap, len)?,
                v: grow(slot.as_ref().map(|l| &l.v), like, cap, len)?,
            });
        }
        slot.as_ref()
            .ok_or_else(|| candle_core::Error::Msg(format!("no cache layer {layer}")))
    }

    /// Allocates room for `extra` positions beyond the first write of every layer, so that a
    /// cache prefilled and then decoded in place (see the rollout engine) never regrows.
    pub fn reserve_first(&mut self, extra: usize) {
        self.first_reserve = extra;
    }

    /// The whole key and value buffers of `layer`, `(B, n_kv, capacity, head_dim)`, contiguous;
    /// `None` before its first append.
    pub(crate) fn layer_buffers(&self, layer: usize) -> Option<(&Tensor, &Tensor)> {
        self.layers.get(layer)?.as_ref().map(|l| (&l.k, &l.v))
    }

    /// Commits a step of `t_new` tokens appended to every layer.
    pub fn advance(&mut self, t_new: usize) -> Result<()> {
        if let Some(p) = self.pending.take() {
            if p != self.len + t_new {
                candle_core::bail!("advance({t_new}) does not match the appended length")
            }
        }
        self.len += t_new;
        Ok(())
    }
}

/// Logical positions for `t_new` new tokens after `past_len` cached ones, row-major `(B * t_new)`.
pub fn positions(starts: &[usize], past_len: usize, t_new: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(starts.len() * t_new);
    for &s in starts {
        for t in 0..t_new {
            out.push((past_len + t).saturating_sub(s) as u32);
        }
    }
    out
}

/// Additive causal mask `(B, 1, t_new, past_len + t_new)` for left-padded rows. A query may see a
/// key at physical index `j` when `starts[b] <= j <= query`; a padding query sees itself only, so
/// no softmax row is empty.
pub fn attention_mask(
    starts: &[usize],
    past_len: usize,
    t_new: usize,
    device: &Device,
) -> Result<Tensor> {
    let total = past_len + t_new;
    let mut m = vec![MASK_VALUE; starts.len() * t_new * total];
    for (b, &s) in starts.iter().enumerate() {
        for t in 0..t_new {
            let q = past_len + t;
            let row = &mut m[(b * t_new + t) * total..(b * t_new + t + 1) * total];
            if q < s {
                row[q] = 0.0;
            } else {
                row[s..=q].iter_mut().for_each(|x| *x = 0.0);
            }
        }
    }
    Tensor::from_vec(m, (starts.len(), 1, t_new, total), device)
}

/// A zeroed buffer of `cap` positions holding the first `len` positions of `old`.
fn grow(old: Option<&Tensor>, like: &Tensor, cap: usize, len: usize) -> Result<Tensor> {
    let (b, h, _, d) = like.dims4()?;
    let buf = Tensor::zeros((b, h, cap, d), like.dtype(), like.device())?;
    if let Some(old) = old {
        if len > 0 {
            write_positions(&buf, &old.narrow(2, 0, len)?, 0)?;
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache with one layer whose value at (row, pos) is `100*row + logical position`.
    fn filled(row_lens: &[usize]) -> KvCache {
        let dev = Device::Cpu;
        let len = *row_lens.iter().max().unwrap();
        let starts: Vec<usize> = row_lens.iter().map(|l| len - l).collect();
        let mut c = KvCache::new(1);
        c.set_left_padding(&starts).unwrap();
        let mut data = Vec::new();
        for (b, &s) in starts.iter().enumerate() {
            for t in 0..len {
                data.push(if t >= s {
                    (100 * b + t - s) as f32
                } else {
                    -1.0
                });
            }
        }
        let k = Tensor::from_vec(data, (row_lens.len(), 1, len, 1), &dev).unwrap();
        c.append(0, &k, &k).unwrap();
        c.advance(len).unwrap();
        c
    }

    fn row_values(c: &KvCache, row: usize) -> Vec<f32> {
        let k = c.layers[0]
            .as_ref()
            .unwrap()
            .k
            .narrow(2, 0, c.len())
            .unwrap();
        let all: Vec<f32> = k
            .get(row)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        all[c.starts()[row]..].to_vec()
    }

    #[test]
    fn gather_keeps_prefixes_right_aligned() {
        let c = filled(&[5, 3]);
        let g = c
            .gather(
                &[
                    RowSlice { row: 0, keep: 2 },
                    RowSlice { row: 1, keep: 3 },
                    RowSlice { row: 0, keep: 5 },
                ],
                4,
            )
            .unwrap();
        assert_eq!(g.len(), 5);
        assert_eq!(g.starts(), &[3, 2, 0]);
        assert_eq!(row_values(&g, 0), vec![0.0, 1.0]);
        assert_eq!(row_values(&g, 1), vec![100.0, 101.0, 102.0]);
        assert_eq!(row_values(&g, 2), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(g.capacity(), 9);
    }

    #[test]
    fn fork_select_and_append_grow() {
        let c = filled(&[2, 4]);
        let mut f = c.fork(2, 0).unwrap();
        assert_eq!(f.batch(), 4);
        assert_eq!(row_values(&f, 1), vec![0.0, 1.0]);
        assert_eq!(row_values(&f, 3), vec![100.0, 101.0, 102.0, 103.0]);
        // Append past capacity: the buffer grows and keeps old contents.
        let dev = Device::Cpu;
        let k = Tensor::from_vec(vec![7f32, 7., 7., 7.], (4, 1, 1, 1), &dev).unwrap();
        let (all, _) = f.append(0, &k, &k).unwrap();
        f.advance(1).unwrap();
        assert_eq!(all.dims(), &[4, 1, 5, 1]);
        assert_eq!(row_values(&f, 0), vec![0.0, 1.0, 7.0]);
        let s = f.select(&[0], 0).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(row_values(&s, 0), vec![0.0, 1.0, 7.0]);
    }

    #[test]
    fn concat_right_aligns() {
        let a = filled(&[2]);
        let b = filled(&[4, 1]);
        let c = KvCache::concat(&[&a, &b], 2).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c.starts(), &[2, 0, 3]);
        assert_eq!(row_values(&c, 0), vec![0.0, 1.0]);
        assert_eq!(row_values(&c, 1), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(row_values(&c, 2), vec![100.0]);
    }

    #[test]
    fn mask_and_positions() {
        assert_eq!(positions(&[0, 2], 3, 2), vec![3, 4, 1, 2]);
        let m = attention_mask(&[1], 0, 3, &Device::Cpu).unwrap();
        let m: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
        let z = MASK_VALUE;
        // query 0 is padding: sees itself; queries 1, 2 see 1..=q.
        assert_eq!(m, vec![0.0, z, z, z, 0.0, z, z, 0.0, 0.0]);
    }

    #[test]
    fn write_rows_replaces_only_the_given_slots() {
        let mut c = filled(&[4, 4, 2]);
        let src = filled(&[3, 5]);
        c.write_rows(
            &[2, 0],
            &src,
            &[RowSlice { row: 1, keep: 4 }, RowSlice { row: 0, keep: 0 }],
        )
        .unwrap();
        assert_eq!(c.starts(), &[4, 0, 0]);
        assert_eq!(row_values(&c, 0), Vec::<f32>::new());
        assert_eq!(row_values(&c, 1), vec![100.0, 101.0, 102.0, 103.0]);
        assert_eq!(row_values(&c, 2), vec![100.0, 101.0, 102.0, 103.0]);
        // More tokens than the cache length, or an unknown slot, are errors.
        assert!(c
            .write_rows(&[0], &src, &[RowSlice { row: 1, keep: 5 }])
            .is_err());
        assert!(c
            .write_rows(&[3], &src, &[RowSlice { row: 1, keep: 1 }])
            .is_err());
    }

    #[test]
    fn retain_rows_moves_tail_rows_into_holes() {
        let mut c = filled(&[1, 2, 3, 4, 5]);
        let from = c.retain_rows(&[false, true, false, true, true]).unwrap();
        assert_eq!(from, vec![3, 1, 4]);
        assert_eq!(c.batch(), 3);
        assert_eq!(row_values(&c, 0), vec![300.0, 301.0, 302.0, 303.0]);
        assert_eq!(row_values(&c, 1), vec![100.0, 101.0]);
        assert_eq!(row_values(&c, 2), vec![400.0, 401.0, 402.0, 403.0, 404.0]);
        // The compacted cache still appends and gathers.
        let k = Tensor::from_vec(vec![7f32, 8., 9.], (3, 1, 1, 1), &Device::Cpu).unwrap();
        c.append(0, &k, &k).unwrap();
        c.advance(1).unwrap();
        assert_eq!(row_values(&c, 1), vec![100.0, 101.0, 8.0]);
        let s = c.select(&[0], 0).unwrap();
        assert_eq!(row_values(&s, 0), vec![300.0, 301.0, 302.0, 303.0, 7.0]);
    }

    #[test]
    fn concat_accepts_caches_without_tokens() {
        let mut empty = KvCache::new(1);
        empty.set_left_padding(&[0, 0]).unwrap();
        let b = filled(&[3]);
        let c = KvCache::concat(&[&empty, &b], 1).unwrap();
        assert_eq!(c.batch(), 3);
        assert_eq!(c.starts(), &[3, 3, 0]);
        assert_eq!(row_values(&c, 2), vec![0.0, 1.0, 2.0]);
    }
}
