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

use crate::dataset::Example;
use template::{Slot, Template};

mod config;
mod template;

pub use config::{FewShotConfig, PromptConfig, PromptError, PromptPreset, PromptSpec};

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
