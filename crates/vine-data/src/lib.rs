//! Datasets, prompts and step spans for VinePPO training on math word problems.
#![warn(missing_docs)]

pub mod arith;
pub mod dataset;
pub mod prompt;
pub mod sample;
pub mod spans;

pub use dataset::{
    load_gsm8k, load_math, load_math500, prm800k_split, strip_calculator_annotations,
    write_gsm8k_jsonl, DatasetError, Example, Splits,
};
pub use prompt::{
    FewShotConfig, PromptConfig, PromptError, PromptPreset, PromptSpec, PromptTemplate,
};
pub use sample::{iteration_sample, permutation};
pub use spans::{step_token_starts, token_steps, SpanError};
