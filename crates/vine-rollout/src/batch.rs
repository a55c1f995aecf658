//! The decode side of continuous batching: the rows decoding together and their cache.
//!
//! Every slot of [`Batch`] is one row of the running [`KvCache`]. Between decode steps:
//! - finished rows are marked dead ([`Batch::finish`]);
//! - new rows from the [`Pool`] are written into dead slots in place when their prefix fits the
//!   cache's current length ([`KvCache::write_rows`], copying one row each); otherwise, or when
//!   the batch must grow, the batch is rebuilt with [`KvCache::concat`];
//! - dead slots that nothing refills are dropped by moving tail rows into them
//!   ([`KvCache::retain_rows`]), so **no decode step ever computes a finished row**;
//! - when at least a quarter of the physical length is left padding that no live row needs
//!   (the rows that needed it finished), the cache is re-gathered without it
//!   ([`KvCache::select`]): attention costs `B × len`, so this padding would be paid every step.

use candle_core::{Device, Tensor};
use vine_model::KvCache;

use crate::error::Result;
use crate::scheduler::{Admission, Pool};

/// Fewest extra positions reserved when a cache is rebuilt (appends beyond the reserve double
/// the capacity, a copy of the whole cache into fresh memory).
const RESERVE: usize = 64;
/// Trim when unneeded left padding reaches `1 / TRIM_FRACTION` of the length...
const TRIM_FRACTION: usize = 4;
/// ...and at least this many positions.
const TRIM_MIN: usize = 16;

/// A live slot: which row it decodes and the token to feed next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    /// Row id.
    pub row: usize,
    /// Next input token.
    pub next: u32,
}

/// The running decode batch.
#[derive(Default)]
pub(crate) struct Batch {
    cache: Option<KvCache>,
    slots: Vec<Option<Live>>,
    /// Times the whole cache was copied (rebuilds and trims).
    pub copies: usize,
    /// Rows admitted by writing into a dead slot in place.
    pub in_place: usize,
}

impl Batch {
    /// Number of live rows.
    pub fn live(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// True when no row is decoding.
    pub fn is_empty(&self) -> bool {
        self.live() == 0
    }

    /// The slots, `None` for dead ones.
    pub fn slots(&self) -> &[Option<Live>] {
        &self.slots
    }

    /// Marks slot `s` dead.
    pub fn finish(&mut self, s: usize) {
        self.slots[s] = None;
    }

    /// Sets the next input token of slot `s`.
    pub fn set_next(&mut self, s: usize, token: u32) {
        if let Some(l) = self.slots[s].as_mut() {
            l.next = token;
        }
    }

    /// Moves `admitted` rows from `pool` into the batch; `first(row)` is a row's first input.
    /// A rebuilt cache gets room for `reserve` more positions (at least [`RESERVE`]).
    pub fn admit(
        &mut self,
        admitted: &[Admission],
        pool: &Pool,
        first: impl Fn(usize) -> u32,
        reserve: usize,
    ) -> Result<()> {
        let mut rest = Vec::new();
        let mut dead = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_none())
            .peekable();
        let len = self.cache.as_ref().map_or(0, |c| c.len());
        let mut in_place: Vec<(usize, Admission)> = Vec::new();
        for a in admitted {
            let fits = self.cache.is_some() && a.slice.keep <= len;
            match dead.next_if(|_| fits) {
                Some(s) => in_place.push((s, *a)),
                None => rest.push(*a),
            }
        }
        if let Some(cache) = self.cache.as_mut() {
            for (chunk, group) in by_chunk(&in_place, |(_, a)| a.chunk) {
                let src = pool_cache(pool, chunk)?;
                let slots: Vec<usize> = group.iter().map(|(s, _)| *s).collect();
                let slices: Vec<_> = group.iter().map(|(_, a)| a.slice).collect();
                cache.write_rows(&slots, src, &slices)?;
            }
        }
        self.in_place += in_place.len();
        for (s, a) in &in_place {
            self.slots[*s] = Some(Live {
                row: a.row,
                next: first(a.row),
            });
        }
        if !rest.is_empty() {
            self.rebuild(&rest, pool, &first, reserve.max(RESERVE))?;
        }
        Ok(())
    }

