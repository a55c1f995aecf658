//! Problems with reference solutions: the GSM8K, MATH and MATH-500 JSONL loaders, the reference's
//! 12,000 / 500 MATH split, and the per-iteration prompt sample.
//!
//! Every loader reads JSON Lines: one JSON object per line. Blank (whitespace-only) lines are
//! skipped, so a trailing newline or an empty line at the end is fine; a leading UTF-8 byte-order
//! mark is ignored. Any other malformed line is an error naming the file, the 1-based line number
//! and what was expected there.
//!
//! Preprocessing follows the reference (`tasks/gsm8k.py`, `tasks/math.py`):
//! - GSM8K: the question is stripped; `solution` is the whole answer text (steps and the final
//!   `#### n` line) with the `<<…>>` calculator annotations removed; `answer` is the text after
//!   `####`, stripped and otherwise verbatim (thousands commas kept: the grader decides how to
//!   compare them).
//! - MATH: problem and solution verbatim; `answer` is the content of the solution's last
//!   `\boxed{…}`. The MATH grader re-extracts the gold answer from `solution`, as the reference
//!   does, so `answer` is for display and analysis.
//! - MATH-500: the file's own `answer` field; the integer `level` becomes `"Level n"` so levels
//!   read the same across MATH and MATH-500.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One problem with its reference solution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// Stable identifier: MATH's `unique_id` (`test/algebra/1.json`), or `file:line` for files
    /// without one (GSM8K).
    pub id: String,
    /// The problem statement.
    pub question: String,
    /// The reference solution, ending in the final answer (`#### n` or `\boxed{…}`).
    pub solution: String,
    /// The final answer alone.
    pub answer: String,
    /// Difficulty (`"Level 1"`..`"Level 5"` for MATH), when the dataset has one.
    pub level: Option<String>,
    /// Subject (MATH's `type`), when the dataset has one.
    pub subject: Option<String>,
}

/// Why a dataset could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not a JSON object.
    #[error("`{path}` line {line}: expected one JSON object per line: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A field is missing, has the wrong type, or has unusable content.
    #[error("`{path}` line {line}: field `{field}`: {problem}")]
    Field {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// What is wrong and what was expected.
        problem: String,
    },
}

/// A train split and a test split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Splits {
    /// Problems to train on.
    pub train: Vec<Example>,
    /// Held-out problems.
    pub test: Vec<Example>,
}

/// Reads a JSONL file and turns every non-blank line into an example with `parse`.
fn read_jsonl(
    path: &Path,
    mut parse: impl FnMut(&mut Row<'_>) -> Result<Example, DatasetError>,
) -> Result<Vec<Example>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut examples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let json_error = |message: String| DatasetError::Json {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(other) => return Err(json_error(format!("found {}", kind(&other)))),
            Err(e) => return Err(json_error(e.to_string())),
        };
        examples.push(parse(&mut Row {
            path,
            line: index + 1,
            object,
        })?);
    }
    Ok(examples)
}

/// One parsed line, with its location for error messages.
struct Row<'a> {
    path: &'a Path,
    line: usize,
    object: Map<String, Value>,
}

impl Row<'_> {
    fn error(&self, field: &'static str, problem: impl Into<String>) -> DatasetError {
        DatasetError::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            field,
            problem: problem.into(),
        }
    }

    /// Takes the field out of the row as a string.
    fn string(&mut self, field: &'static str) -> Result<String, DatasetError> {
        match self.object.remove(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => {
                Err(self.error(field, format!("expected a string, found {}", kind(&other))))
            }
            None => Err(self.error(field, "missing (expected a string)")),
        }
    }

    /// Takes the field out of the row as a string or an integer, rendered as text.
    fn string_or_integer(&mut self, field: &'static str) -> Result<String, DatasetError> {
        match self.object.remove(field) {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            Some(other) => Err(self.error(
                field,
                format!("expected an integer or a string, found {}", kind(&other)),
            )),
            None => Err(self.error(field, "missing (expected an integer or a string)")),
        }
    }
}

