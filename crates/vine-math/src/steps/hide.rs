//! Phase 1 of the MATH splitter: hide math regions behind fixed-width placeholders.
//!
//! Implements `replace_math_with_placeholders_corrected` of the reference
//! (`math_extract_steps_inplace.py`). Eight patterns are applied one after the other, each to the
//! output of the previous one, with Python `re.sub` semantics (leftmost match, scan resumes after
//! it, `DOTALL`):
//!
//! 1. `[asy]…[/asy]`  2. `$\begin{tabular}…\end{tabular}$`  3. `\begin{tabular}…\end{tabular}`
//! 4. `\(…\)`  5. `\[…\]`  6. `$$…$$`  7. `$…$` (not after `\`, at least one character inside,
//!    the last not `\`, the closing `$` not followed by `$`)  8. `\begin{env}…\end{env}`.
//!
//! The reference's placeholder is the 60-character string `<|PLACEHOLDER_<md5>_PLACEHOLDER|>`.
//! Only its length and the fact that its characters are neither letters, digits, whitespace nor
//! any character a later pattern looks for matter to the algorithm, so a placeholder here is 60
//! [`Unit::Slot`]s that compare unequal to every character. Identical math shares one id, as
//! identical text shares one md5 in the reference.
//!
//! Deviation: when a later pattern swallows an earlier placeholder (`$x$` inside
//! `\begin{cases}…\end{cases}`, or, common in truncated responses, an unbalanced `$` pairing
//! across a `\[…\]` block), the reference stores the placeholder text inside the outer region,
//! cannot restore it, and fails an assertion, dropping the trajectory. We store the fully
//! restored text, so such regions behave as one math region. None of the 25,000 MATH reference
//! solutions (with and without the SFT newlines) hits this case; outside it, splits are
//! identical to the reference's on all of them.

use std::collections::HashMap;

/// Width of a placeholder, in units (the reference's placeholder string length).
pub(super) const PLACEHOLDER_LEN: usize = 60;

/// One position of the disguised text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Unit {
    /// A character outside hidden math.
    Ch(char),
    /// Position `offset` (0..60) of the placeholder of hidden region `id`.
    Slot { id: u32, offset: u8 },
}

/// Text with its math regions hidden, and the original text of each region.
pub(super) struct Disguised {
    /// The disguised text; each placeholder occupies [`PLACEHOLDER_LEN`] consecutive slots.
    pub units: Vec<Unit>,
    /// `originals[id]`: the text region `id` hides, fully restored.
    pub originals: Vec<Vec<char>>,
    /// `restored_prefix[i]`: restored length of `units[..i]` (valid outside placeholders).
    pub restored_prefix: Vec<usize>,
}

impl Disguised {
    /// Hide the math regions of `text` (pattern order as in the module docs).
    pub fn hide(text: &[char]) -> Self {
        let mut hider = Hider {
            originals: Vec::new(),
            ids: HashMap::new(),
        };
        let mut units: Vec<Unit> = text.iter().map(|&c| Unit::Ch(c)).collect();
        let literal_pairs: [(&str, &str); 6] = [
            ("[asy]", "[/asy]"),
            (r"$\begin{tabular}", r"\end{tabular}$"),
            (r"\begin{tabular}", r"\end{tabular}"),
            (r"\(", r"\)"),
            (r"\[", r"\]"),
            ("$$", "$$"),
        ];
        for (open, close) in literal_pairs {
            units = hider.hide_delimited(&units, &chars(open), &chars(close));
        }
        units = hider.hide_dollars(&units);
        units = hider.hide_environments(&units);
        let originals = hider.originals;
        let mut restored_prefix = Vec::with_capacity(units.len() + 1);
        let mut total = 0;
        restored_prefix.push(0);
        for unit in &units {
            total += match unit {
                Unit::Ch(_) => 1,
                Unit::Slot { id, offset: 0 } => originals[*id as usize].len(),
                Unit::Slot { .. } => 0,
            };
            restored_prefix.push(total);
        }
        Disguised {
            units,
            originals,
            restored_prefix,
        }
    }

