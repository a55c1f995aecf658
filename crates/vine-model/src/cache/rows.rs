//! Caches rebuilt from rows of others (gather, fork, select, concat) and rows rewritten in
//! place (write, retain): how the engine forks prefixes and keeps its batch dense.

use candle_core::{Result, Tensor};

use super::{KvCache, LayerKv, RowSlice};

impl KvCache {
    /// A new cache whose row `i` holds the first `rows[i].keep` valid tokens of source row
    /// `rows[i].row`, right-aligned to a common length `max(keep)`. Rows may repeat (forking).
    /// `reserve` extra positions are allocated for later appends.
    pub fn gather(&self, rows: &[RowSlice], reserve: usize) -> Result<KvCache> {
        for r in rows {
            if r.row >= self.batch() || r.keep > self.row_len(r.row) {
                candle_core::bail!("gather: row {} keep {} out of range", r.row, r.keep)
            }
        }
        let new_len = rows.iter().map(|r| r.keep).max().unwrap_or(0);
        let starts: Vec<usize> = rows.iter().map(|r| new_len - r.keep).collect();
        let cap = new_len + reserve;
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            layers.push(match layer {
                None => None,
                Some(l) => {
                    let index = self.gather_index(&l.k, rows, new_len, cap)?;
                    Some(LayerKv {
                        k: gather_tensor(&l.k, &index, rows.len(), cap)?,
                        v: gather_tensor(&l.v, &index, rows.len(), cap)?,
                    })
                }
            });
        }
        Ok(KvCache {
            layers,
            starts,
            len: new_len,
            pending: None,
            first_reserve: 0,
        })
    }

    /// Every row repeated `n` times in place (`[r0, r0, …, r1, r1, …]`), all tokens kept.
    pub fn fork(&self, n: usize, reserve: usize) -> Result<KvCache> {
        let rows: Vec<RowSlice> = (0..self.batch())
            .flat_map(|row| {
                std::iter::repeat_n(
                    RowSlice {
                        row,
                        keep: self.row_len(row),
                    },
                    n,
                )
            })
            .collect();
        self.gather(&rows, reserve)
    }

    /// Keeps only `rows` (in that order), all tokens kept; drops padding no row needs any more.
    pub fn select(&self, rows: &[usize], reserve: usize) -> Result<KvCache> {
        let rows: Vec<RowSlice> = rows
            .iter()
            .map(|&row| RowSlice {
                row,
                keep: self.row_len(row),
            })
            .collect();
        self.gather(&rows, reserve)
    }

    /// Stacks caches along the batch, right-aligning their rows to a common length.
    pub fn concat(parts: &[&KvCache], reserve: usize) -> Result<KvCache> {
        let Some(first) = parts.first() else {
            candle_core::bail!("concat of no caches")
        };
        let len = parts.iter().map(|c| c.len).max().unwrap_or(0);
        let mut aligned = Vec::with_capacity(parts.len());
        for c in parts {
            if c.n_layers() != first.n_layers() {
                candle_core::bail!("concat: caches have different layer counts")
            }
            // Padding each part to `len` keeps every row's tokens and shifts its start.
            let rows: Vec<RowSlice> = (0..c.batch())
                .map(|row| RowSlice {
                    row,
                    keep: c.row_len(row),
                })
                .collect();
            let mut g = c.gather(
                &rows,
                len - rows.iter().map(|r| r.keep).max().unwrap_or(0) + reserve,
            )?;
            g.pad_left_to(len)?;
            aligned.push(g);
        }
        let mut layers = Vec::with_capacity(first.n_layers());
        for li in 0..first.n_layers() {
            let present: Vec<&LayerKv> = aligned
                .iter()
                .filter_map(|c| c.layers[li].as_ref())
                .collect();
            layers.push(match present.len() {
                0 => None,
                n if n == aligned.len() => {
                    let ks: Vec<&Tensor> = present.iter().map(|l| &l.k).collect();
                    let vs: Vec<&Tensor> = present.iter().map(|l| &l.v).collect();
                    Some(LayerKv {
                        k: Tensor::cat(&ks, 0)?,
                        v: Tensor::cat(&vs, 0)?,
                    })
                }
                // Parts that hold no tokens have no buffers yet: stand in zeros.
                _ => Some(concat_layer_with_empty(&aligned, li)?),
            });
        }
        let starts = aligned
            .iter()
            .flat_map(|c| c.starts.iter().copied())
            .collect();
        Ok(KvCache {
            layers,
            starts,
            len,
            pending: None,
            first_reserve: 0,
        })
    }

    /// Shifts all rows right so the physical length becomes `len` (>= current), keeping capacity.
    fn pad_left_to(&mut self, len: usize) -> Result<()> {
        let shift = len - self.len;
        if shift == 0 {
            return Ok(());
        }
        for l in self.layers.iter_mut().flatten() {
            let cap = l.k.dims()[2];
            if cap < len {
                candle_core::bail!("pad_left_to: capacity {cap} < {len}")
            }
            l.k = shift_right(&l.k, shift, self.len)?;
            l.v = shift_right(&l.v, shift, self.len)?;
        }
        for s in &mut self.starts {
            *s += shift;
        }
        self.len = len;
        Ok(())
    }

    fn gather_index(
        &self,
        src: &Tensor,
        rows: &[RowSlice],
        new_len: usize,
        cap: usize,
    ) -> Result<Tensor> {
        let (_, n_kv, src_cap, _) = src.dims4()?;
        let mut index = Vec::with_capacity(rows.len() * n_kv * cap);
        for r in rows {
            let first = new_len - r.keep;
            for h in 0..n_kv {
                let base = (r.row * n_kv + h) * src_cap + self.starts[r.row];
                for t in 0..cap {
                    let valid = t >= first && t < new_len;
                    index.push(if valid { (base + t - first) as u32 } else { 0 });
                }
            }
        }
        Tensor::from_vec(index, rows.len() * n_kv * cap, src.device())
    }
}

