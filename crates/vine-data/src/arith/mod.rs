//! `arith`: the built-in synthetic task, multi-step arithmetic word problems in GSM8K's format.
//!
//! It is what the default training run uses on a CPU with a tiny model trained from scratch,
//! so it is built for credit assignment: every solution line is exactly one computation that
//! chains earlier results, so a small model's mistakes happen at identifiable steps (a carry in
//! `47 + 68`, a product `7 * 86`, a borrow in `100 - 67`, copying the wrong intermediate), which
//! is where VinePPO's per-step values matter.
//!
//! ```text
//! Mia has 23 marbles. She buys 4 bags with 12 marbles in each. Leo has 40 stickers.
//! Then she gives 17 marbles to Leo. How many marbles does Mia have now?
//!
//! Mia buys 4 * 12 = 48 marbles.
//! Mia now has 23 + 48 = 71 marbles.
//! Mia now has 71 - 17 = 54 marbles.
//! #### 54
//! ```
//!
//! Three story shapes (a running count, a chain of comparisons between people, a shopping bill)
//! with varied names, objects and phrasings; multipliers and divisors are sometimes words
//! ("twice", "a third"). Difficulty is dialled with [`ArithConfig`]: more steps, more digits
//! and a larger `max_factor` make problems harder; fewer operations and no distractors make
//! them easier. With the defaults, questions average about 35 words (170 characters) and
//! solutions about 120 characters; a solution has at most `max_steps + 1` lines.
//!
//! # Splits
//!
//! Train and test are disjoint by construction: a problem's split is a fixed function of its
//! arithmetic (a hash of its sequence of `a op b`), independent of the story and of the seed.
//! Two problems with the same arithmetic, however worded, are always in the same split, and a
//! test problem of one seed is never a training problem of another. Within a split, each
//! arithmetic appears once. Each split is a prefix-stable stream: asking for more training
//! problems keeps the first ones.

mod collection;
mod draft;
mod story;
mod words;

use std::collections::HashSet;

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::{Example, Splits};
use draft::{Dice, Draft};

/// An arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `a + b`.
    Add,
    /// `a - b`, never below 2.
    Sub,
    /// `a * b`, with one factor at most `max_factor`.
    Mul,
    /// `a / b`, exact, with `b` at most `min(max_factor, 10)`.
    Div,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

    /// The symbol used in solutions.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }

    /// `a op b` (callers keep operands in range: no overflow, exact division).
    fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
        }
    }
}

/// The shape of a problem's story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Story {
    Collection,
    Comparison,
    Shopping,
}

impl Story {
    const ALL: [Story; 3] = [Story::Collection, Story::Comparison, Story::Shopping];

    fn name(self) -> &'static str {
        match self {
            Story::Collection => "collection",
            Story::Comparison => "comparison",
            Story::Shopping => "shopping",
        }
    }
}

/// Knobs of the `arith` generator. Harder: more steps, more digits, a larger `max_factor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithConfig {
    /// Seed of both splits.
    pub seed: u64,
    /// Number of training problems.
    pub train_size: usize,
    /// Number of test problems.
    pub test_size: usize,
    /// Fewest computation lines in a solution (at least 1).
    pub min_steps: usize,
    /// Most computation lines in a solution (at most 10).
    pub max_steps: usize,
    /// Digits of starting amounts, prices and the operands of `+` and `-` (1 to 6).
    pub digits: u32,
    /// Largest multiplier, quantity and divisor (2 to 99; divisors stop at 10).
    pub max_factor: u64,
    /// No number in a problem exceeds this.
    pub max_value: u64,
    /// Operations the problems may use.
    pub operations: Vec<Op>,
    /// Probability that a problem contains one irrelevant sentence with a number.
    pub distractor_rate: f64,
    /// Probability that a *training* problem's reference solution is the bare final line
    /// (`#### 54`) instead of the worked lines: SFT data of mixed quality, as scraped data
    /// mixes worked solutions with bare answers. A small model imitating it answers some
    /// problems without working them out, and mostly guesses wrong there, which RL can learn
    /// to avoid. Which problems get bare answers is a fixed function of their arithmetic and
    /// the seed, so the problems themselves do not change with this rate. Test solutions are
    /// always worked.
    pub answer_only_rate: f64,
}

impl Default for ArithConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            train_size: 10_000,
            test_size: 500,
            min_steps: 2,
            max_steps: 4,
            digits: 2,
            max_factor: 9,
            max_value: 9_999,
            operations: Op::ALL.to_vec(),
            distractor_rate: 0.25,
            answer_only_rate: 0.0,
        }
    }
}

/// Why `arith` problems could not be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArithError {
    /// A knob is out of range.
    #[error("arith: `{field}` {problem}")]
    Invalid {
        /// The knob.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The knobs allow too few distinct problems for the requested split size.
    #[error(
        "arith: found only {found} distinct {split} problems of the {wanted} requested; \
         the settings allow too few problems (raise `digits`, `max_steps` or `max_value`, \
         allow more `operations`, or lower `{split}_size`)"
    )]
    Exhausted {
        /// `train` or `test`.
        split: &'static str,
        /// Problems found before giving up.
        found: usize,
        /// Problems requested.
        wanted: usize,
    },
}

