//! Equivalence of two extracted MATH answers: the reference's `math_equal`.
//!
//! Implements `math_equal` of `math_grader_minerva.py` (from DeepSeekMath's evaluation code),
//! rules tried in order:
//! 1. equal strings;
//! 2. both numeric (commas removed, `x%` read as x/100): the prediction is compared with the
//!    gold, gold/100 and gold×100 using `math.isclose(abs_tol=1e-3)` (whose default relative
//!    tolerance 1e-9 also applies); the verdict is final either way;
//! 3. an empty prediction is wrong;
//! 4. both start with `(` or `[` and close a bracket later: split the insides on `,` and compare
//!    element-wise (same number of elements);
//! 5. both `pmatrix`/`bmatrix`: compare row by row and cell by cell;
//! 6. both have one `=`: `lhs − (rhs)` symbolically equal, with either sign; if only one side has
//!    one `=` and its left-hand side has at most 2 characters (`x = 10`), compare its right-hand
//!    side with the other answer;
//! 7. symbolically equal ([`crate::symbolic`]).
//!
//! Deviation: rule 4 also requires the same opening and the same closing character on both
//! sides, so the interval `[2,5)` no longer equals `(2,5)` or `[2,5]` (the reference compares only
//! the elements and would accept them).

use crate::pystr::{parse_float, strip};
use crate::symbolic::symbolic_equal;

/// Recursion limit for nested element-wise comparisons (each level shortens the strings).
const MAX_RECURSION: usize = 16;

/// Whether two already-extracted (normalised) MATH answers are equivalent.
///
/// This is the reference's `math_equal` on single answers, without list handling or the
/// preceding `\cup` and float checks of its `is_correct`; see [`crate::grade_math`] for the full
/// grader.
///
/// ```
/// use vine_math::math_equal;
/// assert!(math_equal("0.5", r"\frac{1}{2}"));
/// assert!(math_equal("25", "25%"));
/// assert!(math_equal(r"\sqrt{8}", r"2\sqrt{2}"));
/// assert!(math_equal("(x+1)^2", "x^2+2x+1"));
/// assert!(math_equal("x=10", "10"));
/// assert!(!math_equal("0.33", r"\frac{1}{3}"));
/// ```
pub fn math_equal(pred: &str, gold: &str) -> bool {
    equal(pred, gold, 0)
}

fn equal(pred: &str, gold: &str, depth: usize) -> bool {
    if pred == gold {
        return true;
    }
    if depth > MAX_RECURSION {
        return false;
    }
    if let (Some(p), Some(g)) = (parse_digits(pred), parse_digits(gold)) {
        return [g / 100.0, g, g * 100.0]
            .iter()
            .any(|&item| is_close(item, p));
    }
    if pred.is_empty() {
        return false;
    }
    let (pred, gold) = (strip(pred), strip(gold));
    if let (Some(p), Some(g)) = (bracketed(pred), bracketed(gold)) {
        if p.open == g.open && p.close == g.close && elementwise(&p.inner, &g.inner, depth) {
            return true;
        }
    }
    if let (Some(p), Some(g)) = (matrix_rows(pred), matrix_rows(gold)) {
        if matrices_equal(&p, &g, depth) {
            return true;
        }
    }
    if equations_equal(pred, gold, depth) {
        return true;
    }
    symbolic_equal(pred, gold)
}

/// The reference's `parse_digits`: a float after removing commas, or `x%` (also `x\%`) as x/100.
pub(crate) fn parse_digits(text: &str) -> Option<f64> {
    let text = text.replace(',', "");
    if let Some(value) = parse_float(&text) {
        return Some(value);
    }
    let number = text.strip_suffix('%')?;
    let number = number.strip_suffix('\\').unwrap_or(number);
    parse_float(number).map(|v| v / 100.0)
}

/// `math.isclose(a, b, abs_tol=1e-3)` (default `rel_tol=1e-9`); infinities equal only
/// themselves and NaN nothing, as in Python.
pub(crate) fn is_close(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= (1e-9 * a.abs().max(b.abs())).max(1e-3)
}

struct Bracketed {
    open: char,
    close: char,
    inner: String,
}

/// `regex.match(r"(\(|\[).+(\)|\])", s)` and then `s[1:-1]`: opens with a bracket and closes one
/// somewhere after at least one character (on the first line), the insides being everything but
/// the first and last characters.
fn bracketed(text: &str) -> Option<Bracketed> {
    let chars: Vec<char> = text.chars().collect();
    let open = *chars.first().filter(|c| matches!(c, '(' | '['))?;
    let first_line_end = chars.iter().position(|&c| c == '\n').unwrap_or(chars.len());
    let closes = (2..first_line_end).any(|j| matches!(chars[j], ')' | ']'));
    if !closes {
        return None;
    }
    Some(Bracketed {
        open,
        close: chars[chars.len() - 1],
        inner: chars[1..chars.len() - 1].iter().collect(),
    })
}

