//! Answer extraction and normalisation against the reference implementation's output.
//!
//! `tests/data/normalize_cases.jsonl`: `strip_string` of `math_answer_exctraction.py` (VinePPO
//! commit `efe7228`) on 150 `\boxed{}` answers of MATH solutions and 150 of them mutated with
//! the tokens its rules target (`\!`, `\text{`, `^\circ`, `{cm}`, `\%`, `\\%`, ` .`, `inf`, `j`,
//! `10.00`, `\sqrt2`, `\frac12`, `1/2`, …). `tests/data/extract_cases.jsonl`: `extract_answer(text,
//! exhaust=True)` and `extract_math_answer(question, text)` on 150 truncated, de-boxed, extended
//! or synthetic responses. Produced by:
//!
//! ```python
//! from treetune.tasks.math_answer_exctraction import strip_string, extract_answer, extract_math_answer
//! row = {'input': a, 'output': strip_string(a)}
//! row = {'question': q, 'text': s, 'candidates': extract_answer(s, exhaust=True),
//!        'answers': extract_math_answer(q, s)}
//! ```
//!
//! Exact string equality is required. Responses with `\boxed{…}%` are left out: there we keep the
//! `%` where the reference keeps the closing brace (see `extract::boxed_answers`).

use serde::Deserialize;
use vine_math::extract::{math_answers, math_candidates};
use vine_math::normalize::strip_string;

fn rows<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[derive(Deserialize)]
struct NormalizeCase {
    input: String,
    output: String,
}

#[derive(Deserialize)]
struct ExtractCase {
    question: String,
    text: String,
    candidates: Vec<String>,
    answers: Vec<String>,
}

#[test]
fn strip_string_matches_reference() {
    let cases: Vec<NormalizeCase> = rows("normalize_cases.jsonl");
    assert_eq!(cases.len(), 300);
    for case in cases {
        assert_eq!(
            strip_string(&case.input),
            case.output,
            "input {:?}",
            case.input
        );
    }
}

#[test]
fn extraction_matches_reference() {
    let cases: Vec<ExtractCase> = rows("extract_cases.jsonl");
    assert_eq!(cases.len(), 150);
    for case in cases {
        assert_eq!(
            math_candidates(&case.text),
            case.candidates,
            "text {:?}",
            case.text
        );
        assert_eq!(
            math_answers(&case.question, &case.text),
            case.answers,
            "text {:?}",
            case.text
        );
    }
}
