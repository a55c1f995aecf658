//! One sampled solution, as credit assignment and collation see it.
//!
//! An [`Episode`] is the token-level record of one trajectory (spec 1.5–1.6): the prompt ids
//! (with BOS), the response ids (with EOS appended iff the response finished, the "EOS trick"),
//! the 0/1 reward, and where each reasoning step starts. Step boundaries are **token** indices:
//! the data crate maps the splitter's character spans to the token whose first byte starts the
//! step, which is the reference's "a token belongs to the step its first character is in".
//!
//! Invariants, checked once in [`Episode::new`] so that every later function can index freely:
//! - the prompt is non-empty;
//! - the response has at least one text token (EOS aside): an empty solution has no steps;
//! - `step_starts[0] == 0`, strictly increasing, every start inside the text part, i.e. before
//!   the EOS (EOS is not part of any step's text; it inherits the last token's advantage);
//! - the reward is finite, and an unfinished episode scores exactly 0 (spec 1.6: unfinished
//!   responses get the configured penalty, which is 0).
//!
//! Deviation: a step in which no token starts (the splitter cut twice inside one token) cannot be
//! represented, so whoever maps character spans to tokens merges it into the step its token
//! starts in. The reference keeps such a step and rolls out its mid-token state, but no token
//! ever reads that step's advantage; after merging, the tokens carry `V[k+1] − V[k−1]` instead
//! of `V[k] − V[k−1]`, and the rollout from the mid-token state is not needed.

use crate::error::{Result, RlError};

/// A trajectory with its reward and reasoning-step boundaries. See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    group: usize,
    prompt: Vec<u32>,
    response: Vec<u32>,
    finished: bool,
    reward: f32,
    step_starts: Vec<usize>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RlError {
    RlError::Episode {
        field,
        reason: reason.into(),
    }
}

impl Episode {
    /// Builds an episode after checking the invariants in the module docs.
    ///
    /// - `group`: index of the prompt within the iteration; samples of one prompt share it
    ///   (GRPO/RLOO baselines are computed per group).
    /// - `prompt`: prompt ids including BOS.
    /// - `response`: sampled ids, ending with EOS iff `finished` (the caller appends it).
    /// - `finished`: the sample stopped on EOS/stop string and produced a gradable answer.
    /// - `reward`: the final score (0/1 in the paper); must be 0 when not finished.
    /// - `step_starts`: index into `response` where each reasoning step starts.
    pub fn new(
        group: usize,
        prompt: Vec<u32>,
        response: Vec<u32>,
        finished: bool,
        reward: f32,
        step_starts: Vec<usize>,
    ) -> Result<Self> {
        if prompt.is_empty() {
            return Err(invalid("prompt", "is empty; it must hold at least BOS"));
        }
        let text_len = response.len().saturating_sub(usize::from(finished));
        if text_len == 0 {
            return Err(invalid(
                "response",
                "has no text tokens (EOS aside); drop empty samples before building episodes",
            ));
        }
        check_step_starts(&step_starts, text_len)?;
        if !reward.is_finite() {
            return Err(invalid("reward", format!("{reward} is not finite")));
        }
        if !finished && reward != 0.0 {
            return Err(invalid(
                "reward",
                format!("{reward} for an unfinished response; unfinished responses score 0"),
            ));
        }
        Ok(Self {
            group,
            prompt,
            response,
            finished,
            reward,
            step_starts,
        })
    }

    /// Prompt index within the iteration (the GRPO/RLOO group).
    pub fn group(&self) -> usize {
        self.group
    }

    /// Prompt ids, BOS included.
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    /// Response ids, EOS included iff [`Episode::finished`].
    pub fn response(&self) -> &[u32] {
        &self.response
    }

    /// Whether the response finished (and so ends with EOS).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Final score of the response.
    pub fn reward(&self) -> f32 {
        self.reward
    }

    /// Token index in [`Episode::response`] where each reasoning step starts.
    pub fn step_starts(&self) -> &[usize] {
        &self.step_starts
    }

