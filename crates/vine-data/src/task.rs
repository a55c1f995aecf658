//! [`Task`]: one dataset's train and test problems, its prompt format, its grader and its step
//! splitter, behind one type the trainer holds.
//!
//! | kind | train | test | grader | splitter |
//! | --- | --- | --- | --- | --- |
//! | `gsm8k` | `gsm8k/train.jsonl` (7,473) | `gsm8k/test.jsonl` (1,319) | GSM8K on `answer` | GSM8K lines |
//! | `math` | `math/train.jsonl` (7,500) | `math/test.jsonl` (5,000) | MATH on `solution` | MATH |
//! | `math500` | MATH train + test minus MATH-500 (12,000) | `math/math500_test.jsonl` (500) | MATH on `solution` | MATH |
//! | `arith` | generated (or a GSM8K-format file) | generated (or a file) | GSM8K on `answer` | GSM8K lines |
//!
//! `math500` is the split VinePPO trains and evaluates on (PRM800K's); `math` is the original
//! Hendrycks split. The MATH grader gets the whole reference solution and re-extracts the gold
//! answer from its last `\boxed{}`, as the reference does, and gets the question for the
//! "separated by commas" rule.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vine_math::{Grade, Gsm8kMode};

use crate::arith::{self, ArithConfig, ArithError};
use crate::dataset::{self, DatasetError, Example, Splits};
use crate::prompt::{PromptConfig, PromptError, PromptSpec, PromptTemplate};

/// Environment variable naming the data directory when the config does not.
pub const DATA_DIR_ENV: &str = "VINEPPO_DATA_DIR";

/// The datasets a [`Task`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Grade-school math word problems, `#### n` answers.
    Gsm8k,
    /// Competition math, the original 7,500 / 5,000 split.
    Math,
    /// Competition math, the reference's (PRM800K's) 12,000 / 500 split.
    Math500,
    /// The built-in synthetic arithmetic word problems ([`crate::arith`]).
    Arith,
}

impl TaskKind {
    /// The lowercase name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Gsm8k => "gsm8k",
            TaskKind::Math => "math",
            TaskKind::Math500 => "math500",
            TaskKind::Arith => "arith",
        }
    }

    /// Whether answers are GSM8K-style `#### n` lines (as opposed to MATH's `\boxed{}`).
    pub fn uses_gsm8k_format(self) -> bool {
        matches!(self, TaskKind::Gsm8k | TaskKind::Arith)
    }
}

/// How GSM8K-style answers are compared (`vine_math::Gsm8kMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gsm8kGrading {
    /// The reference's exact string match after `####`.
    #[default]
    Strict,
    /// Numeric comparison (`18.0`, `$18`, `1,000`), for instruct models.
    Lenient,
}

/// Where a task's problems come from, as written in a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// Which dataset.
    pub kind: TaskKind,
    /// Directory with `gsm8k/` and `math/` in the standard layout; defaults to
    /// `$VINEPPO_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// Explicit training file (with `test_file`), instead of the standard layout. For `math500`
    /// it is a MATH-format file holding the whole training split; for `arith`, a GSM8K-format
    /// file such as one written by [`dataset::write_gsm8k_jsonl`].
    pub train_file: Option<PathBuf>,
    /// Explicit test file (with `train_file`); MATH-500 format for `math500`.
    pub test_file: Option<PathBuf>,
    /// Prompt format: a preset name or a full table.
    pub prompt: PromptSpec,
    /// Answer comparison for `gsm8k` and `arith`.
    pub gsm8k_grading: Gsm8kGrading,
    /// Generator settings for `arith` without files.
    pub arith: ArithConfig,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            kind: TaskKind::Arith,
            data_dir: None,
            train_file: None,
            test_file: None,
            prompt: PromptSpec::default(),
            gsm8k_grading: Gsm8kGrading::default(),
            arith: ArithConfig::default(),
        }
    }
}