    /// Restored length of `units[start..end]` (both ends outside placeholders).
    pub fn restored_len(&self, start: usize, end: usize) -> usize {
        self.restored_prefix[end] - self.restored_prefix[start]
    }

    /// Placeholder starts in `units[start..end]`, as `(position, id)`.
    pub fn placeholders(
        &self,
        start: usize,
        end: usize,
    ) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.units[start..end]
            .iter()
            .enumerate()
            .filter_map(move |(i, u)| match u {
                Unit::Slot { id, offset: 0 } => Some((start + i, *id)),
                _ => None,
            })
    }

    /// The last (up to) `k` characters of the restored text of `units[start..end]`, in order.
    pub fn restored_tail(&self, start: usize, end: usize, k: usize) -> Vec<char> {
        let mut tail = Vec::with_capacity(k);
        let mut i = end;
        while i > start && tail.len() < k {
            match self.units[i - 1] {
                Unit::Ch(c) => {
                    tail.push(c);
                    i -= 1;
                }
                Unit::Slot { id, offset } => {
                    let original = &self.originals[id as usize];
                    tail.extend(original.iter().rev().take(k - tail.len()));
                    i = (i - 1).saturating_sub(offset as usize).max(start);
                }
            }
        }
        tail.reverse();
        tail
    }
}

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn is_char(units: &[Unit], i: usize, c: char) -> bool {
    units.get(i) == Some(&Unit::Ch(c))
}

fn starts_with(units: &[Unit], at: usize, pattern: &[char]) -> bool {
    units.len() >= at + pattern.len()
        && pattern
            .iter()
            .enumerate()
            .all(|(k, &c)| units[at + k] == Unit::Ch(c))
}

fn find(units: &[Unit], from: usize, pattern: &[char]) -> Option<usize> {
    (from..units.len()).find(|&i| starts_with(units, i, pattern))
}

struct Hider {
    originals: Vec<Vec<char>>,
    ids: HashMap<Vec<char>, u32>,
}

impl Hider {
    /// Append the placeholder for `units[start..end]` to `out`.
    fn push_placeholder(&mut self, out: &mut Vec<Unit>, units: &[Unit], start: usize, end: usize) {
        let mut original = Vec::new();
        for unit in &units[start..end] {
            match unit {
                Unit::Ch(c) => original.push(*c),
                Unit::Slot { id, offset: 0 } => {
                    original.extend_from_slice(&self.originals[*id as usize]);
                }
                Unit::Slot { .. } => {}
            }
        }
        let next_id = self.originals.len() as u32;
        let id = *self.ids.entry(original.clone()).or_insert(next_id);
        if id == next_id {
            self.originals.push(original);
        }
        out.extend((0..PLACEHOLDER_LEN as u8).map(|offset| Unit::Slot { id, offset }));
    }

