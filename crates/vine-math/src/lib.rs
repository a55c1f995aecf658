//! Answer extraction and grading for GSM8K and MATH, and reasoning-step splitting.
//!
//! # Brief overview
//!
//! [`extract`] finds final answers in text: the content of the last `\boxed{…}`
//! ([`extract::last_boxed`]) and the GSM8K `#### n` line ([`extract::gsm8k_gold`]).
#![warn(missing_docs)]

pub mod extract;