/// In-place row operations for a continuously batched decode loop: they touch only the rows they
/// change, where `gather`/`select`/`concat` rebuild every buffer.
impl KvCache {
    /// Overwrites row `slots[i]` with the first `rows[i].keep` valid tokens of row `rows[i].row`
    /// of `src`, right-aligned to this cache's length, which must be at least `keep`. The old
    /// contents of those slots are discarded; other rows are not touched. Both caches must come
    /// from the same model.
    pub fn write_rows(&mut self, slots: &[usize], src: &KvCache, rows: &[RowSlice]) -> Result<()> {
        if slots.len() != rows.len() {
            candle_core::bail!("write_rows: {} slots for {} rows", slots.len(), rows.len())
        }
        if src.n_layers() != self.n_layers() {
            candle_core::bail!("write_rows: caches have different layer counts")
        }
        for (&slot, r) in slots.iter().zip(rows) {
            if slot >= self.batch() || r.row >= src.batch() || r.keep > src.row_len(r.row) {
                candle_core::bail!("write_rows: slot {slot} / row {} out of range", r.row)
            }
            if r.keep > self.len {
                candle_core::bail!(
                    "write_rows: {} tokens do not fit in length {}",
                    r.keep,
                    self.len
                )
            }
        }
        // Rows that keep tokens need buffers on both sides; empty rows only move their start.
        let (filled, rows_filled): (Vec<usize>, Vec<RowSlice>) = slots
            .iter()
            .zip(rows)
            .filter(|(_, r)| r.keep > 0)
            .map(|(&s, &r)| (s, r))
            .unzip();
        if !filled.is_empty() {
            for (dst, src_layer) in self.layers.iter().zip(&src.layers) {
                let (Some(dst), Some(src_layer)) = (dst, src_layer) else {
                    candle_core::bail!("write_rows: a cache has no buffer for a layer")
                };
                let cap = dst.k.dims()[2];
                let index = src.gather_index(&src_layer.k, &rows_filled, self.len, cap)?;
                let k = gather_tensor(&src_layer.k, &index, rows_filled.len(), cap)?;
                let v = gather_tensor(&src_layer.v, &index, rows_filled.len(), cap)?;
                for (i, &slot) in filled.iter().enumerate() {
                    dst.k.slice_set(&k.narrow(0, i, 1)?, 0, slot)?;
                    dst.v.slice_set(&v.narrow(0, i, 1)?, 0, slot)?;
                }
            }
        }
        for (&slot, r) in slots.iter().zip(rows) {
            self.starts[slot] = self.len - r.keep;
        }
        Ok(())
    }

