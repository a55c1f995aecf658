//! Graders: a response and a gold answer in, a 0/1 verdict out.
//!
//! - [`grade_gsm8k`] in [`Gsm8kMode::Strict`] is the reference's GSM8K rule
//!   (`src/treetune/tasks/gsm8k.py`): the text after the last `####`, stripped, commas removed,
//!   lowercased, must equal the gold answer exactly. [`Gsm8kMode::Lenient`] compares numbers.
//! - [`grade_math`] is the reference's MATH rule (`MATH.grade_answer_minerva_format` →
//!   `eval_math` → `is_correct` → [`math_equal`]): extract answer lists from the response and the
//!   gold, deduplicate both, keep the last `len(gold)` predictions, and require every prediction
//!   to match some gold answer and every gold answer to be matched. A pair matches if both
//!   contain `\cup` and their pieces match as lists, or their numbers (commas removed) differ by
//!   less than 1e-3, or the strings are equal, or [`math_equal`] holds.
//!
//! Graders never fail: a response without an answer is simply incorrect.
//!
//! Deviations: GSM8K gold commas are removed ([`crate::extract::gsm8k_gold`]); a bare gold
//! answer (without `boxed`) is used as the single gold candidate instead of being re-extracted
//! (the reference always has the full solution); a gold solution whose only box is brace-less
//! (`\boxed 2`, two MATH training problems) uses that box, where the reference extracts no gold
//! answer at all and then accepts exactly the responses without a box; at most
//! [`MAX_GOLD_ANSWERS`] distinct gold answers are compared.

use std::sync::LazyLock;

use regex::Regex;

use crate::equiv::math_equal;
use crate::expr::Rat;
use crate::extract::{gsm8k_gold, gsm8k_prediction, last_boxed, math_answers, split_answers};
use crate::normalize::{builtin_regex, strip_string};
use crate::pystr::{parse_float, strip};

/// Distinct gold answers compared at most (bounds the pairwise matching work).
pub const MAX_GOLD_ANSWERS: usize = 32;

/// The verdict of a grader.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Grade {
    /// Whether the response's final answer matches the gold answer.
    pub correct: bool,
    /// The normalised prediction(s) that were compared, joined with `", "` if several; `None`
    /// when no answer could be extracted.
    pub extracted: Option<String>,
}

impl Grade {
    /// The reward: 1.0 if correct, else 0.0.
    pub fn reward(&self) -> f32 {
        if self.correct {
            1.0
        } else {
            0.0
        }
    }
}

/// How [`grade_gsm8k`] compares answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Gsm8kMode {
    /// The reference rule: after the last `####`, exact string match (commas removed, lowercase).
    /// `72.0` and `$72` are wrong answers for a gold of `72`.
    #[default]
    Strict,
    /// For models not trained on the `####` format: correct when [`Gsm8kMode::Strict`] is, or
    /// when the numbers match. The final-answer text is taken after the last `####`, else from
    /// the last `\boxed{…}`, else after the last "answer is" or "answer:" (any case); a response
    /// with none of these markers is incorrect (there is deliberately no last-number fallback,
    /// which would reward any stray number). The first number in that text (`$1,000.50`, `-5`,
    /// `18 dollars`, `\frac{3}{4}`, `3/4`, `25%` read as 25) must equal the gold number exactly
    /// as a rational: `18.0 = 18`, `3/4 = 0.75`, `0.333 ≠ 1/3`.
    Lenient,
}

/// Grade a GSM8K response against `gold`, a bare answer (`"72"`, `"1,080"`) or a full GSM8K
/// solution ending in `#### n`.
///
/// ```
/// use vine_math::{grade_gsm8k, Gsm8kMode};
/// let strict = grade_gsm8k("3 + 4 = 7\n#### 7", "#### 7", Gsm8kMode::Strict);
/// assert!(strict.correct);
/// assert_eq!(strict.extracted.as_deref(), Some("7"));
/// assert!(!grade_gsm8k("#### 7.0", "7", Gsm8kMode::Strict).correct);
/// assert!(grade_gsm8k("The answer is $7.00.", "7", Gsm8kMode::Lenient).correct);
/// assert!(!grade_gsm8k("so 7", "7", Gsm8kMode::Lenient).correct);
/// ```
pub fn grade_gsm8k(response: &str, gold: &str, mode: Gsm8kMode) -> Grade {
    let gold = gsm8k_gold(gold);
    let strict = strict_gsm8k(response, &gold);
    if mode == Gsm8kMode::Strict || strict.correct {
        return strict;
    }
    let Some(number) = lenient_final_text(response).and_then(|t| first_number(&t)) else {
        return strict;
    };
    let correct = first_number(&gold).is_some_and(|g| numbers_equal(&number, &g));
    Grade {
        correct,
        extracted: Some(number.text),
    }
}

