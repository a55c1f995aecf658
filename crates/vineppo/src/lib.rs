//! # vineppo
//!
//! The command-line tool and the training loop that ties the crates together.

pub mod analysis;
pub mod atomic;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dpo;
pub mod eval;
pub mod experiment;
pub mod gpu;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod report;
pub mod restem;
pub mod runtime;
pub mod sampled;
pub mod seeds;
pub mod session;
pub mod sft;
pub mod text;
pub mod tokenizer_train;
pub mod train;
