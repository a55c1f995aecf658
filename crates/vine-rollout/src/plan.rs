//! Which prefixes to prefill: a flattened prefix tree over all requests.
//!
//! Every sample of every request is a *row* that continues its request's prefix `P` (length
//! `L`): the cache must hold `P[..L−1]` and the first decode step feeds `P[L−1]`. Rows whose
//! prefixes are equal or nested (one a prefix of the other) can all be served by prefilling the
//! longest of them once and gathering the first `L−1` tokens for each row
//! ([`vine_model::RowSlice`]). VinePPO's value requests are exactly that: the prompt and every
//! step boundary of one trajectory are prefixes of the same token sequence (spec §1.3).
//!
//! The tree is built by sorting the distinct prefixes: a prefix that is a prefix of any other is
//! then a prefix of its immediate successor (the prefixes extending `p` form a contiguous run
//! right after `p`), so one backward pass assigns every prefix to a *leaf*, a prefix that extends
//! no other. Only leaves are prefilled. Branching prefixes (siblings sharing a stem, such as
//! the 8 trajectories of one prompt) are not merged: each leaf is prefilled in full, because the
//! cache layout (one left-padded run per row) cannot append different suffixes to a shared stem
//! in one call. That costs little: in VinePPO's Monte-Carlo stage the prefill of all leaves is a
//! few percent of the work, against `K = 9` continuations decoded from every state.
//!
//! Leaves are ordered longest first, and rows within a leaf by decreasing prefix length: the
//! scheduler then admits long rows first and later rows fit into the cache in place.

use crate::request::{Request, SamplingParams};

/// One sample to generate.
#[derive(Debug, Clone)]
pub(crate) struct RowSpec {
    /// Index of its request.
    pub request: usize,
    /// Index of the sample within the request.
    pub sample: usize,
    /// Tokens of the prefix held in the cache (`L − 1`).
    pub keep: usize,
    /// The last prefix token, fed as the first decode input.
    pub first: u32,
    /// Most tokens it may generate (stop token included); 0 means it is finished before it
    /// starts.
    pub budget: usize,
}

/// A prefix to prefill once, serving the rows listed in `rows`.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Request whose prefix is this leaf.
    pub request: usize,
    /// Tokens to prefill: the first `len` tokens of that prefix (its length − 1).
    pub len: usize,
    /// Rows served, by decreasing `keep`.
    pub rows: Vec<usize>,
}

/// Rows and the leaves that serve them.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Row `r` of the requests in order: request 0's samples first.
    pub rows: Vec<RowSpec>,
    /// Leaves, longest first. Rows with a zero budget belong to no leaf.
    pub leaves: Vec<Leaf>,
}

impl Plan {
    /// Plans `requests` (already validated: non-empty prefixes). With `sharing` off every row is
    /// its own leaf, so every row is prefilled separately.
    pub fn new(requests: &[Request], params: &SamplingParams, sharing: bool) -> Plan {
        let mut rows = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let budget = r.budget(params);
            let (keep, first) = (r.prefix.len() - 1, r.prefix[r.prefix.len() - 1]);
            rows.extend((0..r.n).map(|sample| RowSpec {
                request: i,
                sample,
                keep,
                first,
                budget,
            }));
        }
        let active: Vec<usize> = (0..rows.len()).filter(|&r| rows[r].budget > 0).collect();
        let mut leaves = if sharing {
            shared_leaves(requests, &rows, &active)
        } else {
            active
                .iter()
                .map(|&r| Leaf {
                    request: rows[r].request,
                    len: rows[r].keep,
                    rows: vec![r],
                })
                .collect()
        };
        for leaf in &mut leaves {
            leaf.rows
                .sort_by_key(|&r| (std::cmp::Reverse(rows[r].keep), r));
        }
        leaves.sort_by_key(|l| (std::cmp::Reverse(l.len), l.request));
        Plan { rows, leaves }
    }
}

