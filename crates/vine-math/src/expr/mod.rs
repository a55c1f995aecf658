//! A small computer-algebra core for answer equivalence: a LaTeX-subset parser and an evaluator.
//!
//! The reference decides symbolic equality with sympy: it converts LaTeX to text with
//! pylatexenc, parses that with `parse_expr`, and calls `simplify(a - b) == 0` in a worker
//! process with a 15 s timeout, then compares `N(a)` and `N(b)`. We replace this with
//! [`parse`] (LaTeX → [`Expr`]) and evaluation ([`eval`]) in exact rational arithmetic where
//! possible and principal-branch complex floating point otherwise; [`crate::symbolic`] decides
//! equality from the values. Work per call is bounded: inputs over [`MAX_INPUT_CHARS`], trees
//! over [`MAX_NODES`] nodes or nested deeper than [`MAX_DEPTH`] are not parsed.
//!
//! Deviations from the reference, all on purpose:
//! - LaTeX is parsed structurally. pylatexenc flattens groups, so the reference reads
//!   `\frac{x+1}{2}` as `x+1/2`, `2^{x+1}` as `2^x+1` and `\sqrt[3]{2}` as `sqrt(2)`; here they
//!   mean what they say.
//! - `e` is Euler's number and `i` the imaginary unit (sympy's `parse_expr` makes both plain
//!   symbols), so `e^{i\pi} = -1` and `(1+i)^2 = 2i`.
//! - A mixed number `7\frac{3}{4}` is 7 + 3/4, as in the reference, but `-7\frac{3}{4}` is
//!   −(7 + 3/4) where the reference's text substitution gives −7 + 3/4.
//! - `\log` is the natural logarithm, as in sympy; `\log_b x` is `ln x / ln b`.

mod complex;
mod eval;
mod lex;
mod parse;
mod rational;

pub(crate) use eval::{eval, Value};
pub(crate) use parse::parse;
pub(crate) use rational::Rat;

/// Longest answer the symbolic path parses, in characters.
pub(crate) const MAX_INPUT_CHARS: usize = 1000;
/// Largest expression tree, in nodes.
pub(crate) const MAX_NODES: usize = 1000;
/// Deepest nesting of groups, signs, exponents and function calls.
pub(crate) const MAX_DEPTH: usize = 64;

/// An elementary function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Ln,
    Exp,
}

impl Func {
    /// The inverse function written `f^{-1}`, for the trigonometric functions that have one.
    pub fn inverse(self) -> Option<Func> {
        match self {
            Func::Sin => Some(Func::Asin),
            Func::Cos => Some(Func::Acos),
            Func::Tan => Some(Func::Atan),
            _ => None,
        }
    }
}

/// A named constant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Constant {
    Pi,
    E,
    I,
}

/// A parsed expression.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Expr {
    /// An exact literal (integer or terminating decimal).
    Num(Rat),
    /// A literal too long for exact arithmetic.
    Float(f64),
    /// A free variable (`x`, `a_1`, `\theta`).
    Var(String),
    Const(Constant),
    /// `\infty`; only meaningful alone or negated (see [`Expr::infinity_sign`]).
    Infinity,
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Func(Func, Box<Expr>),
    Factorial(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    Abs(Box<Expr>),
}

impl Expr {
    /// `Some(±1)` when the expression is `\infty`, `+\infty` or `-\infty`.
    pub fn infinity_sign(&self) -> Option<i8> {
        match self {
            Expr::Infinity => Some(1),
            Expr::Neg(inner) => inner.infinity_sign().map(|s| -s),
            _ => None,
        }
    }
}

/// The result of parsing one answer.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub expr: Expr,
    /// Free variable names, sorted.
    pub variables: Vec<String>,
    /// Distinct letters, counted as the reference counts them for its refusal rule: every
    /// variable letter (subscripts included), Greek letters, and `e`, `i`; not the letters of
    /// function names or `\pi`.
    pub letters: usize,
    /// The reference refuses to evaluate this (sympy-hang guards): an exponent written with two
    /// or more leading digits or starting with `(`, a stacked numeric exponent `2^3^4`, or the
    /// factorial of a literal with three or more digits.
    pub refused: bool,
}