/// The reference rule against an already extracted gold answer.
fn strict_gsm8k(response: &str, gold: &str) -> Grade {
    let Some(prediction) = gsm8k_prediction(response) else {
        return Grade {
            correct: false,
            extracted: None,
        };
    };
    let prediction = prediction.replace(',', "").to_lowercase();
    Grade {
        correct: prediction == gold.to_lowercase(),
        extracted: Some(prediction),
    }
}

static ANSWER_IS: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(?i)answer\s*(?:is|:)"));

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    builtin_regex(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*-?(?:\d+(?:\.\d+)?|\.\d+))?")
});

/// The final-answer text of the lenient GSM8K mode (see [`Gsm8kMode::Lenient`]).
fn lenient_final_text(response: &str) -> Option<String> {
    if let Some(prediction) = gsm8k_prediction(response) {
        return Some(prediction.to_string());
    }
    if let Some(boxed) = last_boxed(response) {
        return Some(boxed);
    }
    let marker = ANSWER_IS.find_iter(response).last()?;
    Some(response[marker.end()..].to_string())
}

/// A number found by the lenient mode: its text (commas removed) and exact value if it fits.
struct Number {
    text: String,
    value: Option<Rat>,
    float: Option<f64>,
}

/// The first number of `text`, after removing `$`, `\!`, `\,` and thousands commas and reading
/// `\frac{a}{b}` / `\dfrac{a}{b}` as `a/b`.
fn first_number(text: &str) -> Option<Number> {
    let mut cleaned = text.replace(r"\$", "").replace('$', "");
    cleaned = cleaned.replace(r"\!", "").replace(r"\,", "");
    cleaned = cleaned
        .replace(r"\dfrac", r"\frac")
        .replace(r"\tfrac", r"\frac");
    cleaned = FRAC.replace_all(&cleaned, "$1/$2").into_owned();
    cleaned = THOUSANDS.replace_all(&cleaned, "$1$2").into_owned();
    cleaned = THOUSANDS.replace_all(&cleaned, "$1$2").into_owned();
    let found = NUMBER
        .find(&cleaned)?
        .as_str()
        .replace(char::is_whitespace, "");
    let (value, float) = match found.split_once('/') {
        Some((n, d)) => {
            let exact = signed_decimal(n)
                .zip(signed_decimal(d))
                .and_then(|(n, d)| n.div(d));
            let float = parse_float(n).zip(parse_float(d)).map(|(n, d)| n / d);
            (exact, float.filter(|f| f.is_finite()))
        }
        None => (signed_decimal(&found), parse_float(&found)),
    };
    Some(Number {
        text: found,
        value,
        float,
    })
}

static FRAC: LazyLock<Regex> =
    LazyLock::new(|| builtin_regex(r"\\frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}"));

static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(\d),(\d{3})"));

