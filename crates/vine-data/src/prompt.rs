//! Prompt templates: how a problem becomes the text the policy continues, and how a reference
//! solution becomes its SFT target.
//!
//! The default is the reference implementation's format (spec 3.1): the query is `[BOS]` followed
//! by `"[MATH_TASK] Problem:\n{problem}\n\nSolution:"`, the model continues with `"\n"`, the SFT
//! target is `"\n{solution}\n"` followed by EOS, and sampling stops at `"\n\n\nProblem:"`.
//! Presets also exist for ChatML (Qwen2.5-Instruct) and the Llama-3 chat format.
//!
//! Rendering returns text only. Whether to prepend BOS or append EOS is reported by
//! [`PromptTemplate::bos`] and [`PromptTemplate::eos`]; tokenisation is the caller's job.
//!
//! Templates use `{name}` placeholders and `{{` / `}}` for literal braces. They are parsed once in
//! [`PromptTemplate::new`], so an unknown placeholder or an unbalanced brace is an error there and
//! rendering cannot fail.
//!
//! # Few-shot
//!
//! Deviation from the reference: the reference (with `prepend_in_context_few_shot`, off in every
//! VinePPO config) draws fresh shots for every problem. Here the `k` shots are drawn once, with a
//! seed, from the training split, so every prompt shares the same prefix (cheaper prefill and
//! prefix sharing). One spare shot is drawn as well and replaces a shot whose problem is the one
//! being asked, so a problem never sees its own solution.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Example;

/// Errors found while building a [`PromptTemplate`].
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
/// values; [`PromptTemplate::new`] validates it.
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

/// A placeholder a template may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Problem,
    Solution,
    FewShot,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Problem => "problem",
            Slot::Solution => "solution",
            Slot::FewShot => "few_shot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Slot(Slot),
}

/// A parsed template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`, accepting only the placeholders in `allowed` and requiring `required`.
    fn parse(
        field: &'static str,
        text: &str,
        allowed: &[Slot],
        required: &[Slot],
    ) -> Result<Self, PromptError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|&(_, n)| n) == Some('{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().map(|&(_, n)| n) == Some('}') => {
                    rest.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(PromptError::UnbalancedBrace {
                        field,
                        brace: '}',
                        position: at,
                    })
                }
                '{' => {
                    let close = text[at..].find('}').map(|i| at + i);
                    let close = close.ok_or(PromptError::UnbalancedBrace {
                        field,
                        brace: '{',
                        position: at,
                    })?;
                    let name = &text[at + 1..close];
                    let slot = allowed
                        .iter()
                        .copied()
                        .find(|s| s.name() == name)
                        .ok_or_else(|| PromptError::UnknownPlaceholder {
                            field,
                            name: name.to_string(),
                            allowed: allowed
                                .iter()
                                .map(|s| format!("`{{{}}}`", s.name()))
                                .collect::<Vec<_>>()
                                .join(", "),
                        })?;
                    if !literal.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Slot(slot));
                    while rest.peek().is_some_and(|&(i, _)| i <= close) {
                        rest.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        let template = Self { segments };
        if let Some(missing) = required.iter().find(|s| !template.has(**s)) {
            return Err(PromptError::MissingPlaceholder {
                field,
                name: missing.name(),
            });
        }
        Ok(template)
    }

    fn has(&self, slot: Slot) -> bool {
        self.segments.contains(&Segment::Slot(slot))
    }

    /// Renders with `value(slot)` substituted for every placeholder.
    fn render<'a>(&self, value: impl Fn(Slot) -> &'a str) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot(slot) => out.push_str(value(*slot)),
            }
        }
        out
    }
}

/// One drawn few-shot example: its problem (to detect self-inclusion) and its rendered text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shot {
    problem: String,
    text: String,
}

/// The few-shot block: the drawn shots, the spare, and the block rendered once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FewShotBlock {
    shots: Vec<Shot>,
    spare: Option<Shot>,
    separator: String,
    rendered: String,
}