/// Why a task could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A dataset file could not be loaded.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The prompt format is invalid.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The `arith` settings are invalid.
    #[error(transparent)]
    Arith(#[from] ArithError),
    /// No data directory configured.
    #[error(
        "task `{0}` needs its dataset files: set `data_dir` (or the {DATA_DIR_ENV} environment \
         variable) to a directory holding `gsm8k/` and `math/`, or set `train_file` and `test_file`"
    )]
    NoDataDir(&'static str),
    /// Only one of `train_file` / `test_file` given.
    #[error("task `{0}`: set both `train_file` and `test_file`, or neither")]
    HalfFiles(&'static str),
    /// A split has no problems.
    #[error("task `{kind}`: the {split} split is empty")]
    EmptySplit {
        /// The task.
        kind: &'static str,
        /// `train` or `test`.
        split: &'static str,
    },
}

/// One dataset's problems with everything needed to prompt, grade and split responses.
#[derive(Debug, Clone)]
pub struct Task {
    kind: TaskKind,
    train: Vec<Example>,
    test: Vec<Example>,
    prompt: PromptTemplate,
    gsm8k_mode: Gsm8kGrading,
}

impl Task {
    /// Builds the task a config describes: generated `arith`, explicit files, or the standard
    /// layout under `data_dir` / `$VINEPPO_DATA_DIR`.
    pub fn load(config: &TaskConfig) -> Result<Self, TaskError> {
        let kind = config.kind;
        let prompt = config.prompt.config();
        let mut task = match (&config.train_file, &config.test_file) {
            (Some(train), Some(test)) => Self::from_files(kind, train, test, &prompt)?,
            (None, None) if kind == TaskKind::Arith => Self::arith(&config.arith, &prompt)?,
            (None, None) => {
                let dir = config
                    .data_dir
                    .clone()
                    .or_else(|| std::env::var_os(DATA_DIR_ENV).map(PathBuf::from));
                let dir = dir.ok_or(TaskError::NoDataDir(kind.name()))?;
                Self::from_dir(kind, &dir, &prompt)?
            }
            _ => return Err(TaskError::HalfFiles(kind.name())),
        };
        task.gsm8k_mode = config.gsm8k_grading;
        Ok(task)
    }

    /// Loads `kind` from the standard layout under `dir` (`gsm8k/{train,test}.jsonl`,
    /// `math/{train,test,math500_test}.jsonl`). `arith` is generated with default settings.
    pub fn from_dir(kind: TaskKind, dir: &Path, prompt: &PromptConfig) -> Result<Self, TaskError> {
        let splits = match kind {
            TaskKind::Gsm8k => Splits {
                train: dataset::load_gsm8k(dir.join("gsm8k/train.jsonl"))?,
                test: dataset::load_gsm8k(dir.join("gsm8k/test.jsonl"))?,
            },
            TaskKind::Math => Splits {
                train: dataset::load_math(dir.join("math/train.jsonl"))?,
                test: dataset::load_math(dir.join("math/test.jsonl"))?,
            },
            TaskKind::Math500 => dataset::prm800k_split(
                dataset::load_math(dir.join("math/train.jsonl"))?,
                dataset::load_math(dir.join("math/test.jsonl"))?,
                dataset::load_math500(dir.join("math/math500_test.jsonl"))?,
            ),
            TaskKind::Arith => arith::generate(&ArithConfig::default())?,
        };
        Self::new(kind, splits, prompt)
    }

    /// Loads `kind` from explicit files (formats as for [`TaskConfig::train_file`]).
    pub fn from_files(
        kind: TaskKind,
        train: &Path,
        test: &Path,
        prompt: &PromptConfig,
    ) -> Result<Self, TaskError> {
        let splits = match kind {
            TaskKind::Gsm8k | TaskKind::Arith => Splits {
                train: dataset::load_gsm8k(train)?,
                test: dataset::load_gsm8k(test)?,
            },
            TaskKind::Math => Splits {
                train: dataset::load_math(train)?,
                test: dataset::load_math(test)?,
            },
            TaskKind::Math500 => Splits {
                train: dataset::load_math(train)?,
                test: dataset::load_math500(test)?,
            },
        };
        Self::new(kind, splits, prompt)
    }

    /// Generates an `arith` task in memory.
    pub fn arith(config: &ArithConfig, prompt: &PromptConfig) -> Result<Self, TaskError> {
        Self::new(TaskKind::Arith, arith::generate(config)?, prompt)
    }

    /// A task over examples already in memory; few-shot examples (if any) come from `train`.
    pub fn new(kind: TaskKind, splits: Splits, prompt: &PromptConfig) -> Result<Self, TaskError> {
        for (split, examples) in [("train", &splits.train), ("test", &splits.test)] {
            if examples.is_empty() {
                return Err(TaskError::EmptySplit {
                    kind: kind.name(),
                    split,
                });
            }
        }
        let prompt = PromptTemplate::new(prompt, &splits.train)?;
        Ok(Self {
            kind,
            train: splits.train,
            test: splits.test,
            prompt,
            gsm8k_mode: Gsm8kGrading::Strict,
        })
    }

    /// Which dataset this is.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }

    /// Training problems.
    pub fn train(&self) -> &[Example] {
        &self.train
    }

    /// Test problems.
    pub fn test(&self) -> &[Example] {
        &self.test
    }

    /// The prompt format (BOS/EOS flags and stop strings included).
    pub fn prompt(&self) -> &PromptTemplate {
        &self.prompt
    }

    /// The text the model continues for `ex` (BOS not included).
    pub fn query(&self, ex: &Example) -> String {
        self.prompt.query(&ex.question)
    }

    /// The SFT target for `ex`'s reference solution (EOS not included).
    pub fn target(&self, ex: &Example) -> String {
        self.prompt.target(&ex.solution)
    }

    /// Grades a response (the text after the query) against `ex`. Never fails: a response
    /// without an extractable answer is incorrect.
    pub fn grade(&self, response: &str, ex: &Example) -> Grade {
        if self.kind.uses_gsm8k_format() {
            let mode = match self.gsm8k_mode {
                Gsm8kGrading::Strict => Gsm8kMode::Strict,
                Gsm8kGrading::Lenient => Gsm8kMode::Lenient,
            };
            vine_math::grade_gsm8k(response, &ex.answer, mode)
        } else {
            vine_math::grade_math(response, &ex.solution, Some(&ex.question))
        }
    }

    /// Byte ranges of the response's reasoning steps, partitioning it; `None` when the response
    /// cannot be split (GSM8K: the `"\n#### "` marker appears twice), which scores 0.
    pub fn split_steps(&self, response: &str) -> Option<Vec<Range<usize>>> {
        if self.kind.uses_gsm8k_format() {
            vine_math::split_gsm8k(response)
        } else {
            Some(vine_math::split_math(response))
        }
    }

    /// Drops training problems whose templated query is longer than `max_tokens`, as the
    /// reference's `max_question_length` does at start-up; returns how many were dropped.
    /// `count_tokens` gets the query text (without BOS: add 1 if your count should include it,
    /// as the reference's `len(tokenizer(query).input_ids)` does for tokenizers that add BOS).
    pub fn drop_long_prompts(
        &mut self,
        max_tokens: usize,
        mut count_tokens: impl FnMut(&str) -> usize,
    ) -> usize {
        let before = self.train.len();
        let prompt = &self.prompt;
        self.train
            .retain(|ex| count_tokens(&prompt.query(&ex.question)) <= max_tokens);
        before - self.train.len()
    }
}

#[cfg(test)]
mod tests;
