//! Text at the edges of the token-only engine: prompt encoding, stop strings, decoding
//! responses with per-token offsets.

use anyhow::{Context, Result};
use vine_data::{Example, Task};
use vine_model::Tokenizer;
use vine_rollout::{StopHit, StopStrings};

/// Prompt token ids of `ex`: BOS (when the template wants it and the tokenizer has one) then
/// the templated query, tokenised without the tokenizer's own special tokens.
pub fn encode_prompt(task: &Task, tokenizer: &Tokenizer, ex: &Example) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    if task.prompt().bos() {
        ids.extend(tokenizer.bos_id());
    }
    let text = task.query(ex);
    ids.extend(
        tokenizer
            .encode(&text, false)
            .with_context(|| format!("tokenising the prompt of problem `{}`", ex.id))?,
    );
    Ok(ids)
}

/// Stop strings checked on the tail of the generated tokens.
pub struct TextStops<'a> {
    tokenizer: &'a Tokenizer,
    strings: Vec<String>,
    window: usize,
}

impl<'a> TextStops<'a> {
    /// Stops on any of `strings` (empty strings are ignored).
    pub fn new(tokenizer: &'a Tokenizer, strings: &[String]) -> Self {
        let strings: Vec<String> = strings.iter().filter(|s| !s.is_empty()).cloned().collect();
        // Every token decodes to at least one byte in practice; keep a margin for tokenizers
        // whose pieces decode to nothing on their own.
        let window = strings.iter().map(|s| s.len()).max().unwrap_or(0) + 4;
        Self {
            tokenizer,
            strings,
            window,
        }
    }

    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl StopStrings for TextStops<'_> {
    fn check(&self, generated: &[u32]) -> Option<StopHit> {
        if self.strings.is_empty() || generated.is_empty() {
            return None;
        }
        let base = generated.len().saturating_sub(self.window);
        let (text, offsets) = self
            .tokenizer
            .decode_with_offsets(&generated[base..])
            .ok()?;
        let last_start = *offsets.last()?;
        let mut best: Option<(usize, usize)> = None; // (byte position, string index)
        for (index, s) in self.strings.iter().enumerate() {
            // Only an occurrence completed by the last token is new.
            for (pos, _) in text.match_indices(s.as_str()) {
                if pos + s.len() > last_start && best.is_none_or(|(p, _)| pos < p) {
                    best = Some((pos, index));
                    break;
                }
            }
        }
        let (pos, index) = best?;
        let k = offsets.iter().rposition(|&o| o <= pos).unwrap_or(0);
        Some(StopHit {
            index,
            keep: base + k,
        })
    }
}

/// A decoded response: its text and the byte where each token starts.
pub struct Decoded {
    /// Response text.
    pub text: String,
    /// Start byte of every token in `text`.
    pub starts: Vec<usize>,
}

/// Decodes response tokens with per-token offsets.
pub fn decode_response(tokenizer: &Tokenizer, tokens: &[u32]) -> Result<Decoded> {
    let (text, starts) = tokenizer
        .decode_with_offsets(tokens)
        .context("decoding a response")?;
    Ok(Decoded { text, starts })
}
