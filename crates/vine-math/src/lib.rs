//! Answer extraction and grading for GSM8K and MATH, and reasoning-step splitting.
//!
//! # Brief overview
//!
//! [`extract`] finds final answers in text: the content of the last `\boxed{…}`
//! ([`extract::last_boxed`]) and the GSM8K `#### n` line ([`extract::gsm8k_gold`]).
//! [`split_gsm8k`] and [`split_math`] cut a response into reasoning steps.
#![warn(missing_docs)]

mod equiv;
mod expr;
pub mod extract;
mod grade;
pub mod normalize;
mod pystr;
mod steps;
mod symbolic;

pub use equiv::math_equal;
pub use grade::{grade_gsm8k, grade_math, Grade, Gsm8kMode, MAX_GOLD_ANSWERS};
pub use steps::{split_gsm8k, split_math};
