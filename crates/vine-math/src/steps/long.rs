//! Phase 5 of the MATH splitter: break pieces longer than 100 characters.
//!
//! Implements `try_to_break_very_long_parts` / `break_part_as_much_as_possible` of the reference.
//! A piece longer than 100 characters is cut in two, and the first half is examined again, until
//! every piece is short or cannot be cut:
//!
//! - a "language" cut, outside math: with the math hidden again, the candidate positions are
//!   after `,`, after the `and` of `\sand\s`, after `:`, after the `to` of `\sto\s` (each pattern
//!   tried in that order); the candidate closest to the middle of the disguised piece is taken if
//!   both restored halves have at least 40 characters;
//! - otherwise a "math" cut on the raw text, after `,$`, `,\)`, `,\]`, `=`, `\equiv`, `+` or
//!   `\cancelto` (in that order), closest to the middle, both halves at least 20 characters. A
//!   cut may therefore fall inside `$…$`.
//!
//! The reference records where math cuts happened in order to skip language cuts there, but it
//! records offsets relative to the piece being cut while testing absolute offsets; this quirk is
//! reproduced, since it decides which cut is tried.

use super::hide::{Disguised, Unit};
use crate::pystr::is_space;

/// Pieces longer than this are broken.
const MAX_PIECE_LEN: usize = 100;
/// Minimum restored length of both halves of a language cut.
const MIN_LANGUAGE_HALF: usize = 40;
/// Minimum length of both halves of a math cut.
const MIN_MATH_HALF: usize = 20;

/// Break every piece of `text` (between consecutive `bounds`) longer than 100 characters.
pub(super) fn break_long_parts(text: &[char], bounds: &[usize]) -> Vec<usize> {
    let mut out = vec![0];
    for w in bounds.windows(2) {
        if w[1] - w[0] > MAX_PIECE_LEN {
            let cuts = break_piece(&text[w[0]..w[1]]);
            out.extend(cuts[1..].iter().map(|c| w[0] + c));
        } else {
            out.push(w[1]);
        }
    }
    out
}

/// Boundaries `[0, …, piece.len()]` of one long piece after breaking.
fn break_piece(piece: &[char]) -> Vec<usize> {
    let mut bounds = vec![0, piece.len()];
    // The reference's `split_with_math` range [begin, end), begin = -1 while unset.
    let mut math_begin: isize = -1;
    let mut math_end: usize = 0;
    let mut i = 0;
    while i + 1 < bounds.len() {
        let (start, end) = (bounds[i], bounds[i + 1]);
        let sub = &piece[start..end];
        if sub.len() <= MAX_PIECE_LEN {
            i += 1;
            continue;
        }
        let in_math = math_begin <= start as isize && start < math_end;
        if !in_math {
            if let Some(cut) = language_cut(sub) {
                bounds.insert(i + 1, start + cut);
                continue;
            }
        }
        if let Some(cut) = math_cut(sub) {
            math_begin = if math_begin == -1 {
                cut as isize
            } else {
                math_begin.min(cut as isize)
            };
            math_end = math_end.max(sub.len());
            bounds.insert(i + 1, start + cut);
            continue;
        }
        i += 1;
    }
    bounds
}

/// The candidate closest to the middle of a piece of length `len` (first one on ties).
fn closest_to_middle(positions: &[usize], len: usize) -> Option<usize> {
    let distance = |p: usize| (2 * p).abs_diff(len);
    let mut best: Option<usize> = None;
    for &p in positions {
        if best.is_none_or(|b| distance(p) < distance(b)) {
            best = Some(p);
        }
    }
    best
}

/// A language cut of `sub` (a restored char offset), if one qualifies.
fn language_cut(sub: &[char]) -> Option<usize> {
    let hidden = Disguised::hide(sub);
    let units = &hidden.units;
    let ch = |i: usize| match units.get(i) {
        Some(Unit::Ch(c)) => Some(*c),
        _ => None,
    };
    let word_between_spaces = |i: usize, word: &str| {
        ch(i).is_some_and(is_space)
            && word
                .chars()
                .enumerate()
                .all(|(k, c)| ch(i + 1 + k) == Some(c))
            && ch(i + 1 + word.len()).is_some_and(is_space)
    };
    // (pattern matcher returning the match length, offset of the cut in the match)
    let patterns: [(Matcher, usize); 4] = [
        (&|i| (ch(i) == Some(',')).then_some(1), 1),
        (&|i| word_between_spaces(i, "and").then_some(5), 4),
        (&|i| (ch(i) == Some(':')).then_some(1), 1),
        (&|i| word_between_spaces(i, "to").then_some(4), 3),
    ];
    let total = hidden.restored_len(0, units.len());
    for (matcher, cut_offset) in patterns {
        let positions = find_all(units.len(), matcher, cut_offset);
        let Some(pos) = closest_to_middle(&positions, units.len()) else {
            continue;
        };
        let first = hidden.restored_len(0, pos);
        if first.min(total - first) >= MIN_LANGUAGE_HALF {
            return Some(first);
        }
    }
    None
}

/// A math cut of `sub`, if one qualifies.
fn math_cut(sub: &[char]) -> Option<usize> {
    const PATTERNS: [&str; 7] = [",$", r",\)", r",\]", "=", r"\equiv", "+", r"\cancelto"];
    for pattern in PATTERNS {
        let pattern: Vec<char> = pattern.chars().collect();
        let matcher = |i: usize| sub[i..].starts_with(&pattern).then_some(pattern.len());
        let positions = find_all(sub.len(), &matcher, pattern.len());
        let Some(pos) = closest_to_middle(&positions, sub.len()) else {
            continue;
        };
        if pos.min(sub.len() - pos) >= MIN_MATH_HALF {
            return Some(pos);
        }
    }
    None
}

/// Length of the pattern match starting at a position, if any.
type Matcher<'a> = &'a dyn Fn(usize) -> Option<usize>;

/// `[m.start() + cut_offset for m in re.finditer(…)]`: non-overlapping matches, left to right.
fn find_all(len: usize, matcher: Matcher, cut_offset: usize) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut i = 0;
    while i < len {
        match matcher(i) {
            Some(match_len) => {
                positions.push(i + cut_offset);
                i += match_len;
            }
            None => i += 1,
        }
    }
    positions
}