/// Leaves of the prefix tree over the requests that own the `active` rows.
fn shared_leaves(requests: &[Request], rows: &[RowSpec], active: &[usize]) -> Vec<Leaf> {
    let mut reqs: Vec<usize> = active.iter().map(|&r| rows[r].request).collect();
    reqs.dedup(); // rows are grouped by request
    reqs.sort_by(|&a, &b| requests[a].prefix.cmp(&requests[b].prefix).then(a.cmp(&b)));
    // cover[i]: position (in `reqs`) of the leaf serving reqs[i].
    let mut cover: Vec<usize> = (0..reqs.len()).collect();
    for i in (0..reqs.len().saturating_sub(1)).rev() {
        if requests[reqs[i + 1]]
            .prefix
            .starts_with(&requests[reqs[i]].prefix)
        {
            cover[i] = cover[i + 1];
        }
    }
    let mut leaf_of = vec![usize::MAX; reqs.len()];
    let mut leaves: Vec<Leaf> = Vec::new();
    for (i, &c) in cover.iter().enumerate() {
        if c == i {
            leaf_of[i] = leaves.len();
            leaves.push(Leaf {
                request: reqs[i],
                len: requests[reqs[i]].prefix.len() - 1,
                rows: Vec::new(),
            });
        }
    }
    // Requests are in row order within `active`; map each to its position in `reqs`.
    let mut pos = vec![usize::MAX; requests.len()];
    for (i, &q) in reqs.iter().enumerate() {
        pos[q] = i;
    }
    for &r in active {
        let i = pos[rows[r].request];
        leaves[leaf_of[cover[i]]].rows.push(r);
    }
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(prefix: &[u32], n: usize) -> Request {
        Request::new(prefix.to_vec(), n, 0)
    }

    #[test]
    fn nested_and_identical_prefixes_share_a_leaf() {
        let requests = [
            req(&[1, 2], 2),
            req(&[1, 2, 3, 4], 1),
            req(&[1, 3], 1),
            req(&[1, 2, 3], 1),
            req(&[1, 2], 1),
        ];
        let p = Plan::new(&requests, &SamplingParams::greedy(5), true);
        assert_eq!(p.rows.len(), 6);
        assert_eq!(p.leaves.len(), 2);
        assert_eq!((p.leaves[0].request, p.leaves[0].len), (1, 3));
        // Rows by decreasing keep: [1,2,3,4] (row 2), [1,2,3] (row 4), then the [1,2] rows.
        assert_eq!(p.leaves[0].rows, vec![2, 4, 0, 1, 5]);
        assert_eq!(
            (p.leaves[1].request, p.leaves[1].rows.clone()),
            (2, vec![3])
        );
        assert_eq!((p.rows[4].keep, p.rows[4].first), (2, 3));
    }

    #[test]
    fn without_sharing_every_row_is_a_leaf() {
        let requests = [req(&[1, 2], 2), req(&[1, 2, 3], 1)];
        let p = Plan::new(&requests, &SamplingParams::greedy(5), false);
        let leaves: Vec<(usize, usize)> = p.leaves.iter().map(|l| (l.request, l.len)).collect();
        assert_eq!(leaves, vec![(1, 2), (0, 1), (0, 1)]);
    }

    #[test]
    fn rows_without_budget_get_no_leaf() {
        let mut requests = [req(&[1, 2, 3], 1), req(&[1, 2], 2)];
        requests[0].max_new_tokens = Some(0);
        let p = Plan::new(&requests, &SamplingParams::greedy(5), true);
        assert_eq!(p.leaves.len(), 1);
        assert_eq!(
            (p.leaves[0].request, p.leaves[0].rows.clone()),
            (1, vec![1, 2])
        );
    }

    proptest! {
        /// Every row with a budget is served by exactly one leaf that extends its prefix, and no
        /// leaf is a prefix of another.
        #[test]
        fn leaves_cover_rows(prefixes in prop::collection::vec(
            prop::collection::vec(0u32..3, 1..6), 1..12)
        ) {
            let requests: Vec<Request> = prefixes.iter().map(|p| req(p, 2)).collect();
            let p = Plan::new(&requests, &SamplingParams::greedy(1), true);
            let mut served = vec![0; p.rows.len()];
            for leaf in &p.leaves {
                let lp = &requests[leaf.request].prefix;
                for &r in &leaf.rows {
                    served[r] += 1;
                    prop_assert!(lp.starts_with(&requests[p.rows[r].request].prefix));
                }
                for other in &p.leaves {
                    let op = &requests[other.request].prefix;
                    prop_assert!(other.request == leaf.request || !op.starts_with(lp));
                }
            }
            prop_assert!(served.iter().all(|&s| s == 1));
        }
    }
}
