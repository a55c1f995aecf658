//! Errors of checkpoint, config and tokenizer I/O. Tensor code returns [`candle_core::Result`].

use std::path::PathBuf;

/// What can go wrong reading or writing a model directory.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A required file is absent.
    #[error("`{path}` not found: {hint}")]
    NotFound {
        /// The file that was looked for.
        path: PathBuf,
        /// What the directory should contain.
        hint: String,
    },

    /// A JSON file is not valid JSON.
    #[error("`{path}` is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },

    /// `config.json` names an architecture this crate does not implement.
    #[error(
        "`{path}`: unsupported architecture `{found}`; supported: {}",
        supported.join(", ")
    )]
    UnsupportedArchitecture {
        /// The config file.
        path: PathBuf,
        /// What the config names.
        found: String,
        /// What we implement.
        supported: Vec<&'static str>,
    },

    /// A config field is missing, has the wrong type, or an unsupported value.
    #[error("`{path}`: field `{field}`: {message}")]
    Config {
        /// The config file (or `<config>` for an in-memory one).
        path: PathBuf,
        /// The offending field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The checkpoint lacks a tensor the config requires.
    #[error("`{path}`: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The weights file (or index) searched.
        path: PathBuf,
        /// The tensor's Hugging Face name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
    },

    /// A tensor's shape disagrees with the config.
    #[error(
        "`{path}`: tensor `{name}` has shape {found:?}, but the config implies {expected:?}; \
         check that `config.json` belongs to these weights"
    )]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor's Hugging Face name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A safetensors file is truncated, corrupt, or holds an unsupported dtype.
    #[error("`{path}` is not a valid safetensors file ({message}); re-download or re-save it")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },

    /// A tokenizer file could not be loaded or used.
    #[error("tokenizer `{path}`: {message}")]
    Tokenizer {
        /// The tokenizer file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    /// An [`ModelError::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`ModelError::Config`] for `field` of `path`.
    pub fn config(path: impl Into<PathBuf>, field: &str, message: impl Into<String>) -> Self {
        Self::Config {
            path: path.into(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Result of checkpoint, config and tokenizer I/O.
pub type ModelResult<T> = std::result::Result<T, ModelError>;

/// Reads a JSON file into a [`serde_json::Value`].
pub(crate) fn read_json(path: &std::path::Path) -> ModelResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::NotFound {
            path: path.to_path_buf(),
            hint: "a Hugging Face model directory holds `config.json`, the weights and the \
                   tokenizer files"
                .into(),
        },
        _ => ModelError::io("reading", path, e),
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })
}
