//! Property tests: every public function accepts any text without panicking, and the splitters
//! always partition the response exactly.
//!
//! Inputs are arbitrary Unicode strings and strings assembled from LaTeX and solution fragments
//! (math delimiters, environments, fractions, radicals, exponents, boxes, answer markers,
//! newlines and sentence ends), which reach the deep paths of the parser and splitters far more
//! often than random characters do.

use std::ops::Range;

use proptest::prelude::*;
use vine_math::extract::{gsm8k_gold, last_boxed, math_answers, math_candidates};
use vine_math::normalize::strip_string;
use vine_math::{grade_gsm8k, grade_math, math_equal, split_gsm8k, split_math, Gsm8kMode};

const FRAGMENTS: &[&str] = &[
    r"\frac",
    r"\dfrac",
    "{",
    "}",
    r"\sqrt",
    "[",
    "]",
    "(",
    ")",
    "^",
    "_",
    "x",
    "y",
    "a",
    "2",
    "10",
    "0.5",
    ".",
    ",",
    "=",
    "+",
    "-",
    "*",
    "/",
    r"\pi",
    "e",
    "i",
    "!",
    "|",
    r"\left(",
    r"\right)",
    r"\boxed{",
    r"\fbox{",
    "$",
    "$$",
    r"\(",
    r"\)",
    r"\[",
    r"\]",
    "\n",
    " ",
    ". ",
    "The",
    " and ",
    " to ",
    ":",
    r"\begin{align*}",
    r"\end{align*}",
    "&",
    r"\\",
    "####",
    "\n#### ",
    r"\text{",
    r"\cup",
    r"\infty",
    "%",
    r"\%",
    r"\sin",
    r"\log_",
    r"\binom",
    "1,000",
    "[asy]",
    "[/asy]",
    r"\equiv",
    r"\cancelto",
    ",$",
    "he answer is",
    "```output",
    "```",
    r"\begin{pmatrix}",
    r"\end{pmatrix}",
    "é",
    "日本",
    "\u{1c}",
    r"^{100}",
    "99!",
    "1e5",
];

fn latexish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60).prop_map(|parts| parts.concat())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), latexish()]
}

/// Ranges are contiguous, cover `text`, fall on char boundaries, and are non-empty unless the
/// text is empty (then exactly one empty range).
fn assert_partition(text: &str, ranges: &[Range<usize>]) {
    if text.is_empty() {
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].is_empty() && ranges[0].start == 0);
        return;
    }
    assert!(!ranges.is_empty());
    let mut at = 0;
    for r in ranges {
        assert_eq!(r.start, at, "gap or overlap in {ranges:?}");
        assert!(r.end > r.start, "empty step in {ranges:?}");
        assert!(
            text.get(r.clone()).is_some(),
            "range {r:?} splits a character"
        );
        at = r.end;
    }
    assert_eq!(at, text.len());
    let joined: String = ranges.iter().map(|r| &text[r.clone()]).collect();
    assert_eq!(joined, text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn math_splitter_partitions(response in text()) {
        assert_partition(&response, &split_math(&response));
    }

    #[test]
    fn gsm8k_splitter_partitions(response in text()) {
        match split_gsm8k(&response) {
            Some(ranges) => assert_partition(&response, &ranges),
            None => prop_assert!(response.matches("\n#### ").count() > 1),
        }
    }

    #[test]
    fn graders_never_panic(response in text(), gold in text(), question in text()) {
        let _ = grade_math(&response, &gold, Some(&question));
        let _ = grade_math(&response, &gold, None);
        let strict = grade_gsm8k(&response, &gold, Gsm8kMode::Strict);
        let lenient = grade_gsm8k(&response, &gold, Gsm8kMode::Lenient);
        // Lenient accepts everything strict accepts.
        prop_assert!(!strict.correct || lenient.correct);
    }

    #[test]
    fn equivalence_never_panics(a in text(), b in text()) {
        let _ = math_equal(&a, &b);
        // Every string equals itself.
        prop_assert!(math_equal(&a, &a));
    }

    #[test]
    fn extraction_never_panics(text in text()) {
        let _ = strip_string(&text);
        let _ = last_boxed(&text);
        let _ = gsm8k_gold(&text);
        let _ = math_answers("separated by commas", &text);
        let _ = math_candidates(&text);
    }

    /// A correct reference solution grades as correct against itself.
    #[test]
    fn boxed_answers_grade_against_themselves(answer in latexish()) {
        let answer = answer.replace(['{', '}'], "");
        let response = format!("so the result is $\\boxed{{{answer}}}$.");
        prop_assert!(grade_math(&response, &response, None).correct);
    }
}
