//! The crate's error type.
//!
//! Every variant names the offending field or episode and says what the caller should do;
//! tensor failures from candle pass through [`RlError::Candle`].

/// Errors from building episodes, assigning credit and collating batches.
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    /// An [`crate::Episode`] invariant does not hold.
    #[error("invalid episode: {field}: {reason}")]
    Episode {
        /// The constructor argument at fault (`prompt`, `response`, `step_starts`, `reward`).
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A per-episode or per-token array has the wrong length.
    #[error("{what} of episode {episode}: expected {expected} entries, got {got}")]
    Length {
        /// Which input (`advantages`, `values`, `rollout outcomes`, ...).
        what: &'static str,
        /// Index of the episode (or state) in the slice passed in.
        episode: usize,
        /// The length implied by the episode.
        expected: usize,
        /// The length received.
        got: usize,
    },

    /// A [`crate::McRollouts`] implementation answered for the wrong number of states.
    #[error(
        "MC rollouts returned outcomes for {got} states but {expected} were requested; \
         `McRollouts::rollout` must return one entry per prefix, in order"
    )]
    Rollouts {
        /// Number of prefixes requested.
        expected: usize,
        /// Number of outcome lists returned.
        got: usize,
    },

    /// An input is empty where at least one element is needed.
    #[error("{0}")]
    Empty(String),

    /// A numeric input is out of its domain (NaN, negative count, parameter out of range).
    #[error("{0}")]
    Invalid(String),

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for this crate.
pub type Result<T, E = RlError> = std::result::Result<T, E>;

impl RlError {
    /// Sets the episode index of a [`RlError::Length`] raised while handling one episode.
    pub(crate) fn at_episode(self, e: usize) -> Self {
        match self {
            RlError::Length {
                what,
                expected,
                got,
                ..
            } => RlError::Length {
                what,
                episode: e,
                expected,
                got,
            },
            other => other,
        }
    }
}

/// `Ok` when `got == expected`, else a [`RlError::Length`] for episode 0 (callers that loop over
/// episodes fix the index with `at_episode`).
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(RlError::Length {
        what,
        episode: 0,
        expected,
        got,
    })
}
