//! Optimizer and learning-rate schedule.

pub mod adamw;
pub mod schedule;

pub use adamw::{AdamW, AdamWConfig, GradAccumulator, StepStats};
pub use schedule::{Decay, LrSchedule, Warmup};
