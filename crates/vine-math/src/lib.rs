//! Answer extraction and grading for GSM8K and MATH, and reasoning-step splitting.
//!
//! # Brief overview
//!
//! [`extract`] finds final answers in text: the content of the last `\boxed{…}`
//! ([`extract::last_boxed`]) and the GSM8K `#### n` line ([`extract::gsm8k_gold`]).
//! [`split_gsm8k`] and [`split_math`] cut a response into reasoning steps.
#![warn(missing_docs)]

pub mod extract;
pub mod normalize;
mod pystr;
mod steps;

pub use steps::{split_gsm8k, split_math};