/// A JSON value's type, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes GSM8K's calculator annotations: every `<<…>>` span (shortest match, may span lines),
/// as the reference's `re.sub("<<.*?>>", "", text, flags=re.DOTALL)`.
pub fn strip_calculator_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<<") {
        match rest[open + 2..].find(">>") {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + 2 + close + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Loads a GSM8K JSONL file (`question`, `answer` ending in `#### n`), such as the official
/// `train.jsonl` / `test.jsonl` or a file written by [`write_gsm8k_jsonl`].
pub fn load_gsm8k(path: impl AsRef<Path>) -> Result<Vec<Example>, DatasetError> {
    let path = path.as_ref();
    let file_name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into());
    read_jsonl(path, |row| {
        let question = row.string("question")?.trim().to_string();
        let full = row.string("answer")?;
        let answer = match full.split("####").collect::<Vec<_>>().as_slice() {
            [_, answer] => answer.trim().to_string(),
            [_] => return Err(row.error("answer", "has no `#### <answer>` final line")),
            _ => return Err(row.error("answer", "has more than one `####` marker")),
        };
        if answer.is_empty() {
            return Err(row.error("answer", "the text after `####` is empty"));
        }
        Ok(Example {
            id: format!("{file_name}:{}", row.line),
            question,
            solution: strip_calculator_annotations(&full),
            answer,
            level: None,
            subject: None,
        })
    })
}

/// Loads a MATH JSONL file (`problem`, `solution`, `level`, `type`, `unique_id`).
pub fn load_math(path: impl AsRef<Path>) -> Result<Vec<Example>, DatasetError> {
    read_jsonl(path.as_ref(), |row| {
        let question = row.string("problem")?;
        let solution = row.string("solution")?;
        let answer = vine_math::extract::last_boxed(&solution)
            .ok_or_else(|| row.error("solution", "has no `\\boxed{…}` final answer"))?;
        Ok(Example {
            level: Some(row.string("level")?),
            subject: Some(row.string("type")?),
            id: row.string("unique_id")?,
            question,
            solution,
            answer,
        })
    })
}

/// Loads MATH-500 (`problem`, `solution`, `answer`, `subject`, integer `level`, `unique_id`).
pub fn load_math500(path: impl AsRef<Path>) -> Result<Vec<Example>, DatasetError> {
    read_jsonl(path.as_ref(), |row| {
        let level = row.string_or_integer("level")?;
        let level = if level.starts_with("Level") {
            level
        } else {
            format!("Level {level}")
        };
        Ok(Example {
            question: row.string("problem")?,
            solution: row.string("solution")?,
            answer: row.string("answer")?,
            subject: Some(row.string("subject")?),
            level: Some(level),
            id: row.string("unique_id")?,
        })
    })
}

/// The reference's MATH split (PRM800K's `math_splits`): test is MATH-500; train is all of
/// `math_train` plus the rows of `math_test` whose id is not in MATH-500. With the standard files
/// that is 12,000 / 500.
pub fn prm800k_split(
    math_train: Vec<Example>,
    math_test: Vec<Example>,
    math500: Vec<Example>,
) -> Splits {
    let held_out: HashSet<&str> = math500.iter().map(|e| e.id.as_str()).collect();
    let extra: Vec<Example> = math_test
        .into_iter()
        .filter(|e| !held_out.contains(e.id.as_str()))
        .collect();
    let mut train = math_train;
    train.extend(extra);
    Splits {
        train,
        test: math500,
    }
}

/// Writes examples as GSM8K JSONL (`{"question": …, "answer": <solution>}` per line), readable by
/// [`load_gsm8k`]. The solutions must end in `#### n`. The file is written to a temporary name
/// in the same directory and then renamed, so a reader never sees half a file.
pub fn write_gsm8k_jsonl(path: impl AsRef<Path>, examples: &[Example]) -> Result<(), DatasetError> {
    let path = path.as_ref();
    let mut text = String::new();
    for ex in examples {
        let row = serde_json::json!({ "question": ex.question, "answer": ex.solution });
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{row}");
    }
    let io = |source| DatasetError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

#[cfg(test)]
mod tests;