impl ArithConfig {
    /// Checks every knob's range.
    pub fn validate(&self) -> Result<(), ArithError> {
        let invalid = |field, problem: &str| {
            Err(ArithError::Invalid {
                field,
                problem: problem.to_string(),
            })
        };
        if !(1..=10).contains(&self.min_steps) {
            return invalid("min_steps", "must be between 1 and 10");
        }
        if !(self.min_steps..=10).contains(&self.max_steps) {
            return invalid("max_steps", "must be between `min_steps` and 10");
        }
        if !(1..=6).contains(&self.digits) {
            return invalid("digits", "must be between 1 and 6");
        }
        if !(2..=99).contains(&self.max_factor) {
            return invalid("max_factor", "must be between 2 and 99");
        }
        if self.max_value < 10u64.pow(self.digits) || self.max_value > 1_000_000_000 {
            return invalid("max_value", "must be at least 10^digits and at most 10^9");
        }
        if self.operations.is_empty() {
            return invalid("operations", "must list at least one of add, sub, mul, div");
        }
        if !(0.0..=1.0).contains(&self.distractor_rate) {
            return invalid("distractor_rate", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.answer_only_rate) {
            return invalid("answer_only_rate", "must be between 0 and 1");
        }
        Ok(())
    }
}

/// Which split a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    Train,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// The arithmetic identity of a problem: `(op, a, b)` per computation, whatever the story.
fn signature(draft: &Draft) -> Vec<u64> {
    let mut sig = Vec::with_capacity(3 * draft.calcs.len());
    for calc in &draft.calcs {
        sig.extend([calc.op as u64, calc.a, calc.b]);
    }
    sig
}

/// FNV-1a over the little-endian bytes of `words`.
fn fnv1a(words: impl IntoIterator<Item = u64>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in words.into_iter().flat_map(|v| v.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The split a signature belongs to: FNV-1a over its little-endian bytes, even → train.
fn split_of(signature: &[u64]) -> Split {
    if fnv1a(signature.iter().copied()) % 2 == 0 {
        Split::Train
    } else {
        Split::Test
    }
}

/// Whether a training problem's reference solution is its bare answer: a uniform draw in
/// [0, 1) from a hash of the seed and the signature, below `answer_only_rate`. The hash is
/// finished with a 64-bit mixer because the low bit of FNV over the signature alone is what
/// chose the split.
fn answer_only(config: &ArithConfig, signature: &[u64]) -> bool {
    if config.answer_only_rate <= 0.0 {
        return false;
    }
    let salt = u64::from_le_bytes(*b"ans-only");
    let mut z = fnv1a(
        [salt, config.seed]
            .into_iter()
            .chain(signature.iter().copied()),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < config.answer_only_rate
}

/// Generates both splits. Deterministic in the config.
pub fn generate(config: &ArithConfig) -> Result<Splits, ArithError> {
    config.validate()?;
    Ok(Splits {
        train: generate_split(config, Split::Train, config.train_size)?,
        test: generate_split(config, Split::Test, config.test_size)?,
    })
}

/// The first `count` distinct problems of one split's stream.
fn generate_split(
    config: &ArithConfig,
    split: Split,
    count: usize,
) -> Result<Vec<Example>, ArithError> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&config.seed.to_le_bytes());
    key[8..16].copy_from_slice(b"arith\0\0\0");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(split as u64);
    let mut seen = HashSet::new();
    let mut examples = Vec::with_capacity(count);
    // A workable configuration needs about 2 draws per new problem (half belong to the other
    // split) plus some infeasible ones; this many draws in a row without a new problem means
    // the settings have (nearly) run out of distinct problems.
    const MAX_MISSES: usize = 50_000;
    let mut misses = 0;
    while examples.len() < count {
        if misses == MAX_MISSES {
            return Err(ArithError::Exhausted {
                split: split.name(),
                found: examples.len(),
                wanted: count,
            });
        }
        misses += 1;
        let Some(draft) = draw(config, &mut rng) else {
            continue;
        };
        let sig = signature(&draft);
        if split_of(&sig) == split && seen.insert(sig.clone()) {
            let bare = split == Split::Train && answer_only(config, &sig);
            examples.push(to_example(draft, split, examples.len(), bare));
            misses = 0;
        }
    }
    Ok(examples)
}

/// One attempt: a step count and a story shape, then the story's own draws.
fn draw(config: &ArithConfig, rng: &mut ChaCha8Rng) -> Option<Draft> {
    let steps = rng.random_range(config.min_steps as u64..=config.max_steps as u64) as usize;
    let story = Story::ALL[rng.random_range(0..Story::ALL.len() as u64) as usize];
    story::draft(story, &mut Dice { rng, config }, steps)
}

/// The example of a draft; `bare` keeps only the solution's final `#### N` line.
fn to_example(draft: Draft, split: Split, index: usize, bare: bool) -> Example {
    let mut question = draft.statements.join(" ");
    question.push(' ');
    question.push_str(&draft.question);
    let mut solution = if bare {
        String::new()
    } else {
        draft.lines.join("\n") + "\n"
    };
    solution.push_str(&format!("#### {}", draft.answer));
    Example {
        id: format!("arith/{}/{index}", split.name()),
        question,
        solution,
        answer: draft.answer.to_string(),
        level: Some(format!("{} steps", draft.lines.len())),
        subject: Some(draft.story.name().to_string()),
    }
}

#[cfg(test)]
mod tests;
