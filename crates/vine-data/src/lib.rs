//! Datasets, prompts and step spans for VinePPO training on math word problems.
//!
//! # Brief overview
//!
//! - [`dataset`]: [`Example`] (question, reference solution, final answer) and the loaders for
//!   GSM8K ([`load_gsm8k`]), MATH ([`load_math`]) and MATH-500 ([`load_math500`]), the
//!   reference's 12,000 / 500 MATH split ([`prm800k_split`]), and [`write_gsm8k_jsonl`].
//! - [`arith`]: the built-in synthetic task, seeded multi-step arithmetic word problems in
//!   GSM8K's format with disjoint train and test splits ([`arith::generate`]).
//! - [`prompt`]: [`PromptTemplate`], how a problem becomes the query text and a solution the
//!   SFT target (the reference format, ChatML and Llama-3 presets, few-shot blocks).
//! - [`sample`]: which training problems each iteration uses ([`iteration_sample`]).
//! - [`spans`]: which tokens each reasoning step owns ([`step_token_starts`]).
//! - [`task`]: [`Task`] bundles the splits, the prompt, the grader and the step splitter of one
//!   of [`TaskKind`]'s datasets; it is what the trainer holds.
//!
//! In a training iteration the trainer draws problems with [`iteration_sample`], renders their
//! queries with [`Task::query`], samples responses, scores them with [`Task::grade`], splits them
//! with [`Task::split_steps`], and maps the steps to tokens with [`step_token_starts`].
//!
//! ```
//! use vine_data::{arith::ArithConfig, step_token_starts, Task};
//!
//! let config = ArithConfig { train_size: 100, test_size: 10, ..ArithConfig::default() };
//! let task = Task::arith(&config, &Default::default())?;
//! let example = &task.test()[0];
//! assert!(task.query(example).starts_with("[MATH_TASK] Problem:\n"));
//!
//! // A perfect response: the SFT target of the reference solution.
//! let response = task.target(example);
//! assert!(task.grade(&response, example).correct);
//!
//! // One step per solution line; with one token per byte, step i starts at its first byte.
//! let steps = task.split_steps(&response).expect("well-formed response");
//! assert_eq!(steps.len(), example.solution.lines().count() - 1);
//! let token_starts: Vec<usize> = (0..response.len()).collect();
//! let step_starts = step_token_starts(&token_starts, &steps)?;
//! assert_eq!(step_starts, steps.iter().map(|s| s.start).collect::<Vec<_>>());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod arith;
pub mod dataset;
pub mod prompt;
pub mod sample;
pub mod spans;
pub mod task;

pub use dataset::{
    load_gsm8k, load_math, load_math500, prm800k_split, strip_calculator_annotations,
    write_gsm8k_jsonl, DatasetError, Example, Splits,
};
pub use prompt::{
    FewShotConfig, PromptConfig, PromptError, PromptPreset, PromptSpec, PromptTemplate,
};
pub use sample::{iteration_sample, permutation};
pub use spans::{step_token_starts, token_steps, SpanError};
pub use task::{Task, TaskConfig, TaskError, TaskKind};
