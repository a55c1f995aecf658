//! MATH step splitter: a LaTeX-aware sentence and line splitter.
//!
//! Implements `split_solution_inplace` of the reference (`math_extract_steps_inplace.py`), which
//! VinePPO's MATH configs use (`inplace_split_solution: true`, `answer_prefix: null`):
//!
//! 1. hide math behind 60-character placeholders ([`super::hide`]);
//! 2. split after a period followed by whitespace and a capital letter, unless the period ends a
//!    one-letter word or a two-letter word preceded by whitespace; split every piece before each
//!    `"\n"`; merge a piece that is `"\n"`, or that does not end with `.` and is shorter than 20
//!    (placeholders counting 60), into the next piece;
//! 3. split after each placeholder whose math ends with `.$`, `.$$`, `.\)` or `.\]`; merge a piece
//!    without such an ending and shorter than 20 characters (math restored) into the next one, or
//!    into the previous one if it is the last;
//! 4. restore the math and split before every newline inside a math region (only the first
//!    occurrence of identical math in a piece, as the reference's `str.replace` loop does); merge
//!    pieces that are a lone opening delimiter (`$`, `$$`, `\(`, `\[`, `\begin{…}`, `[asy]`) or
//!    shorter than 3 characters into the next piece, or the previous one if last;
//! 5. break pieces longer than 100 characters ([`super::long`]).
//!
//! All lengths and positions are counted in `char`s, like Python's; the result is converted to
//! byte ranges at the end.
//!
//! Deviations, all in cases where the reference raises and drops the trajectory: a response whose
//! merges collapse to a single short piece (under 20 characters without sentence-ending math, or
//! under 3) makes the reference's boundary list lose its `0` and fail its final assertion; we
//! return the whole response as one step. Nested math regions: see [`super::hide`]. An empty
//! response gives the single empty range `0..0` (the reference returns no step at all).

use std::ops::Range;

use super::hide::{Disguised, Unit, PLACEHOLDER_LEN};
use super::long::break_long_parts;
use crate::pystr::{is_space, is_word, strip};

/// Minimum length of a piece that does not end a sentence (phases 2 and 3).
const MIN_SENTENCE_LEN: usize = 20;
/// Minimum length of a piece after restoring the math (phase 4).
const MIN_LINE_LEN: usize = 3;

/// Split a MATH response into reasoning steps (byte ranges that partition `response`).
///
/// ```
/// use vine_math::split_math;
/// let response = "\nWe have $x = 1.$\nSo $y = 2$ and we are done.\n";
/// let steps = split_math(response);
/// let pieces: Vec<&str> = steps.iter().map(|r| &response[r.clone()]).collect();
/// assert_eq!(pieces, ["\nWe have $x = 1.$", "\nSo $y = 2$ and we are done.\n"]);
/// ```
pub fn split_math(response: &str) -> Vec<Range<usize>> {
    let chars: Vec<char> = response.chars().collect();
    if chars.is_empty() {
        return std::iter::once(0..0).collect();
    }
    let bounds = split_chars(&chars).unwrap_or_else(|| vec![0, chars.len()]);
    // Character boundaries → byte offsets.
    let mut byte_at: Vec<usize> = response.char_indices().map(|(b, _)| b).collect();
    byte_at.push(response.len());
    bounds
        .windows(2)
        .map(|w| byte_at[w[0]]..byte_at[w[1]])
        .collect()
}

/// Character boundaries `[0, …, len]` of the steps, or `None` where the reference collapses.
fn split_chars(text: &[char]) -> Option<Vec<usize>> {
    let hidden = Disguised::hide(text);
    let pieces = sentence_pieces(&hidden);
    let pieces = split_after_closing_math(&hidden, &pieces)?;
    let lines = split_math_lines(&hidden, &pieces, text)?;
    Some(break_long_parts(text, &lines))
}

/// Phase 2: sentence and line pieces of the disguised text, as unit boundaries.
fn sentence_pieces(hidden: &Disguised) -> Vec<usize> {
    let units = &hidden.units;
    let mut bounds = vec![0];
    for i in 0..units.len() {
        if is_sentence_break(units, i) {
            bounds.push(i);
        }
        if units[i] == Unit::Ch('\n') {
            bounds.push(i);
        }
    }
    bounds.push(units.len());
    let is_dot_end = |end: usize| end > 0 && units[end - 1] == Unit::Ch('.');
    merge_forward(&bounds, |start, end| {
        let newline_only = end == start + 1 && units[start] == Unit::Ch('\n');
        newline_only || (!is_dot_end(end) && end - start < MIN_SENTENCE_LEN)
    })
}

/// `re.split` position of the reference's sentence pattern
/// `(?<!\b[A-Za-z]\.)(?<!\s[A-Za-z]\.)(?<!\s[A-Za-z][A-Za-z]\.)(?<=\.)(?=\s+[A-Z])`.
fn is_sentence_break(units: &[Unit], p: usize) -> bool {
    let ch = |i: usize| match units.get(i) {
        Some(Unit::Ch(c)) => Some(*c),
        _ => None,
    };
    let letter = |i: usize| ch(i).is_some_and(|c| c.is_ascii_alphabetic());
    let space = |i: usize| ch(i).is_some_and(is_space);
    let word = |i: usize| ch(i).is_some_and(is_word);
    if p == 0 || ch(p - 1) != Some('.') {
        return false;
    }
    // Lookahead: one or more whitespace characters, then an ASCII capital.
    let mut q = p;
    while space(q) {
        q += 1;
    }
    if q == p || !ch(q).is_some_and(|c| c.is_ascii_uppercase()) {
        return false;
    }
    // Lookbehinds: a one-letter word, or a two-letter word after whitespace, before the period.
    let one_letter = p >= 2 && letter(p - 2) && (p == 2 || !word(p - 3));
    let spaced_one = p >= 3 && space(p - 3) && letter(p - 2);
    let spaced_two = p >= 4 && space(p - 4) && letter(p - 3) && letter(p - 2);
    !(one_letter || spaced_one || spaced_two)
}