    /// Number of reasoning steps, `n >= 1`.
    pub fn n_steps(&self) -> usize {
        self.step_starts.len()
    }

    /// Number of response tokens that belong to the text (all but the EOS, if any).
    pub fn text_len(&self) -> usize {
        self.response.len() - usize::from(self.finished)
    }

    /// Token range of step `i` within the response text; the last step ends at
    /// [`Episode::text_len`] (the EOS is in no step).
    ///
    /// # Panics
    /// If `i >= n_steps()`.
    pub fn step_range(&self, i: usize) -> std::ops::Range<usize> {
        let end = self
            .step_starts
            .get(i + 1)
            .copied()
            .unwrap_or(self.text_len());
        self.step_starts[i]..end
    }

    /// Prompt plus response length.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.response.len()
    }

    /// Always false: an episode has at least a prompt token and a text token.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The token prefix of value state `i` (spec 1.3): the prompt for `i == 0`, else the prompt
    /// and the response tokens before step `i` starts. `i` ranges over `0..n_steps()`; the
    /// terminal state `n_steps()` is never rolled out.
    ///
    /// # Panics
    /// If `i >= n_steps()`.
    pub fn state_prefix(&self, i: usize) -> Vec<u32> {
        let cut = self.step_starts[i];
        let mut ids = Vec::with_capacity(self.prompt.len() + cut);
        ids.extend_from_slice(&self.prompt);
        ids.extend_from_slice(&self.response[..cut]);
        ids
    }
}

fn check_step_starts(starts: &[usize], text_len: usize) -> Result<()> {
    match starts.first() {
        None => {
            return Err(invalid(
                "step_starts",
                "is empty; pass [0] for a single step",
            ))
        }
        Some(&s) if s != 0 => {
            return Err(invalid(
                "step_starts",
                format!("starts at {s}; the first step starts at 0"),
            ))
        }
        Some(_) => {}
    }
    if let Some(w) = starts.windows(2).find(|w| w[1] <= w[0]) {
        return Err(invalid(
            "step_starts",
            format!(
                "not strictly increasing ({} then {}); merge empty steps",
                w[0], w[1]
            ),
        ));
    }
    if let Some(&last) = starts.last().filter(|&&s| s >= text_len) {
        return Err(invalid(
            "step_starts",
            format!("step starts at token {last} but the response text has {text_len} tokens"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_episode_and_reports_ranges() {
        let e = Episode::new(3, vec![1, 5], vec![7, 8, 9, 2], true, 1.0, vec![0, 2]).unwrap();
        assert_eq!(e.text_len(), 3);
        assert_eq!(e.step_range(0), 0..2);
        assert_eq!(e.step_range(1), 2..3);
        assert_eq!(e.state_prefix(0), vec![1, 5]);
        assert_eq!(e.state_prefix(1), vec![1, 5, 7, 8]);
        assert_eq!(e.len(), 6);
    }

    #[test]
    fn rejects_broken_invariants() {
        let bad = [
            Episode::new(0, vec![], vec![7], false, 0.0, vec![0]),
            Episode::new(0, vec![1], vec![2], true, 1.0, vec![0]),
            Episode::new(0, vec![1], vec![7, 8], false, 0.0, vec![]),
            Episode::new(0, vec![1], vec![7, 8], false, 0.0, vec![1]),
            Episode::new(0, vec![1], vec![7, 8], false, 0.0, vec![0, 0]),
            Episode::new(0, vec![1], vec![7, 8, 2], true, 1.0, vec![0, 2]),
            Episode::new(0, vec![1], vec![7, 8], false, 1.0, vec![0]),
            Episode::new(0, vec![1], vec![7, 8], true, f32::NAN, vec![0]),
        ];
        for (i, r) in bad.iter().enumerate() {
            assert!(r.is_err(), "case {i} should be rejected");
        }
        let msg = bad[5].as_ref().unwrap_err().to_string();
        assert!(msg.contains("step_starts"), "{msg}");
    }
}
