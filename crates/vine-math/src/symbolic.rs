//! Symbolic equality of two answers: the last rule of `math_equal`.
//!
//! Implements the reference's `symbolic_equal(a, b)`: refuse expressions sympy might hang on
//! (more than two distinct letters on a side, exponents written with two or more leading digits
//! or starting with `(`, stacked numeric exponents, factorials of literals with three or more
//! digits); then equal if `simplify(a − b) == 0`, or, for constants, if `N(a)` and `N(b)` are
//! within `math.isclose(abs_tol=1e-3)` (relative tolerance 1e-9).
//!
//! Deviation: instead of sympy's `simplify`, expressions are compared by value.
//! - Constants (no free variables) are evaluated once; exact rationals equal exactly, and any
//!   values within the reference's `isclose` tolerance are equal, as its `N(a) ≈ N(b)` test does.
//! - With free variables, both sides are evaluated at up to [`MAX_ATTEMPTS`] seeded random
//!   rational points (skipping points where either side is undefined) and must agree at
//!   [`REQUIRED_POINTS`] of them: exactly where both stay rational, to a relative 1e-8 otherwise.
//!   For rational functions, a wrong "equal" needs every point to hit a root of the difference,
//!   which has probability zero for these point sets; for expressions with radicals or functions
//!   it is the numerical analogue of sympy's `simplify(a − b) == 0`. Principal complex branches
//!   are used, so `\sqrt{x^2} ≠ x` (as in sympy, where symbols are complex).
//! - `\infty` compares equal only to itself with the same sign.

use std::collections::BTreeMap;

use crate::expr::{eval, parse, Parsed, Rat, Value};

/// Points tried before giving up on finding enough where both sides are defined.
const MAX_ATTEMPTS: usize = 12;
/// Points at which both sides must agree.
const REQUIRED_POINTS: usize = 5;
/// The reference's refusal threshold on distinct letters per side.
const MAX_LETTERS: usize = 2;
/// Absolute tolerance of the reference's `isclose(N(a), N(b), abs_tol=1e-3)`.
const ABS_TOL: f64 = 1e-3;
/// `math.isclose`'s default relative tolerance.
const REL_TOL: f64 = 1e-9;
/// Relative agreement required at a point where a side is not exact.
const POINT_REL_TOL: f64 = 1e-8;
/// Seed of the point generator (fixed, so verdicts are reproducible).
const SEED: u64 = 0x5eed_2024_0001;

/// Whether answers `a` and `b` are equal as expressions (see the module docs).
pub(crate) fn symbolic_equal(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (parse(a), parse(b)) else {
        return false;
    };
    if [&a, &b]
        .iter()
        .any(|p| p.refused || p.letters > MAX_LETTERS)
    {
        return false;
    }
    match (a.expr.infinity_sign(), b.expr.infinity_sign()) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    let mut variables = a.variables.clone();
    variables.extend(b.variables.iter().cloned());
    variables.sort();
    variables.dedup();
    if variables.is_empty() {
        constants_equal(&a, &b)
    } else {
        equal_at_random_points(&a, &b, &variables)
    }
}

fn constants_equal(a: &Parsed, b: &Parsed) -> bool {
    let point = BTreeMap::new();
    let (Some(x), Some(y)) = (eval(&a.expr, &point), eval(&b.expr, &point)) else {
        return false;
    };
    if x == y {
        return true;
    }
    is_close(x, y)
}

/// `math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-3)` on (complex) magnitudes.
pub(crate) fn is_close(x: Value, y: Value) -> bool {
    let (x, y) = (x.to_c64(), y.to_c64());
    let difference = x.sub(y).abs();
    difference <= (REL_TOL * x.abs().max(y.abs())).max(ABS_TOL)
}

fn equal_at_random_points(a: &Parsed, b: &Parsed, variables: &[String]) -> bool {
    let mut rng = SplitMix64(SEED);
    let mut agreed = 0;
    for _ in 0..MAX_ATTEMPTS {
        let point: BTreeMap<String, Rat> = variables
            .iter()
            .map(|v| (v.clone(), random_rational(&mut rng)))
            .collect();
        let (Some(x), Some(y)) = (eval(&a.expr, &point), eval(&b.expr, &point)) else {
            continue;
        };
        let same = match (x, y) {
            (Value::Exact(p), Value::Exact(q)) => p == q,
            _ => {
                let (p, q) = (x.to_c64(), y.to_c64());
                p.sub(q).abs() <= POINT_REL_TOL * 1f64.max(p.abs()).max(q.abs())
            }
        };
        if !same {
            return false;
        }
        agreed += 1;
        if agreed == REQUIRED_POINTS {
            return true;
        }
    }
    false
}

/// A random rational `±p/q`, `2 ≤ p ≤ 31`, `1 ≤ q ≤ 7`, never ±1 or 0 (special values for which
/// different expressions often coincide, such as `x^2` and `x` at 1).
fn random_rational(rng: &mut SplitMix64) -> Rat {
    loop {
        let p = 2 + (rng.next() % 30) as i128;
        let q = 1 + (rng.next() % 7) as i128;
        let sign = if rng.next() % 2 == 0 { 1 } else { -1 };
        if let Some(r) = Rat::new(sign * p, q) {
            if r != Rat::ONE && r != Rat::int(-1) {
                return r;
            }
        }
    }
}

/// SplitMix64: a tiny, well-distributed, seedable generator (no dependency needed).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_expressions() {
        for (a, b) in [
            (r"\frac{1}{2}", "0.5"),
            (r"\frac{1}{3}", "0.3333"),
            (r"2\sqrt{2}", r"\sqrt{8}"),
            (r"\frac{\pi}{4}", r"\pi/4"),
            ("x^2+2x+1", "(x+1)^2"),
            (r"\frac{x^2-1}{x-1}", "x+1"),
            (r"\sin^2x+\cos^2x", "1"),
            (r"e^{i\pi}", "-1"),
            ("(1+i)^2", "2i"),
            (r"\frac{\sqrt{3}}{2}", "0.866"),
            ("C", "(C)"),
            (r"\infty", r"+\infty"),
            ("2ab", "2ba"),
            (r"\log_2 8", "3"),
        ] {
            assert!(symbolic_equal(a, b), "{a} = {b}");
        }
    }

    #[test]
    fn different_expressions() {
        for (a, b) in [
            (r"\frac{1}{3}", "0.33"),
            ("x^2", "x"),
            (r"\sqrt{x^2}", "x"),
            ("(x+1)^2", "x^2+1"),
            ("2^{10}", "1024"),
            ("abc", "abc"),
            (r"\infty", r"-\infty"),
            (r"\infty", "1000000"),
            ("x", "y"),
            ("1/0", "1/0"),
            ("(x+1000000)^2", "x^2+2000000x+1000000000001"),
            ("1,000", "1000"),
        ] {
            assert!(!symbolic_equal(a, b), "{a} ≠ {b}");
        }
    }
}