    /// Drops dead slots and appends `new` rows, re-aligning everything into one fresh cache.
    fn rebuild(
        &mut self,
        new: &[Admission],
        pool: &Pool,
        first: &impl Fn(usize) -> u32,
        reserve: usize,
    ) -> Result<()> {
        self.compact()?;
        let taken = match self.cache {
            None => whole_chunk(new, pool)?,
            Some(_) => None,
        };
        let rows = match taken {
            // One chunk, every row exactly as prefilled: its cache becomes the batch's.
            Some((cache, rows)) => {
                self.cache = Some(cache.clone());
                rows
            }
            None => {
                let mut parts: Vec<KvCache> = Vec::new();
                let mut rows = Vec::new();
                for (chunk, group) in by_chunk(new, |a| a.chunk) {
                    let slices: Vec<_> = group.iter().map(|a| a.slice).collect();
                    parts.push(pool_cache(pool, chunk)?.gather(&slices, reserve)?);
                    rows.extend(group.iter().map(|a| a.row));
                }
                let mut all: Vec<&KvCache> = self.cache.iter().collect();
                all.extend(parts.iter());
                let merged = match all.as_slice() {
                    [one] if self.cache.is_none() => (*one).clone(),
                    many => KvCache::concat(many, reserve)?,
                };
                self.cache = Some(merged);
                self.copies += 1;
                rows
            }
        };
        self.slots.extend(rows.into_iter().map(|row| {
            Some(Live {
                row,
                next: first(row),
            })
        }));
        Ok(())
    }

    /// Removes dead slots without touching live rows except those moved into holes.
    pub fn compact(&mut self) -> Result<()> {
        if self.slots.iter().all(Option::is_some) {
            return Ok(());
        }
        let live: Vec<bool> = self.slots.iter().map(Option::is_some).collect();
        if !live.contains(&true) {
            self.cache = None;
            self.slots.clear();
            return Ok(());
        }
        let Some(cache) = self.cache.as_mut() else {
            self.slots.retain(Option::is_some);
            return Ok(());
        };
        let from = cache.retain_rows(&live)?;
        self.slots = from.iter().map(|&f| self.slots[f]).collect();
        Ok(())
    }

    /// Re-gathers the cache without left padding that no live row needs, when there is enough
    /// of it, with room for `reserve` more positions. Call on a compacted batch.
    pub fn trim(&mut self, reserve: usize) -> Result<()> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(());
        };
        let longest = (0..cache.batch())
            .map(|r| cache.row_len(r))
            .max()
            .unwrap_or(0);
        let waste = cache.len() - longest;
        if waste >= TRIM_MIN && waste * TRIM_FRACTION >= cache.len() {
            let all: Vec<usize> = (0..cache.batch()).collect();
            *cache = cache.select(&all, reserve.max(RESERVE))?;
            self.copies += 1;
        }
        Ok(())
    }

    /// `(B × len, Σ row lengths)` of the cache: the key positions the next step's attention
    /// computes, and those that belong to some row.
    pub fn occupancy(&self) -> (usize, usize) {
        self.cache.as_ref().map_or((0, 0), |c| {
            let valid = (0..c.batch()).map(|r| c.row_len(r)).sum();
            (c.batch() * c.len(), valid)
        })
    }

    /// The next input tokens `(B, 1)` and the cache to decode them with.
    pub fn step_inputs(&mut self, device: &Device) -> Result<(Tensor, &mut KvCache)> {
        let ids: Vec<u32> = self.slots.iter().map(|s| s.map_or(0, |l| l.next)).collect();
        let b = ids.len();
        let ids = Tensor::from_vec(ids, (b, 1), device)?;
        match self.cache.as_mut() {
            Some(c) => Ok((ids, c)),
            None => Err(internal("decode step without a cache")),
        }
    }
}

/// Groups items by chunk, keeping the order of first appearance and of items within a chunk.
fn by_chunk<T: Copy>(items: &[T], chunk: impl Fn(&T) -> usize) -> Vec<(usize, Vec<T>)> {
    let mut groups: Vec<(usize, Vec<T>)> = Vec::new();
    for it in items {
        let c = chunk(it);
        match groups.iter_mut().find(|(g, _)| *g == c) {
            Some((_, v)) => v.push(*it),
            None => groups.push((c, vec![*it])),
        }
    }
    groups
}

/// When `new` is every row of one pooled chunk, each taking its whole prefilled row, and the
/// chunk serves no other row (its cache may then be written to): that chunk's cache and the
/// rows in its row order.
fn whole_chunk<'p>(new: &[Admission], pool: &'p Pool) -> Result<Option<(&'p KvCache, Vec<usize>)>> {
    let Some(chunk) = new.first().map(|a| a.chunk) else {
        return Ok(None);
    };
    if !pool.is_drained(chunk) {
        return Ok(None);
    }
    let cache = pool_cache(pool, chunk)?;
    let mut rows = vec![None; cache.batch()];
    for a in new {
        let src = a.slice.row;
        let whole = src < rows.len() && a.slice.keep == cache.row_len(src);
        if a.chunk != chunk || !whole || rows[src].replace(a.row).is_some() {
            return Ok(None);
        }
    }
    Ok(rows
        .into_iter()
        .collect::<Option<Vec<usize>>>()
        .map(|rows| (cache, rows)))
}

fn pool_cache(pool: &Pool, chunk: usize) -> Result<&KvCache> {
    pool.cache(chunk)
        .ok_or_else(|| internal(&format!("chunk {chunk} released too early")))
}

fn internal(msg: &str) -> crate::Error {
    crate::Error::Internal(msg.to_string())
}
