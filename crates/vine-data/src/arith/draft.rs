//! The pieces every story is built from: computations, the problem being drafted, and the
//! dice that draw numbers within the configured bounds.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::words::{self, Person};
use super::{ArithConfig, Op, Story};

/// One computation `a op b = c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Calc {
    pub a: u64,
    pub op: Op,
    pub b: u64,
    pub c: u64,
}

impl std::fmt::Display for Calc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} = {}", self.a, self.op.symbol(), self.b, self.c)
    }
}

/// A generated problem before it becomes an [`crate::Example`].
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub story: Story,
    /// Sentences before the question.
    pub statements: Vec<String>,
    /// The final question sentence.
    pub question: String,
    /// One solution line per computation.
    pub lines: Vec<String>,
    /// The computations, in line order.
    pub calcs: Vec<Calc>,
    /// The final answer.
    pub answer: u64,
}

impl Draft {
    pub(super) fn new(story: Story) -> Self {
        Self {
            story,
            statements: Vec::new(),
            question: String::new(),
            lines: Vec::new(),
            calcs: Vec::new(),
            answer: 0,
        }
    }

    /// Records `a op b` and its solution line, built by `line` from the computation's text.
    pub(super) fn calc(
        &mut self,
        a: u64,
        op: Op,
        b: u64,
        line: impl FnOnce(&str) -> String,
    ) -> u64 {
        let c = op.apply(a, b);
        let calc = Calc { a, op, b, c };
        self.lines.push(line(&calc.to_string()));
        self.calcs.push(calc);
        c
    }
}

/// The random choices of one problem, within the configured bounds.
pub(super) struct Dice<'a> {
    pub rng: &'a mut ChaCha8Rng,
    pub config: &'a ArithConfig,
}

impl Dice<'_> {
    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..=hi)
    }

    pub(super) fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64 - 1) as usize
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    pub(super) fn allows(&self, op: Op) -> bool {
        self.config.operations.contains(&op)
    }

    /// Smallest and largest operand of `+`/`-` and starting amount: `digits` digits, at least 2.
    pub(super) fn amount_bounds(&self) -> (u64, u64) {
        let hi = 10u64.pow(self.config.digits) - 1;
        (
            10u64.pow(self.config.digits - 1).max(2),
            hi.min(self.config.max_value),
        )
    }

    pub(super) fn amount(&mut self) -> u64 {
        let (lo, hi) = self.amount_bounds();
        self.range(lo, hi)
    }

    /// `b` such that `x + b` stays within `max_value`.
    pub(super) fn add_operand(&mut self, x: u64) -> Option<u64> {
        let (lo, hi) = self.amount_bounds();
        let hi = hi.min(self.config.max_value.checked_sub(x)?);
        (lo <= hi).then(|| self.range(lo, hi))
    }

    /// `b` such that `x - b >= 2`.
    pub(super) fn sub_operand(&mut self, x: u64) -> Option<u64> {
        let (lo, hi) = self.amount_bounds();
        let hi = hi.min(x.checked_sub(2)?);
        (lo <= hi).then(|| self.range(lo, hi))
    }

    /// `k >= 2` such that `x * k` stays within `max_value`.
    pub(super) fn mul_factor(&mut self, x: u64) -> Option<u64> {
        let hi = self.config.max_factor.min(self.config.max_value / x.max(1));
        (hi >= 2).then(|| self.range(2, hi))
    }

    /// `k` in `2..=min(max_factor, 10)` dividing `x` with `x / k >= 2`.
    pub(super) fn div_factor(&mut self, x: u64) -> Option<u64> {
        let divisors: Vec<u64> = (2..=self.config.max_factor.min(10))
            .filter(|k| x % k == 0 && x / k >= 2)
            .collect();
        (!divisors.is_empty()).then(|| self.pick(&divisors))
    }

    /// `n` distinct people.
    pub(super) fn people(&mut self, n: usize) -> Vec<Person> {
        let mut pool: Vec<Person> = words::PEOPLE.to_vec();
        (0..n.min(pool.len()))
            .map(|_| pool.swap_remove(self.index(pool.len())))
            .collect()
    }

    /// Two different things to count.
    pub(super) fn things(&mut self) -> (&'static str, &'static str) {
        let first = self.index(words::THINGS.len());
        let second = (first + 1 + self.index(words::THINGS.len() - 1)) % words::THINGS.len();
        (words::THINGS[first], words::THINGS[second])
    }
}

/// The text with its first letter in upper case.
pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// "a", "a and b", "a, b and c".
pub(super) fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