impl FewShotBlock {
    fn draw(config: &FewShotConfig, pool: &[Example]) -> Result<Self, PromptError> {
        let both = [Slot::Problem, Slot::Solution];
        let shot_template = Template::parse("few_shot.shot", &config.shot, &both, &both)?;
        if pool.len() < config.k {
            return Err(PromptError::NotEnoughExamples {
                k: config.k,
                available: pool.len(),
            });
        }
        let wanted = (config.k + 1).min(pool.len());
        let picked = draw_distinct(pool.len(), wanted, config.seed);
        let mut shots: Vec<Shot> = picked
            .iter()
            .map(|&i| {
                let ex = &pool[i];
                let text = shot_template.render(|slot| match slot {
                    Slot::Problem => &ex.question,
                    _ => &ex.solution,
                });
                Shot {
                    problem: ex.question.clone(),
                    text,
                }
            })
            .collect();
        let spare = if shots.len() > config.k {
            shots.pop()
        } else {
            None
        };
        let mut block = Self {
            shots,
            spare,
            separator: config.separator.clone(),
            rendered: "".into(),
        };
        block.rendered = block.render_with(None);
        Ok(block)
    }

    /// The block with shot `replace` (if any) swapped for the spare.
    fn render_with(&self, replace: Option<usize>) -> String {
        let mut out = String::new();
        for (i, shot) in self.shots.iter().enumerate() {
            let shot = match (replace == Some(i), &self.spare) {
                (true, Some(spare)) => spare,
                _ => shot,
            };
            out.push_str(&shot.text);
            out.push_str(&self.separator);
        }
        out
    }

    /// The block for a query about `problem`, never containing that problem's own shot (unless
    /// the pool had no spare).
    fn for_problem(&self, problem: &str) -> std::borrow::Cow<'_, str> {
        match self.shots.iter().position(|s| s.problem == problem) {
            Some(i) if self.spare.is_some() => self.render_with(Some(i)).into(),
            _ => self.rendered.as_str().into(),
        }
    }
}

/// `count` distinct indices below `n`, in draw order (a partial Fisher-Yates shuffle with a
/// portable ChaCha8 stream).
fn draw_distinct(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..count.min(n) {
        let j = i + rng.random_range(0..(n - i) as u64) as usize;
        order.swap(i, j);
    }
    order.truncate(count.min(n));
    order
}

/// A validated prompt format, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    query: Template,
    target: Template,
    few_shot: Option<FewShotBlock>,
    bos: bool,
    eos: bool,
    stop: Vec<String>,
}

impl PromptTemplate {
    /// Parses and validates `config`; draws the few-shot examples (if any) from `pool`, normally
    /// the training split.
    pub fn new(config: &PromptConfig, pool: &[Example]) -> Result<Self, PromptError> {
        let query = Template::parse(
            "query",
            &config.query,
            &[Slot::Problem, Slot::FewShot],
            &[Slot::Problem],
        )?;
        let target = Template::parse(
            "target",
            &config.target,
            &[Slot::Solution],
            &[Slot::Solution],
        )?;
        let few_shot = match &config.few_shot {
            Some(fs) if fs.k > 0 => {
                if !query.has(Slot::FewShot) {
                    return Err(PromptError::FewShotWithoutSlot);
                }
                Some(FewShotBlock::draw(fs, pool)?)
            }
            _ => None,
        };
        Ok(Self {
            query,
            target,
            few_shot,
            bos: config.bos,
            eos: config.eos,
            stop: config.stop.clone(),
        })
    }

    /// A built-in format without few-shot examples.
    pub fn preset(preset: PromptPreset) -> Self {
        // The presets are fixed strings whose validity a unit test checks.
        Self::new(&PromptConfig::preset(preset), &[]).expect("built-in prompt presets are valid")
    }

    /// The text the model continues for `problem` (without BOS; see [`PromptTemplate::bos`]).
    pub fn query(&self, problem: &str) -> String {
        let block = self.few_shot.as_ref().map(|b| b.for_problem(problem));
        self.query.render(|slot| match slot {
            Slot::FewShot => block.as_deref().unwrap_or(""),
            _ => problem,
        })
    }

    /// The SFT target that follows the query for `solution` (without EOS; see
    /// [`PromptTemplate::eos`]).
    pub fn target(&self, solution: &str) -> String {
        self.target.render(|_| solution)
    }

    /// Whether the tokenizer's BOS token is prepended to the query.
    pub fn bos(&self) -> bool {
        self.bos
    }

    /// Whether the tokenizer's EOS token is appended after the target.
    pub fn eos(&self) -> bool {
        self.eos
    }

    /// Stop strings for sampling.
    pub fn stop(&self) -> &[String] {
        &self.stop
    }

    /// Number of few-shot examples in every query.
    pub fn shots(&self) -> usize {
        self.few_shot.as_ref().map_or(0, |b| b.shots.len())
    }
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self::preset(PromptPreset::Reference)
    }
}

#[cfg(test)]
mod tests;