    /// Drops the rows whose `live` flag is false by moving live rows from the end into the holes
    /// (only moved rows are copied; the buffers keep their allocation). Returns, for every row of
    /// the compacted cache, the row it was before.
    pub fn retain_rows(&mut self, live: &[bool]) -> Result<Vec<usize>> {
        if live.len() != self.batch() {
            candle_core::bail!(
                "retain_rows: {} flags for {} rows",
                live.len(),
                self.batch()
            )
        }
        let new_b = live.iter().filter(|&&l| l).count();
        let holes: Vec<usize> = (0..new_b).filter(|&i| !live[i]).collect();
        let movers: Vec<usize> = (new_b..live.len()).filter(|&i| live[i]).collect();
        let mut from: Vec<usize> = (0..new_b).collect();
        for (&h, &m) in holes.iter().zip(&movers) {
            from[h] = m;
            self.starts[h] = self.starts[m];
        }
        self.starts.truncate(new_b);
        for l in self.layers.iter_mut().flatten() {
            if !movers.is_empty() {
                let index = Tensor::from_vec(
                    movers.iter().map(|&m| m as u32).collect::<Vec<_>>(),
                    movers.len(),
                    l.k.device(),
                )?;
                let (k, v) = (l.k.index_select(&index, 0)?, l.v.index_select(&index, 0)?);
                for (i, &h) in holes.iter().enumerate() {
                    l.k.slice_set(&k.narrow(0, i, 1)?, 0, h)?;
                    l.v.slice_set(&v.narrow(0, i, 1)?, 0, h)?;
                }
            }
            l.k = l.k.narrow(0, 0, new_b)?;
            l.v = l.v.narrow(0, 0, new_b)?;
        }
        Ok(from)
    }
}

/// Layer `li` of `parts` stacked along the batch, with zeros for parts that hold no tokens and
/// so have no buffer yet.
fn concat_layer_with_empty(parts: &[KvCache], li: usize) -> Result<LayerKv> {
    let Some(like) = parts.iter().find_map(|c| c.layers[li].as_ref()) else {
        candle_core::bail!("concat: no cache has layer {li}")
    };
    let (_, h, cap, d) = like.k.dims4()?;
    let (mut ks, mut vs) = (
        Vec::with_capacity(parts.len()),
        Vec::with_capacity(parts.len()),
    );
    for c in parts {
        match &c.layers[li] {
            Some(l) => {
                ks.push(l.k.clone());
                vs.push(l.v.clone());
            }
            None if c.starts.iter().all(|&s| s == c.len) => {
                let z = Tensor::zeros((c.batch(), h, cap, d), like.k.dtype(), like.k.device())?;
                ks.push(z.clone());
                vs.push(z);
            }
            None => candle_core::bail!("concat: a cache holds tokens but no buffer at layer {li}"),
        }
    }
    Ok(LayerKv {
        k: Tensor::cat(&ks, 0)?,
        v: Tensor::cat(&vs, 0)?,
    })
}

/// `src` (B, n_kv, cap_src, d) gathered by a flat position index into (rows, n_kv, cap, d).
fn gather_tensor(src: &Tensor, index: &Tensor, rows: usize, cap: usize) -> Result<Tensor> {
    let (b, h, c, d) = src.dims4()?;
    let flat = src.reshape((b * h * c, d))?;
    flat.index_select(index, 0)?.reshape((rows, h, cap, d))
}

/// Moves positions `0..len` of `buf` to `shift..shift+len` (same capacity).
fn shift_right(buf: &Tensor, shift: usize, len: usize) -> Result<Tensor> {
    let out = buf.zeros_like()?;
    if len > 0 {
        out.slice_set(&buf.narrow(2, 0, len)?.contiguous()?, 2, shift)?;
    }
    Ok(out)
}