fn elementwise(pred: &str, gold: &str, depth: usize) -> bool {
    let (p, g): (Vec<&str>, Vec<&str>) = (pred.split(',').collect(), gold.split(',').collect());
    p.len() == g.len() && p.iter().zip(&g).all(|(a, b)| equal(a, b, depth + 1))
}

/// Rows (cells split on `&`) of a `pmatrix`/`bmatrix`, as the reference slices them.
fn matrix_rows(text: &str) -> Option<Vec<Vec<&str>>> {
    const BEGIN: [&str; 2] = [r"\begin{pmatrix}", r"\begin{bmatrix}"];
    const END: [&str; 2] = [r"\end{pmatrix}", r"\end{bmatrix}"];
    let begins = BEGIN.iter().any(|b| text.starts_with(b));
    let ends = END.iter().any(|e| text.ends_with(e));
    if !begins || !ends || text.len() < BEGIN[0].len() + END[0].len() {
        return None;
    }
    let body = &text[BEGIN[0].len()..text.len() - END[0].len()];
    let rows = body.split(r"\\").map(strip).filter(|row| !row.is_empty());
    Some(rows.map(|row| row.split('&').collect()).collect())
}

fn matrices_equal(pred: &[Vec<&str>], gold: &[Vec<&str>], depth: usize) -> bool {
    pred.len() == gold.len()
        && pred.iter().zip(gold).all(|(p, g)| {
            p.len() == g.len() && p.iter().zip(g).all(|(a, b)| equal(a, b, depth + 1))
        })
}

/// Rule 6 of the module docs.
fn equations_equal(pred: &str, gold: &str, depth: usize) -> bool {
    let (pred_eq, gold_eq) = (pred.matches('=').count(), gold.matches('=').count());
    let sides = |s: &str| {
        s.split_once('=')
            .map(|(l, r)| (strip(l).to_string(), strip(r).to_string()))
    };
    if pred_eq == 1 && gold_eq == 1 {
        let (Some((pl, pr)), Some((gl, gr))) = (sides(pred), sides(gold)) else {
            return false;
        };
        let (p, g) = (format!("{pl} - ({pr})"), format!("{gl} - ({gr})"));
        return symbolic_equal(&p, &g) || symbolic_equal(&format!("-({p})"), &g);
    }
    let short_lhs = |s: &str| {
        s.split_once('=')
            .is_some_and(|(l, _)| strip(l).chars().count() <= 2)
    };
    if pred_eq == 1 && short_lhs(pred) && gold_eq == 0 {
        let rhs = pred.split_once('=').map_or("", |(_, r)| r);
        return equal(rhs, gold, depth + 1);
    }
    if gold_eq == 1 && short_lhs(gold) && pred_eq == 0 {
        let rhs = gold.split_once('=').map_or("", |(_, r)| r);
        return equal(pred, rhs, depth + 1);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_percent_scaling() {
        assert!(math_equal("25", "25%"));
        assert!(math_equal("0.25", "25%"));
        assert!(math_equal("2500", "25"));
        assert!(math_equal("1,000", "1000"));
        assert!(!math_equal("nan", "1"));
        assert!(math_equal("1e3", "1000"));
        assert!(!math_equal("2", "3"));
        // The numeric verdict is final: a number never reaches the symbolic rules.
        assert!(!math_equal("0.5", "0.6"));
    }

    #[test]
    fn brackets_and_matrices() {
        assert!(math_equal("[2,5)", "[2,5)"));
        assert!(math_equal("(1,2)", "(1.0,2)"));
        assert!(!math_equal("(2,5)", "[2,5)"));
        assert!(!math_equal("(1,2,3)", "(1,2)"));
        assert!(math_equal(
            r"\begin{pmatrix}1\\2\end{pmatrix}",
            r"\begin{bmatrix}1.0\\ 2\end{bmatrix}"
        ));
        assert!(!math_equal(
            r"\begin{pmatrix}1&2\end{pmatrix}",
            r"\begin{pmatrix}1\\2\end{pmatrix}"
        ));
    }

    #[test]
    fn equations() {
        assert!(math_equal("y=2x+1", "y=1+2x"));
        assert!(math_equal("y-2x=1", "2x-y=-1"));
        assert!(!math_equal("2y=4x+2", "y=2x+1"));
        assert!(math_equal("x=10", "10"));
        assert!(math_equal("10", "k=10"));
        assert!(!math_equal("abc=10", "10"));
    }

    #[test]
    fn edge_inputs() {
        assert!(math_equal("", ""));
        assert!(!math_equal("", "1"));
        assert!(!math_equal("=", "1"));
        assert!(!math_equal("(", ")"));
        assert!(!math_equal(r"\begin{pmatrix}\end{bmatrix}", "x"));
    }
}