fn signed_decimal(text: &str) -> Option<Rat> {
    match text.strip_prefix('-') {
        Some(magnitude) => Rat::parse_decimal(magnitude)?.neg(),
        None => Rat::parse_decimal(text),
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    match (a.value, b.value, a.float, b.float) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// Grade a MATH response against `gold`, either a bare answer (`"\frac{1}{2}"`) or a full
/// reference solution, whose answers are then extracted from its `\boxed{}`s like the
/// response's. `question` enables the reference's "separated by commas" list splitting.
///
/// ```
/// use vine_math::grade_math;
/// let solution = r"Half of it is $\boxed{\frac{1}{2}}$.";
/// assert!(grade_math(r"So the answer is $\boxed{0.5}$.", solution, None).correct);
/// assert!(grade_math(r"\boxed{3} or rather \boxed{5}", "5", None).correct);
/// assert!(!grade_math(r"\boxed{5} or rather \boxed{3}", "5", None).correct);
/// let question = Some("Enter all the solutions, separated by commas.");
/// let grade = grade_math(r"$x = \boxed{-2, 1}$", "1, -2", question);
/// assert!(grade.correct);
/// assert_eq!(grade.extracted.as_deref(), Some("-2, 1"));
/// ```
pub fn grade_math(response: &str, gold: &str, question: Option<&str>) -> Grade {
    let question = question.unwrap_or("");
    let golds = if gold.contains("boxed") {
        let extracted = math_answers(question, gold);
        match last_boxed(gold) {
            // `\boxed 2` (two MATH training solutions) has no `boxed{` for the reference's cut.
            Some(answer) if extracted.is_empty() => {
                split_answers(question, vec![clean_gold(&answer)])
            }
            _ => extracted,
        }
    } else {
        split_answers(question, vec![clean_gold(gold)])
    };
    let mut golds = dedupe(golds);
    golds.truncate(MAX_GOLD_ANSWERS);
    let predictions = dedupe(math_answers(question, response));
    // Keep the last len(gold) predictions (all of them when the gold list is empty, as Python's
    // `[-0:]` does).
    let keep_from = predictions.len().saturating_sub(golds.len());
    let keep_from = if golds.is_empty() { 0 } else { keep_from };
    let predictions = predictions[keep_from..].to_vec();
    let correct = lists_match(&predictions, &golds);
    let extracted = (!predictions.is_empty()).then(|| predictions.join(", "));
    Grade { correct, extracted }
}

/// A bare gold answer, cleaned like a response candidate (first line, trimmed, normalised).
fn clean_gold(gold: &str) -> String {
    let first_line = strip(gold).split('\n').next().unwrap_or("");
    strip_string(
        first_line
            .trim_start_matches(':')
            .trim_end_matches('.')
            .trim_end_matches('/'),
    )
}

fn dedupe(items: Vec<String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

/// Every prediction matches some gold answer and every gold answer is matched.
fn lists_match<P: AsRef<str>, G: AsRef<str>>(predictions: &[P], golds: &[G]) -> bool {
    let mut gold_matched = vec![false; golds.len()];
    let mut all_predictions_matched = true;
    for prediction in predictions {
        let mut matched = false;
        for (j, gold) in golds.iter().enumerate() {
            if answers_match(prediction.as_ref(), gold.as_ref()) {
                matched = true;
                gold_matched[j] = true;
            }
        }
        all_predictions_matched &= matched;
    }
    all_predictions_matched && gold_matched.iter().all(|&m| m)
}

/// The reference's `is_correct` on one prediction and one gold answer.
fn answers_match(prediction: &str, gold: &str) -> bool {
    if prediction.contains(r"\cup") && gold.contains(r"\cup") {
        let pieces = |s: &str| s.split(r"\cup").map(str::to_string).collect::<Vec<_>>();
        return lists_match(&pieces(prediction), &pieces(gold));
    }
    let float = |s: &str| parse_float(&s.replace(',', ""));
    if let (Some(p), Some(g)) = (float(prediction), float(gold)) {
        if (p - g).abs() < 1e-3 {
            return true;
        }
    }
    (!gold.is_empty() && prediction == gold) || math_equal(prediction, gold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_numbers() {
        let cases = [
            ("#### $18", "18", true),
            ("#### 18.0", "18", true),
            ("#### 1,000", "1000", true),
            ("The answer is 18 dollars.", "18", true),
            ("answer: -5", "-5", true),
            (r"\boxed{\frac{3}{4}}", "0.75", true),
            ("#### 3/4", "0.75", true),
            ("#### 0.333", "1/3", false),
            ("#### 17", "18", false),
            ("I think 18", "18", false),
            ("#### twelve", "12", false),
        ];
        for (response, gold, correct) in cases {
            assert_eq!(
                grade_gsm8k(response, gold, Gsm8kMode::Lenient).correct,
                correct,
                "{response}"
            );
        }
    }

    #[test]
    fn strict_follows_the_reference() {
        assert!(grade_gsm8k("#### 1,080", "#### 1,080", Gsm8kMode::Strict).correct);
        assert!(grade_gsm8k("#### ABC", "abc", Gsm8kMode::Strict).correct);
        assert!(!grade_gsm8k("#### $18", "18", Gsm8kMode::Strict).correct);
        assert_eq!(
            grade_gsm8k("no marker", "1", Gsm8kMode::Strict).extracted,
            None
        );
    }

    #[test]
    fn math_lists_and_sets() {
        assert!(
            grade_math(
                r"\boxed{(-\infty,1)\cup(2,\infty)}",
                r"(-\infty, 1) \cup (2, \infty)",
                None
            )
            .correct
        );
        assert!(!grade_math(r"\boxed{1}", r"\boxed{1} and \boxed{2}", None).correct);
        assert!(grade_math(r"\boxed{2} \boxed{1}", r"\boxed{1} and \boxed{2}", None).correct);
        assert_eq!(
            grade_math("no numbers here", "1", None),
            Grade {
                correct: false,
                extracted: None
            }
        );
    }
}