    /// `re.sub(open + ".*?" + close, …, DOTALL)` for literal delimiters.
    fn hide_delimited(&mut self, units: &[Unit], open: &[char], close: &[char]) -> Vec<Unit> {
        let mut out = Vec::with_capacity(units.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(start) = find(units, from, open) {
            // If no closing delimiter follows this opening, none follows a later one either.
            let Some(close_at) = find(units, start + open.len(), close) else {
                break;
            };
            let end = close_at + close.len();
            out.extend_from_slice(&units[copied..start]);
            self.push_placeholder(&mut out, units, start, end);
            copied = end;
            from = end;
        }
        out.extend_from_slice(&units[copied..]);
        out
    }

    /// `re.sub(r"(?<!\\)\$(.*?[^\\])\$(?!\$)", …, DOTALL)`.
    fn hide_dollars(&mut self, units: &[Unit]) -> Vec<Unit> {
        let closes_at = |q: usize| {
            is_char(units, q, '$') && !is_char(units, q - 1, '\\') && !is_char(units, q + 1, '$')
        };
        let mut out = Vec::with_capacity(units.len());
        let mut copied = 0;
        let mut p = 0;
        while p < units.len() {
            if !(is_char(units, p, '$') && (p == 0 || !is_char(units, p - 1, '\\'))) {
                p += 1;
                continue;
            }
            // The closing condition does not depend on `p` beyond `q >= p + 2`, so if no `$`
            // closes this one, no later `$` can open a match.
            let Some(q) = (p + 2..units.len()).find(|&q| closes_at(q)) else {
                break;
            };
            out.extend_from_slice(&units[copied..p]);
            self.push_placeholder(&mut out, units, p, q + 1);
            copied = q + 1;
            p = q + 1;
        }
        out.extend_from_slice(&units[copied..]);
        out
    }

    /// `re.sub(r"\\begin\{([^}]*)\}.*?\\end\{\1\}", …, DOTALL)`.
    fn hide_environments(&mut self, units: &[Unit]) -> Vec<Unit> {
        let begin = chars(r"\begin{");
        if find(units, 0, &begin).is_none() {
            return units.to_vec();
        }
        let end_tags = EndTagIndex::new(units);
        let mut out = Vec::with_capacity(units.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(start) = find(units, from, &begin) {
            let name_start = start + begin.len();
            // `[^}]*` then `}`: the name runs to the first `}`; without one nothing can match.
            let Some(name_len) = end_tags.name_len(name_start) else {
                break;
            };
            let after_name = name_start + name_len + 1;
            match end_tags.first_at_or_after(units, name_start, name_len, after_name) {
                Some(tag_start) => {
                    let end = tag_start + r"\end{".len() + name_len + 1;
                    out.extend_from_slice(&units[copied..start]);
                    self.push_placeholder(&mut out, units, start, end);
                    copied = end;
                    from = end;
                }
                None => from = start + 1,
            }
        }
        out.extend_from_slice(&units[copied..]);
        out
    }
}

/// Positions of every `\end{name}` in a text, grouped by a hash of the name, so that each
/// `\begin{name}` finds its closing tag by binary search instead of a scan. Together with the
/// table of next `}` positions this keeps the pass near-linear on adversarial input.
struct EndTagIndex {
    /// Next `}` at or after each position (`units.len()` if none).
    next_close: Vec<usize>,
    hashes: PrefixHash,
    /// (name hash, name length) → sorted starts of `\end{name}`.
    by_name: HashMap<(u64, usize), Vec<usize>>,
}

impl EndTagIndex {
    fn new(units: &[Unit]) -> Self {
        let mut next_close = vec![units.len(); units.len() + 1];
        for i in (0..units.len()).rev() {
            next_close[i] = if units[i] == Unit::Ch('}') {
                i
            } else {
                next_close[i + 1]
            };
        }
        let hashes = PrefixHash::new(units);
        let end = chars(r"\end{");
        let mut by_name: HashMap<(u64, usize), Vec<usize>> = HashMap::new();
        for at in (0..units.len()).filter(|&i| starts_with(units, i, &end)) {
            let name_start = at + end.len();
            let close = next_close[name_start];
            if close < units.len() {
                let key = (hashes.of(name_start, close), close - name_start);
                by_name.entry(key).or_default().push(at);
            }
        }
        EndTagIndex {
            next_close,
            hashes,
            by_name,
        }
    }

    /// Length of the name of a `\begin{` whose name starts at `name_start`, if a `}` closes it.
    fn name_len(&self, name_start: usize) -> Option<usize> {
        let close = self.next_close[name_start];
        (close < self.next_close.len() - 1).then(|| close - name_start)
    }

    /// Start of the first `\end{name}` at or after `from`, `name = units[name_start..][..len]`.
    fn first_at_or_after(
        &self,
        units: &[Unit],
        name_start: usize,
        len: usize,
        from: usize,
    ) -> Option<usize> {
        let key = (self.hashes.of(name_start, name_start + len), len);
        let positions = self.by_name.get(&key)?;
        let name = &units[name_start..name_start + len];
        let tag_name = |at: usize| &units[at + r"\end{".len()..][..len];
        let k = positions.partition_point(|&p| p < from);
        positions[k..]
            .iter()
            .copied()
            .find(|&at| tag_name(at) == name)
    }
}

/// Polynomial prefix hashes modulo 2^61 − 1, for O(1) hashes of any slice.
struct PrefixHash {
    prefix: Vec<u64>,
    powers: Vec<u64>,
}

impl PrefixHash {
    const MODULUS: u64 = (1 << 61) - 1;
    const BASE: u64 = 1_000_003;

    /// `a·b mod (2^61 − 1)` for `a, b < 2^61`, folding the Mersenne modulus without division.
    fn mul(a: u64, b: u64) -> u64 {
        let product = a as u128 * b as u128;
        let folded = (product as u64 & Self::MODULUS) + (product >> 61) as u64;
        let folded = (folded & Self::MODULUS) + (folded >> 61);
        if folded >= Self::MODULUS {
            folded - Self::MODULUS
        } else {
            folded
        }
    }

    fn new(units: &[Unit]) -> Self {
        let mut prefix = Vec::with_capacity(units.len() + 1);
        let mut powers = Vec::with_capacity(units.len() + 1);
        prefix.push(0);
        powers.push(1);
        for unit in units {
            let value = match *unit {
                Unit::Ch(c) => c as u64 + 1,
                Unit::Slot { id, offset } => (1 << 40) + ((id as u64) << 8) + offset as u64,
            };
            let last = prefix[prefix.len() - 1];
            let next = Self::mul(last, Self::BASE) + value % Self::MODULUS;
            prefix.push(if next >= Self::MODULUS {
                next - Self::MODULUS
            } else {
                next
            });
            powers.push(Self::mul(powers[powers.len() - 1], Self::BASE));
        }
        PrefixHash { prefix, powers }
    }

    /// Hash of `units[start..end]`.
    fn of(&self, start: usize, end: usize) -> u64 {
        let shifted = Self::mul(self.prefix[start], self.powers[end - start]);
        (self.prefix[end] + Self::MODULUS - shifted) % Self::MODULUS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(d: &Disguised) -> String {
        let mut s = String::new();
        for u in &d.units {
            match u {
                Unit::Ch(c) => s.push(*c),
                Unit::Slot { id, offset: 0 } => s.extend(d.originals[*id as usize].iter()),
                Unit::Slot { .. } => {}
            }
        }
        s
    }

    fn regions(text: &str) -> Vec<String> {
        let d = Disguised::hide(&chars(text));
        assert_eq!(restore(&d), text);
        let mut seen = Vec::new();
        for (_, id) in d.placeholders(0, d.units.len()) {
            seen.push(d.originals[id as usize].iter().collect());
        }
        seen
    }

    #[test]
    fn hides_regions_in_pattern_order() {
        assert_eq!(regions(r"a $x$ b \(y\) c"), vec!["$x$", r"\(y\)"]);
        assert_eq!(regions(r"$$x$$ and $y$."), vec!["$$x$$", "$y$"]);
        assert_eq!(regions(r"cost \$5 and \$6"), Vec::<String>::new());
        assert_eq!(regions(r"$a$$b$"), vec!["$a$$"]);
        assert_eq!(
            regions("\\begin{align*}\nx\n\\end{align*}"),
            vec!["\\begin{align*}\nx\n\\end{align*}"]
        );
        assert_eq!(
            regions(r"\begin{a}\begin{b}\end{b}"),
            vec![r"\begin{b}\end{b}"]
        );
        assert_eq!(regions("$1"), Vec::<String>::new());
    }

    #[test]
    fn mersenne_multiplication_matches_u128_remainder() {
        let m = PrefixHash::MODULUS;
        for (a, b) in [
            (m - 1, m - 1),
            (0, 5),
            (1 << 60, 3),
            (123_456_789, 987_654_321_987),
        ] {
            let expected = ((a as u128 * b as u128) % m as u128) as u64;
            assert_eq!(PrefixHash::mul(a, b), expected);
        }
    }

    #[test]
    fn nested_regions_restore_fully() {
        let text = r"\begin{cases} 1 & \text{if $x>0$} \end{cases}";
        assert_eq!(regions(text), vec![text]);
        let d = Disguised::hide(&chars(text));
        assert_eq!(d.restored_len(0, d.units.len()), text.chars().count());
        assert_eq!(d.restored_tail(0, d.units.len(), 3), chars("es}"));
    }
}
