//! GSM8K step splitter: one step per line, the answer line merged into the last step.
//!
//! Implements `GSM8K.split_solution_into_intermediate_steps` of the reference
//! (`src/treetune/tasks/gsm8k.py`, `use_original_format`, delimiter `"\n"`, answer marker
//! `"\n#### "`):
//!
//! 1. cut the response at the marker `"\n#### "`; if it occurs twice the reference's tuple
//!    unpacking fails and the trajectory is dropped as a parse failure: here `None`;
//! 2. split the part before the marker on `"\n"`; every piece after the first keeps its `"\n"`;
//! 3. leading blank pieces (Python `strip() == ""`) are merged into the first non-blank one;
//! 4. if the marker is present, the last non-blank piece, the blank pieces after it, the marker
//!    and the answer form the final step. Blank pieces in the middle stay steps of their own.
//!
//! Deviations: ranges are byte ranges (the marker and delimiter are ASCII, so the cut points are
//! the reference's, converted from characters to bytes); the reference can return an empty
//! first step for a response made only of blank lines and no marker, which we merge into the
//! following step (its value state equals the prompt's, so credit is unchanged); an empty
//! response gives the single empty range `0..0`.

use std::ops::Range;

use crate::pystr::is_blank;

const DELIMITER: &str = "\n";
const ANSWER_MARKER: &str = "\n#### ";

/// Split a GSM8K response into reasoning steps (byte ranges that partition `response`).
///
/// Returns `None` when the answer marker `"\n#### "` occurs more than once, which the reference
/// treats as a parse failure.
///
/// ```
/// use vine_math::split_gsm8k;
/// let response = "\nA\nB\n#### 72\n";
/// let steps = split_gsm8k(response).unwrap();
/// let pieces: Vec<&str> = steps.iter().map(|r| &response[r.clone()]).collect();
/// assert_eq!(pieces, ["\nA", "\nB\n#### 72\n"]);
/// ```
pub fn split_gsm8k(response: &str) -> Option<Vec<Range<usize>>> {
    let mut markers = response.match_indices(ANSWER_MARKER);
    let body_end = match (markers.next(), markers.next()) {
        (Some(_), Some(_)) => return None,
        (Some((at, _)), None) => Some(at),
        (None, _) => None,
    };
    let body = &response[..body_end.unwrap_or(response.len())];

    // Pieces of `body` split on "\n", as byte ranges without their delimiter.
    let mut pieces: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    for (at, _) in body.match_indices(DELIMITER) {
        pieces.push(start..at);
        start = at + DELIMITER.len();
    }
    pieces.push(start..body.len());
    let blank = |r: &Range<usize>| is_blank(&body[r.clone()]);

    // A step of the reference is a run of consecutive pieces; keep each run's first piece.
    let first = pieces.iter().position(|p| !blank(p));
    let mut run_starts: Vec<usize> = match first {
        Some(f) if f > 0 => std::iter::once(0).chain(f + 1..pieces.len()).collect(),
        _ => (0..pieces.len()).collect(),
    };
    if body_end.is_some() {
        // Runs after the first are single pieces; the first run is non-blank iff any piece is.
        let non_blank = |s: usize| {
            if s == 0 {
                first.is_some()
            } else {
                !blank(&pieces[s])
            }
        };
        let last_run = run_starts.iter().rposition(|&s| non_blank(s)).unwrap_or(0);
        run_starts.truncate(last_run + 1);
    }
    Some(to_ranges(response.len(), &pieces, &run_starts))
}

/// Byte ranges of the steps whose first pieces are `run_starts`; the last step runs to the end.
fn to_ranges(len: usize, pieces: &[Range<usize>], run_starts: &[usize]) -> Vec<Range<usize>> {
    if len == 0 {
        return std::iter::once(0..0).collect();
    }
    // A step after the first starts at its delimiter, one byte before its first piece.
    let begin = |i: usize| {
        if i == 0 {
            0
        } else {
            pieces[i].start - DELIMITER.len()
        }
    };
    let mut bounds: Vec<usize> = run_starts.iter().map(|&s| begin(s)).collect();
    bounds.push(len);
    bounds.dedup();
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}
