//! Answer extraction, equivalence and grading for GSM8K and MATH, and the reasoning-step
//! splitters VinePPO assigns credit to. Pure `&str` logic: no tensors, no Python, no I/O.
//!
//! # Brief overview
//!
//! - **Grading** (the 0/1 reward): [`grade_gsm8k`] and [`grade_math`] take a sampled response
//!   and a gold answer (bare, or the dataset's full solution) and return a [`Grade`]
//!   `{ correct, extracted }`. GSM8K follows the reference's strict `#### n` rule, or compares
//!   numbers in [`Gsm8kMode::Lenient`]. MATH follows the reference's Minerva-format grader:
//!   candidates are extracted ([`extract::math_answers`]), normalised
//!   ([`normalize::strip_string`]) and compared as lists with [`math_equal`].
//! - **Equivalence**: [`math_equal`] applies the reference's rules in order (strings, numbers
//!   with percent scaling, tuples, matrices, equations) and finally symbolic equality, decided by
//!   a built-in LaTeX-subset parser and exact/complex evaluation instead of sympy. Every call does
//!   bounded work, so no response can hang the reward.
//! - **Steps**: [`split_gsm8k`] (one step per line) and [`split_math`] (LaTeX-aware sentence and
//!   line splitter) return byte ranges that partition the response exactly, cut where the
//!   reference cuts.
//! - **Extraction helpers** for dataset loaders: [`extract::last_boxed`],
//!   [`extract::gsm8k_gold`].
//!
//! Graders never fail: a response without an answer is simply incorrect. Where this crate
//! deliberately differs from the reference implementation (McGill-NLP/VinePPO), the module
//! that implements the rule says so and why.
//!
//! ```
//! use vine_math::{grade_math, split_math};
//!
//! let response = "\nThe area is $\\pi r^2 = 4\\pi$. So the answer is $\\boxed{4\\pi}$.\n";
//! let grade = grade_math(response, r"4 \pi", None);
//! assert!(grade.correct);
//! assert_eq!(grade.extracted.as_deref(), Some(r"4\pi"));
//! assert_eq!(grade.reward(), 1.0);
//!
//! let steps = split_math(response);
//! let text: String = steps.iter().map(|r| &response[r.clone()]).collect();
//! assert_eq!(text, response);
//! ```
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