/// Phase 3: split after placeholders of sentence-ending math, then merge short pieces.
fn split_after_closing_math(hidden: &Disguised, pieces: &[usize]) -> Option<Vec<usize>> {
    let mut bounds = vec![0];
    for w in pieces.windows(2) {
        for (at, id) in hidden.placeholders(w[0], w[1]) {
            if ends_sentence(&hidden.originals[id as usize]) {
                bounds.push(at + PLACEHOLDER_LEN);
            }
        }
        bounds.push(w[1]);
    }
    merge_short_pieces(&bounds, |start, end| {
        !ends_sentence(&hidden.restored_tail(start, end, 3))
            && hidden.restored_len(start, end) < MIN_SENTENCE_LEN
    })
}

/// Whether restored text ends with one of the reference's `tail_patterns`.
fn ends_sentence(text: &[char]) -> bool {
    const TAILS: [&[char]; 4] = [
        &['.', '$'],
        &['.', '$', '$'],
        &['.', '\\', ')'],
        &['.', '\\', ']'],
    ];
    TAILS.iter().any(|tail| text.ends_with(tail))
}

/// Phase 4: restore the math and split before each newline inside it; returns char boundaries.
fn split_math_lines(hidden: &Disguised, pieces: &[usize], text: &[char]) -> Option<Vec<usize>> {
    let mut bounds = vec![0];
    let mut seen: Vec<u32> = Vec::new();
    for w in pieces.windows(2) {
        seen.clear();
        for (at, id) in hidden.placeholders(w[0], w[1]) {
            // The reference replaces every occurrence of a placeholder once it handled the
            // first, so identical math later in the same piece is never split.
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let offset = hidden.restored_prefix[at];
            let original = &hidden.originals[id as usize];
            let newlines = original.iter().enumerate().filter(|(_, c)| **c == '\n');
            bounds.extend(newlines.map(|(j, _)| offset + j));
        }
        bounds.push(hidden.restored_prefix[w[1]]);
    }
    merge_short_pieces(&bounds, |start, end| {
        let piece = &text[start..end];
        end - start < MIN_LINE_LEN || is_lone_opening(piece)
    })
}

/// Whether `piece.strip()` fully matches one of the reference's `single_openings`.
fn is_lone_opening(piece: &[char]) -> bool {
    let piece: String = piece.iter().collect();
    let piece = strip(&piece);
    if matches!(piece, "$" | "$$" | r"\(" | r"\[" | "[asy]") {
        return true;
    }
    piece
        .strip_prefix(r"\begin{")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| !name.contains('}'))
}

/// The reference's forward merge loop (phase 2): while piece `i` is `short`, append piece `i+1`
/// to it; the last piece is never merged. Returns the new boundaries.
fn merge_forward(bounds: &[usize], short: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let mut out = vec![bounds[0]];
    let mut current = bounds[0];
    for &end in &bounds[1..bounds.len() - 1] {
        if !short(current, end) {
            out.push(end);
            current = end;
        }
    }
    out.push(bounds[bounds.len() - 1]);
    out
}

/// The reference's merge loop of phases 3 and 4: a `short` piece is merged into the next piece,
/// or into the previous one if it is the last. `None` when a single short piece remains (the
/// reference then drops the `0` boundary and fails).
fn merge_short_pieces(
    bounds: &[usize],
    short: impl Fn(usize, usize) -> bool,
) -> Option<Vec<usize>> {
    let last = bounds[bounds.len() - 1];
    let mut out = merge_forward(bounds, &short);
    let n = out.len();
    if short(out[n - 2], out[n - 1]) {
        if n == 2 {
            return None;
        }
        out.remove(n - 2);
    }
    debug_assert_eq!(out[out.len() - 1], last);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Vec<&str> {
        split_math(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn abbreviations_do_not_end_sentences() {
        let text = "\nThe value of x is about 3 cm. Then we use Dr. Smith's rule to get the answer here.\n";
        assert_eq!(steps(text).len(), 1);
        let text =
            "\nWe first compute the sum of all values. Then we compute the product of them.\n";
        assert_eq!(
            steps(text),
            [
                "\nWe first compute the sum of all values.",
                " Then we compute the product of them.\n"
            ]
        );
    }

    #[test]
    fn short_responses_are_one_step() {
        assert_eq!(steps("\nA\n"), ["\nA\n"]);
        assert_eq!(steps("x"), ["x"]);
        assert_eq!(split_math(""), vec![0..0]);
    }

    #[test]
    fn multibyte_text_gives_byte_ranges() {
        let text = "\nLet é be the first value, and ß the second.\nSo the total is $é+ß$.\n";
        let ranges = split_math(text);
        assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
        assert_eq!(steps(text).concat(), text);
    }
}
