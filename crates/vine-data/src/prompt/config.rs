//! The serialisable side of prompts: presets, the config-file struct and its errors.

use serde::{Deserialize, Serialize};

/// Errors found while building a [`PromptTemplate`](super::PromptTemplate).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PromptError {
    /// A `{name}` the template field does not support.
    #[error(
        "prompt template `{field}`: unknown placeholder `{{{name}}}`; \
         allowed here: {allowed} (write `{{{{` and `}}}}` for literal braces)"
    )]
    UnknownPlaceholder {
        /// Which template (`query`, `target`, `few_shot.shot`).
        field: &'static str,
        /// The placeholder name found.
        name: String,
        /// The placeholders this field accepts.
        allowed: String,
    },
    /// A placeholder the template must contain is absent.
    #[error("prompt template `{field}` must contain the placeholder `{{{name}}}`")]
    MissingPlaceholder {
        /// Which template.
        field: &'static str,
        /// The missing placeholder.
        name: &'static str,
    },
    /// A `{` without its `}`, or a lone `}`.
    #[error(
        "prompt template `{field}`: unbalanced `{brace}` at byte {position}; \
         write `{{{{` or `}}}}` for a literal brace"
    )]
    UnbalancedBrace {
        /// Which template.
        field: &'static str,
        /// The offending brace.
        brace: char,
        /// Byte offset of the brace in the template.
        position: usize,
    },
    /// Few-shot examples are configured but the query has nowhere to put them.
    #[error(
        "prompt: `few_shot` is set but the `query` template has no `{{few_shot}}` placeholder"
    )]
    FewShotWithoutSlot,
    /// Fewer training examples than requested shots.
    #[error("prompt: `few_shot.k` is {k} but only {available} training examples are available")]
    NotEnoughExamples {
        /// Requested number of shots.
        k: usize,
        /// Examples in the pool.
        available: usize,
    },
    /// A preset name that does not exist.
    #[error("unknown prompt preset `{0}`; expected one of: reference, chatml, llama3")]
    UnknownPreset(String),
}

/// The built-in prompt formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptPreset {
    /// VinePPO's plain-text format (spec 3.1), for base and SFT models.
    Reference,
    /// ChatML as used by Qwen2.5-Instruct, with its default system message.
    Chatml,
    /// The Llama-3 instruct chat format.
    Llama3,
}

impl std::str::FromStr for PromptPreset {
    type Err = PromptError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "reference" => Ok(Self::Reference),
            "chatml" => Ok(Self::Chatml),
            "llama3" => Ok(Self::Llama3),
            other => Err(PromptError::UnknownPreset(other.to_string())),
        }
    }
}

/// Few-shot block settings: `k` solved training problems placed where the query template says
/// `{few_shot}`, each rendered with `shot` and followed by `separator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FewShotConfig {
    /// Number of solved examples.
    pub k: usize,
    /// Seed of the draw from the training split.
    pub seed: u64,
    /// Template of one shot, with `{problem}` and `{solution}`.
    pub shot: String,
    /// Text after every shot (so also between the last shot and the query).
    pub separator: String,
}

impl Default for FewShotConfig {
    /// The reference's few-shot layout: `"Problem:\n{problem}\n\nSolution:\n{solution}"` shots
    /// separated by three newlines.
    fn default() -> Self {
        Self {
            k: 0,
            seed: 0,
            shot: "Problem:\n{problem}\n\nSolution:\n{solution}".to_string(),
            separator: "\n\n\n".to_string(),
        }
    }
}

/// A prompt format as written in a config file. Missing fields take the reference preset's
/// values; [`PromptTemplate::new`](super::PromptTemplate::new) validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptConfig {
    /// The text the model continues: `{problem}` (required) and `{few_shot}` (optional).
    pub query: String,
    /// The SFT target after the query: `{solution}` (required).
    pub target: String,
    /// Whether the tokenizer's BOS token goes before the query.
    pub bos: bool,
    /// Whether the tokenizer's EOS token goes after the SFT target (and after a finished
    /// sampled response).
    pub eos: bool,
    /// Strings that end sampling; the engine strips them from the response.
    pub stop: Vec<String>,
    /// Optional few-shot block.
    pub few_shot: Option<FewShotConfig>,
}

impl Default for PromptConfig {
    fn default() -> Self {
        Self::preset(PromptPreset::Reference)
    }
}

impl PromptConfig {
    /// The configuration of a built-in format.
    pub fn preset(preset: PromptPreset) -> Self {
        let (query, target, bos, stop): (&str, &str, bool, &[&str]) = match preset {
            PromptPreset::Reference => (
                "{few_shot}[MATH_TASK] Problem:\n{problem}\n\nSolution:",
                "\n{solution}\n",
                true,
                &["\n\n\nProblem:"],
            ),
            PromptPreset::Chatml => (
                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
                 assistant.<|im_end|>\n<|im_start|>user\n{few_shot}{problem}<|im_end|>\n\
                 <|im_start|>assistant\n",
                "{solution}",
                false,
                &["<|im_end|>", "<|endoftext|>"],
            ),
            PromptPreset::Llama3 => (
                "<|start_header_id|>user<|end_header_id|>\n\n{few_shot}{problem}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n",
                "{solution}",
                true,
                &["<|eot_id|>"],
            ),
        };
        Self {
            query: query.to_string(),
            target: target.to_string(),
            bos,
            eos: true,
            stop: stop.iter().map(|s| s.to_string()).collect(),
            few_shot: None,
        }
    }
}

/// A prompt format in a config file: either a preset name (`prompt = "chatml"`) or a full
/// [`PromptConfig`] table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PromptSpec {
    /// A built-in format.
    Preset(PromptPreset),
    /// A custom format.
    Custom(PromptConfig),
}

impl Default for PromptSpec {
    fn default() -> Self {
        Self::Preset(PromptPreset::Reference)
    }
}

impl PromptSpec {
    /// The configuration this spec stands for.
    pub fn config(&self) -> PromptConfig {
        match self {
            Self::Preset(preset) => PromptConfig::preset(*preset),
            Self::Custom(config) => config.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for PromptSpec {
    /// A string is a preset name (unknown names list the valid ones); a map is a
    /// [`PromptConfig`] (unknown keys are errors).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PromptSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a preset name (reference, chatml, llama3) or a prompt table")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<PromptSpec, E> {
                name.parse().map(PromptSpec::Preset).map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PromptSpec, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                PromptConfig::deserialize(de).map(PromptSpec::Custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
