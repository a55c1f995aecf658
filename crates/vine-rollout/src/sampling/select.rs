//! Finding the last kept token of a top-k / top-p truncation without sorting the vocabulary.
//!
//! Tokens are ranked by a [`key`]: weight descending, then id ascending, packed into a `u64`
//! (non-negative float bit patterns order like their values). The kept set is every token whose
//! key is at least the boundary's.
//!
//! - top-k: `select_nth_unstable` on the keys, O(V).
//! - top-p alone, vocabularies up to 1024: the weighted quickselect below over all keys.
//! - top-p alone, larger vocabularies: a radix pass first. Weights in `[0, 1]` fall into ~1000 buckets by their top
//!   float bits (exponent and three mantissa bits, so a bucket spans a factor 2^(1/8)); bucket
//!   masses are accumulated in one pass, scanned from the heaviest bucket down to the one where
//!   the cumulative mass reaches the threshold, and only that bucket's tokens are ordered, by a
//!   weighted quickselect. O(V) with a small constant for peaked and flat rows alike.
//! - top-k then top-p: the weighted quickselect over the `k` survivors.

/// Windows of the weighted quickselect at most this long are sorted instead of partitioned.
const SORT_WINDOW: usize = 32;
/// Bucket of a weight: its float bits shifted right by this (sign, 8 exponent bits, 3 mantissa).
const BUCKET_SHIFT: u32 = 20;
/// Vocabularies up to this size skip the radix pass: clearing the buckets would cost more (at
/// 2048 tokens the radix pass takes a row from 13 to 9 µs).
const RADIX_MIN: usize = 1024;

/// Canonical rank key of token `i` with weight `w ≥ 0`: a larger key comes first.
#[inline(always)]
pub(crate) fn key(w: f32, i: u32) -> u64 {
    ((w.to_bits() as u64) << 32) | (u32::MAX - i) as u64
}

#[inline(always)]
fn key_weight(k: u64) -> f64 {
    f32::from_bits((k >> 32) as u32) as f64
}

/// Scratch buffers for [`Selector::boundary`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Selector {
    /// Bitwise-negated keys: ascending order is canonical order.
    rkeys: Vec<u64>,
    /// Mass per weight bucket.
    buckets: Vec<f64>,
}

impl Selector {
    /// The key of the last kept token after top-`k` (`k < w.len()` to apply it) then top-`p`
    /// (`p < 1` to apply it) over weights `w`, whose total is `z`.
    pub fn boundary(&mut self, w: &[f32], k: usize, top_p: f64, z: f64) -> u64 {
        if k >= w.len() && w.len() > RADIX_MIN {
            return self.radix_boundary(w, top_p * z);
        }
        self.rkeys.clear();
        self.rkeys
            .extend(w.iter().enumerate().map(|(i, &x)| !key(x, i as u32)));
        if k < w.len() {
            self.rkeys.select_nth_unstable(k - 1);
            self.rkeys.truncate(k);
        }
        if top_p >= 1.0 {
            return !self.rkeys[k - 1];
        }
        let total = if k < w.len() {
            let kth = !self.rkeys[k - 1];
            super::kernels::sum_where(w, |i, x| key(x, i) >= kth)
        } else {
            z
        };
        weighted_select(&mut self.rkeys, 0.0, top_p * total)
    }

    /// top-p over all of `w`: bucket masses, then a weighted quickselect inside the bucket where
    /// the cumulative mass reaches `threshold`.
    fn radix_boundary(&mut self, w: &[f32], threshold: f64) -> u64 {
        let n = (1.0f32.to_bits() >> BUCKET_SHIFT) as usize + 1;
        // Four interleaved histograms: runs of tokens in one bucket would otherwise serialise
        // on a single memory location.
        self.buckets.clear();
        self.buckets.resize(4 * n, 0.0);
        let (h0, rest) = self.buckets.split_at_mut(n);
        let (h1, rest) = rest.split_at_mut(n);
        let (h2, h3) = rest.split_at_mut(n);
        let chunks = w.chunks_exact(4);
        for &x in chunks.remainder() {
            h0[(x.to_bits() >> BUCKET_SHIFT) as usize] += x as f64;
        }
        for c in chunks {
            h0[(c[0].to_bits() >> BUCKET_SHIFT) as usize] += c[0] as f64;
            h1[(c[1].to_bits() >> BUCKET_SHIFT) as usize] += c[1] as f64;
            h2[(c[2].to_bits() >> BUCKET_SHIFT) as usize] += c[2] as f64;
            h3[(c[3].to_bits() >> BUCKET_SHIFT) as usize] += c[3] as f64;
        }
        let mut acc = 0.0f64;
        let mut target = 0;
        for b in (0..n).rev() {
            let mass = (h0[b] + h1[b]) + (h2[b] + h3[b]);
            if mass > 0.0 {
                target = b;
                if acc + mass >= threshold {
                    break;
                }
                acc += mass;
            }
        }
        // Rounding can leave the threshold unreached: then every token is kept, and `target`
        // is the lightest non-empty bucket, whose last token is the boundary.
        self.rkeys.clear();
        self.rkeys.extend(
            w.iter()
                .enumerate()
                .filter(|(_, x)| (x.to_bits() >> BUCKET_SHIFT) as usize == target)
                .map(|(i, &x)| !key(x, i as u32)),
        );
        weighted_select(&mut self.rkeys, acc, threshold)
    }
}

/// The key at which `acc` plus the cumulative weight of `rkeys`, in canonical order, first
/// reaches `threshold` (the last key if it never does). Reorders `rkeys`.
fn weighted_select(rkeys: &mut [u64], mut acc: f64, threshold: f64) -> u64 {
    let weight = |rk: u64| key_weight(!rk);
    let (mut lo, mut hi) = (0, rkeys.len());
    while hi - lo > SORT_WINDOW {
        let mid = lo + (hi - lo) / 2;
        rkeys[lo..hi].select_nth_unstable(mid - lo);
        let better: f64 = rkeys[lo..mid].iter().map(|&rk| weight(rk)).sum();
        if acc + better >= threshold {
            hi = mid;
        } else if acc + better + weight(rkeys[mid]) >= threshold {
            return !rkeys[mid];
        } else {
            acc += better + weight(rkeys[mid]);
            lo = mid + 1;
        }
    }
    rkeys[lo..hi].sort_unstable();
    for &rk in &rkeys[lo..hi] {
        acc += weight(rk);
        if acc >= threshold {
            return !rk;
        }
    }
    !rkeys[hi.max(1) - 1]
}
