//! From the splitter's step byte ranges to the tokens each step owns (spec 1.5).
//!
//! VinePPO gives every token the advantage of the step containing the token's *first*
//! character: a token straddling a boundary belongs to the step in which it starts. Given the
//! byte offset at which every response token starts in the decoded response text, and the step
//! ranges of that text, [`step_token_starts`] returns, for each step, the index of its first
//! token. Step `i` then owns tokens `starts[i]..starts[i + 1]` (the last one runs to the end).
//!
//! Deviations from the reference, which maps per character and never has to decide these:
//! - A step in which no token starts (a step shorter than the token that covers it) is merged
//!   into the previous step: it gets no entry, so it has no value state of its own. The MC value
//!   states are token prefixes, and such a step has no token boundary to cut at.
//! - The first entry is always 0. If the first step(s) own no token (possible only if the first
//!   token starts after byte 0), they are merged into the first step that does.
//! - A token starting at or beyond the end of the text (an appended EOS has no text) belongs to
//!   the last step, as the reference gives EOS the advantage of the last text token.
//! - Offsets are UTF-8 byte offsets on both sides (the reference uses Python character indices;
//!   the mapping is the same).

use std::ops::Range;

/// Inputs [`step_token_starts`] cannot map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// Token start offsets must be non-decreasing.
    #[error("token start offsets must be non-decreasing, but token {index} starts at byte {start} after token {} at byte {previous}", index - 1)]
    TokensOutOfOrder {
        /// The token whose start is smaller than its predecessor's.
        index: usize,
        /// Its start.
        start: usize,
        /// The predecessor's start.
        previous: usize,
    },
    /// Step ranges must be in text order.
    #[error("step ranges must be in text order, but step {index} starts at byte {start} before step {} at byte {previous}", index - 1)]
    StepsOutOfOrder {
        /// The step that starts before its predecessor.
        index: usize,
        /// Its start.
        start: usize,
        /// The predecessor's start.
        previous: usize,
    },
}

/// For each step that owns at least one token, the index of its first token (see the module
/// docs for the merge rules). Strictly increasing, starting at 0, one entry per resulting step.
///
/// - `token_starts`: byte offset where each response token starts in the decoded response
///   text, non-decreasing (`vine-model`'s `Tokenizer::decode_with_offsets`).
/// - `steps`: the splitter's byte ranges of the same text, in order (`vine-math`'s
///   `split_gsm8k` / `split_math`). Only their starts matter: byte `b` belongs to the last step
///   whose start is `<= b`, or to the first step if none is.
///
/// No tokens give an empty result; no steps give `[0]` (one step owning every token).
pub fn step_token_starts(
    token_starts: &[usize],
    steps: &[Range<usize>],
) -> Result<Vec<usize>, SpanError> {
    check_order(token_starts, steps)?;
    if token_starts.is_empty() {
        return Ok(Vec::new());
    }
    let mut starts = vec![0];
    // `step` is the step owning the current token; advance it as tokens move right.
    let mut step = 0;
    for (index, &byte) in token_starts.iter().enumerate() {
        let before = step;
        while step + 1 < steps.len() && steps[step + 1].start <= byte {
            step += 1;
        }
        if step != before && index > 0 {
            starts.push(index);
        }
    }
    Ok(starts)
}

/// The step (index into the result of [`step_token_starts`]) owning each of `n_tokens` tokens.
pub fn token_steps(step_starts: &[usize], n_tokens: usize) -> Vec<usize> {
    let mut owner = Vec::with_capacity(n_tokens);
    for (step, &start) in step_starts.iter().enumerate() {
        let end = step_starts
            .get(step + 1)
            .copied()
            .unwrap_or(n_tokens)
            .min(n_tokens);
        owner.extend(std::iter::repeat_n(step, end.saturating_sub(start)));
    }
    owner
}

fn check_order(token_starts: &[usize], steps: &[Range<usize>]) -> Result<(), SpanError> {
    for (index, pair) in token_starts.windows(2).enumerate() {
        if pair[1] < pair[0] {
            return Err(SpanError::TokensOutOfOrder {
                index: index + 1,
                start: pair[1],
                previous: pair[0],
            });
        }
    }
    for (index, pair) in steps.windows(2).enumerate() {
        if pair[1].start < pair[0].start {
            return Err(SpanError::StepsOutOfOrder {
                index: index + 1,
                start: pair[1].start,
                previous: pair[0].start,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
