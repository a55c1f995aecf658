//! Integration tests of vine-rl: golden values from the reference formulas (the Python that
//! produced each number sits next to its test), the MC value pipeline against a scripted
//! policy, collation, and property tests.

// Golden numbers are pasted as Python printed them.
#![allow(clippy::excessive_precision)]

mod collate;
mod common;
mod golden_credit;
mod golden_loss;
mod mc_pipeline;
mod properties;
