//! The queue side of continuous batching: prefill leaves in chunks and hand out rows.
//!
//! [`Pool`] walks the [`Plan`]'s leaves (longest first), prefills them in left-padded chunks of
//! at most `prefill_chunk_tokens` padded positions, and keeps each chunk's cache until every row
//! it serves has been admitted into the decode batch. A leaf longer than the chunk budget is
//! prefilled alone, in several calls along time, so no single forward pass exceeds the budget.
//! Prefilling more stops once the pool holds enough pending rows for the free batch slots, or
//! `pool_tokens` prefilled positions, so memory stays bounded however many requests there are.
//!
//! Pending rows are handed out longest prefix first across all pooled chunks: rows admitted
//! later are then no longer than the rows already decoding, and fit into the running cache in
//! place ([`vine_model::KvCache::write_rows`]) instead of forcing a rebuild.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use candle_core::Tensor;
use vine_model::{CausalLm, KvCache, RowSlice};

use crate::error::Result;
use crate::plan::Plan;
use crate::request::Request;

/// A row leaving the pool for the decode batch: gather `slice` of chunk `chunk`'s cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Row id (index into [`Plan::rows`]).
    pub row: usize,
    /// Chunk holding its prefix.
    pub chunk: usize,
    /// Source row in the chunk's cache and how many tokens to take.
    pub slice: RowSlice,
}

/// A prefilled chunk of leaves.
struct Chunk {
    cache: KvCache,
    /// Rows not yet admitted.
    pending: usize,
    /// Padded positions it holds (`B × T`).
    positions: usize,
}

/// Prefilled-but-not-admitted rows and the caches they come from.
pub(crate) struct Pool {
    chunks: Vec<Option<Chunk>>,
    /// Max-heap by (keep, earliest row id).
    heap: BinaryHeap<(usize, Reverse<usize>, usize, usize)>,
    next_leaf: usize,
    positions: usize,
    chunk_tokens: usize,
    pool_tokens: usize,
    /// Non-padding tokens prefilled so far.
    pub prefilled: usize,
}

impl Pool {
    /// An empty pool over `plan`'s leaves.
    pub fn new(chunk_tokens: usize, pool_tokens: usize) -> Self {
        Self {
            chunks: Vec::new(),
            heap: BinaryHeap::new(),
            next_leaf: 0,
            positions: 0,
            chunk_tokens,
            pool_tokens,
            prefilled: 0,
        }
    }

    /// True when every row has been handed out.
    pub fn is_exhausted(&self, plan: &Plan) -> bool {
        self.heap.is_empty() && self.next_leaf == plan.leaves.len()
    }

    /// True when every row `chunk` serves has been handed out (its cache is needed no more).
    pub fn is_drained(&self, chunk: usize) -> bool {
        self.chunks
            .get(chunk)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.pending == 0)
    }

    /// The cache of chunk `chunk` (valid until [`Pool::release`]).
    pub fn cache(&self, chunk: usize) -> Option<&KvCache> {
        self.chunks.get(chunk)?.as_ref().map(|c| &c.cache)
    }

    /// Up to `n` rows, prefilling more leaves if the pool runs short.
    pub fn take(
        &mut self,
        lm: &dyn CausalLm,
        requests: &[Request],
        plan: &Plan,
        n: usize,
    ) -> Result<Vec<Admission>> {
        while self.heap.len() < n
            && self.next_leaf < plan.leaves.len()
            && (self.heap.is_empty() || self.positions < self.pool_tokens)
        {
            self.prefill_chunk(lm, requests, plan, n)?;
        }
        let mut out = Vec::with_capacity(n.min(self.heap.len()));
        while out.len() < n {
            let Some((keep, Reverse(row), chunk, src)) = self.heap.pop() else {
                break;
            };
            if let Some(c) = self.chunks[chunk].as_mut() {
                c.pending -= 1;
            }
            out.push(Admission {
                row,
                chunk,
                slice: RowSlice { row: src, keep },
            });
        }
        Ok(out)
    }

    /// Drops the chunks whose rows have all been admitted.
    pub fn release(&mut self) {
        for slot in &mut self.chunks {
            if slot.as_ref().is_some_and(|c| c.pending == 0) {
                self.positions -= slot.as_ref().map_or(0, |c| c.positions);
                *slot = None;
            }
        }
    }

    /// Prefills the next run of leaves that fits the chunk budget; `free` decode slots are
    /// waiting for rows.
    fn prefill_chunk(
        &mut self,
        lm: &dyn CausalLm,
        requests: &[Request],
        plan: &Plan,
        free: usize,
    ) -> Result<()> {
        let first = self.next_leaf;
        let t = plan.leaves[first].len; // leaves are sorted longest first
        let mut end = first + 1;
        while end < plan.leaves.len() && (end - first + 1) * t.max(1) <= self.chunk_tokens {
            end += 1;
        }
        let leaves = &plan.leaves[first..end];
        let b = leaves.len();
        let left_pad: Vec<usize> = leaves.iter().map(|l| t - l.len).collect();
        let mut ids = Vec::with_capacity(b * t);
        for (l, &pad) in leaves.iter().zip(&left_pad) {
            ids.extend(std::iter::repeat_n(0u32, pad));
            ids.extend_from_slice(&requests[l.request].prefix[..l.len]);
        }
        let mut cache = lm.new_cache();
        cache.set_left_padding(&left_pad)?;
        if b <= free
            && leaves
                .iter()
                .all(|l| matches!(l.rows[..], [r] if plan.rows[r].keep == l.len))
        {
            // Every leaf serves one row, as prefilled, and all fit the free slots: the decode
            // batch can take this cache over as it is (`Batch::admit`), so it gets room for
            // the rows' budgets now (no more than the batch itself would hold).
            let budget = leaves.iter().map(|l| plan.rows[l.rows[0]].budget).max();
            cache.reserve_first(budget.unwrap_or(0));
        }
        // Along time in pieces of at most `chunk_tokens` positions; a chunk longer than that
        // holds a single leaf (b = 1), so only the first piece carries padding.
        let step = (self.chunk_tokens / b).max(1);
        let mut start = 0;
        while start < t {
            let width = step.min(t - start);
            let piece: Vec<u32> = (0..b)
                .flat_map(|r| ids[r * t + start..r * t + start + width].iter().copied())
                .collect();
            let piece = Tensor::from_vec(piece, (b, width), lm.device())?;
            let pad: Vec<usize> = if start == 0 {
                left_pad.clone()
            } else {
                vec![0; b]
            };
            lm.prefill(&piece, &pad, &mut cache)?;
            start += width;
        }
        let chunk = self.chunks.len();
        let mut pending = 0;
        for (src, leaf) in leaves.iter().enumerate() {
            for &row in &leaf.rows {
                self.heap
                    .push((plan.rows[row].keep, Reverse(row), chunk, src));
                pending += 1;
            }
            self.prefilled += leaf.len;
        }
        self.positions += b * t;
        self.chunks.push(Some(Chunk {
            cache,
            pending,
            positions: b * t,
        }));
        self.next_leaf = end;
        Ok(())
    }
}
