//! Final-answer extraction: the content of `\boxed{…}`, the GSM8K `#### n` line.
//!
//! These are the building blocks the graders and the dataset loaders share. They work on raw
//! model output, so every function accepts arbitrary text and never panics: a missing or
//! malformed answer is `None`, never an error.

use std::sync::LazyLock;

use regex::Regex;

use crate::normalize::{builtin_regex, strip_string};
use crate::pystr::strip;

/// Content of the **last** `\boxed{…}` or `\fbox{…}` in `text`, with nested braces matched.
///
/// Also accepts the brace-less form `\boxed 5`, whose content runs to the next `$`, newline or
/// the end of the text (trimmed). Returns `None` when there is no box, when the last box is
/// unbalanced (for example a response cut off inside it), or when its content is empty in the
/// brace-less form.
///
/// This is the gold-answer rule of the MATH release (`last_boxed_only_string` followed by
/// `remove_boxed`). The MATH *grader* instead looks at every box; see
/// [`boxed_answers`].
///
/// ```
/// use vine_math::extract::last_boxed;
/// assert_eq!(last_boxed(r"so $\boxed{\frac{1}{2}}$."), Some(r"\frac{1}{2}".to_string()));
/// assert_eq!(last_boxed(r"\boxed{1} then \fbox{2}"), Some("2".to_string()));
/// assert_eq!(last_boxed(r"$\boxed 5$"), Some("5".to_string()));
/// assert_eq!(last_boxed(r"\boxed{3"), None);
/// ```
pub fn last_boxed(text: &str) -> Option<String> {
    let (start, command) = last_box_command(text)?;
    let rest = &text[start + command.len()..];
    if rest.starts_with('{') {
        let end = matching_brace(rest)?;
        return Some(rest[1..end].to_string());
    }
    // `\boxed 5`: the command must be followed by whitespace, otherwise it is some other
    // control sequence such as `\boxedx`.
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let content = rest.split(['$', '\n']).next().unwrap_or("").trim();
    (!content.is_empty()).then(|| content.to_string())
}

/// Byte position and spelling of the last `\boxed` or `\fbox` command in `text`.
fn last_box_command(text: &str) -> Option<(usize, &'static str)> {
    let boxed = text.rfind(r"\boxed").map(|i| (i, r"\boxed"));
    let fbox = text.rfind(r"\fbox").map(|i| (i, r"\fbox"));
    match (boxed, fbox) {
        (Some(b), Some(f)) => Some(if b.0 > f.0 { b } else { f }),
        (b, f) => b.or(f),
    }
}

/// Byte index of the `}` that closes the `{` at the start of `text`, or `None` if unbalanced.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, byte) in text.bytes().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The content of **every** `boxed{…}` in `text`, in order, as the MATH reference grader
/// extracts them (`extract_boxed_answers`).
///
/// The text is cut at each occurrence of `boxed{`; each piece contributes the text up to the
/// brace that closes it; if that brace is directly followed by `%` (`\boxed{25}%`), a `%` is
/// appended to the content. A piece whose brace never closes contributes nothing. Because the
/// cut is at `boxed{`, `\fbox{…}` is not seen, and a box nested directly inside another
/// (`\boxed{\boxed{1}}`) yields only the inner content, as in the reference.
///
/// Deviation: the reference means to keep the `%` but slices one character short and keeps the
/// closing brace instead (`"25}"`), which can never match; we keep the `%` (`"25%"`).
pub fn boxed_answers(text: &str) -> Vec<String> {
    let mut answers = Vec::new();
    for piece in text.split("boxed{").skip(1) {
        let mut depth: i64 = 0;
        for (i, byte) in piece.bytes().enumerate() {
            match byte {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth < 0 {
                        let mut answer = piece[..i].to_string();
                        if piece.as_bytes().get(i + 1) == Some(&b'%') {
                            answer.push('%');
                        }
                        answers.push(answer);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    answers
}

/// The final answer of a GSM8K dataset solution: the text after its `####` marker, trimmed,
/// with thousands commas removed (`"…\n#### 1,080"` → `"1080"`).
///
/// The dataset has exactly one `####` per solution; if there are several, the text between the
/// first and the second is used, as the reference does (`split("####")[1]`). Text without a
/// marker is taken to be a bare answer already and is returned trimmed, without commas, so the
/// function is idempotent.
///
/// Deviation: the reference keeps the commas of the gold answer while it removes them from the
/// prediction, so its 79 train and 14 test problems whose answer is written `1,080` can never
/// be graded correct. We remove them on both sides.
///
/// ```
/// use vine_math::extract::gsm8k_gold;
/// assert_eq!(gsm8k_gold("48/2 = 24 clips.\n#### 72"), "72");
/// assert_eq!(gsm8k_gold("#### 1,080"), "1080");
/// assert_eq!(gsm8k_gold(" 72 "), "72");
/// ```
pub fn gsm8k_gold(answer: &str) -> String {
    let bare = match answer.split("####").nth(1) {
        Some(after_marker) => after_marker,
        None => answer,
    };
    bare.trim().replace(',', "")
}

/// The prediction of a GSM8K response under the reference rule: the text after the **last**
/// `####`, trimmed. `None` when the response has no marker (an unfinished response).
///
/// ```
/// use vine_math::extract::gsm8k_prediction;
/// assert_eq!(gsm8k_prediction("so 3 + 4 = 7\n#### 7\n"), Some("7"));
/// assert_eq!(gsm8k_prediction("the answer is 7"), None);
/// ```
pub fn gsm8k_prediction(response: &str) -> Option<&str> {
    let marker = response.rfind("####")?;
    Some(response[marker + 4..].trim())
}

/// Every final-answer candidate of a MATH response, normalised, in order (the reference's
/// Minerva-format `extract_answer(text, exhaust=True)`).
///
/// The first rule that applies gives the raw candidates:
/// 1. `final answer is $…$. I hope` (the Minerva few-shot format): the text between;
/// 2. the text contains `boxed`: every [`boxed_answers`] (possibly none);
/// 3. `he answer is`: the text after its last occurrence;
/// 4. the last ```` ```output ```` block, if non-empty, else the last number of the text with
///    commas removed (`-?\d*\.?\d+`).
///
/// Each candidate is cut to its first line, stripped of a leading `:` and trailing `.` and `/`,
/// and normalised with [`strip_string`].
///
/// ```
/// use vine_math::extract::math_candidates;
/// assert_eq!(math_candidates(r"so $x = \boxed{\dfrac12}$."), [r"\frac{1}{2}"]);
/// assert_eq!(math_candidates("we get 3 apples and then 7 pears"), ["7"]);
/// ```
pub fn math_candidates(text: &str) -> Vec<String> {
    raw_math_candidates(text)
        .iter()
        .map(|raw| clean_candidate(raw))
        .collect()
}

fn raw_math_candidates(text: &str) -> Vec<String> {
    const MINERVA_OPEN: &str = "final answer is $";
    const MINERVA_CLOSE: &str = "$. I hope";
    if text.contains(MINERVA_OPEN) && text.contains(MINERVA_CLOSE) {
        let after = text.split_once(MINERVA_OPEN).map_or("", |(_, rest)| rest);
        let inner = after
            .split_once(MINERVA_CLOSE)
            .map_or(after, |(inner, _)| inner);
        return vec![strip(inner).to_string()];
    }
    if text.contains("boxed") {
        return boxed_answers(text);
    }
    if let Some(at) = text.rfind("he answer is") {
        return vec![strip(&text[at + "he answer is".len()..]).to_string()];
    }
    let output = program_output(text);
    if !output.is_empty() {
        return vec![output.to_string()];
    }
    let without_commas = text.replace(',', "");
    LAST_NUMBER
        .find_iter(&without_commas)
        .last()
        .map(|m| vec![m.as_str().to_string()])
        .unwrap_or_default()
}

static LAST_NUMBER: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"-?\d*\.?\d+"));

static TEXT_AND: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\text\{\s*and\s*\}"));

/// Content of the last ```` ```output ```` block, stripped (empty if none).
fn program_output(text: &str) -> &str {
    let Some(at) = text.rfind("```output") else {
        return "";
    };
    let block = &text[at + "```output".len()..];
    strip(block.split("```").next().unwrap_or(""))
}

/// First line, `lstrip(":")`, `rstrip(".")`, `rstrip("/")`, then `strip_string`.
fn clean_candidate(raw: &str) -> String {
    let first_line = strip(raw).split('\n').next().unwrap_or("");
    let trimmed = first_line
        .trim_start_matches(':')
        .trim_end_matches('.')
        .trim_end_matches('/');
    strip_string(trimmed)
}

/// The answers of a MATH response as a list (the reference's `extract_math_answer`): each
/// candidate of [`math_candidates`] is split on commas when the question asks for answers
/// "separated by commas" and the candidate has no brackets, or at `\text{ and }`.
///
/// ```
/// use vine_math::extract::math_answers;
/// let question = "Enter all the solutions, separated by commas.";
/// assert_eq!(math_answers(question, r"\boxed{-2, 1}"), ["-2", "1"]);
/// assert_eq!(math_answers("", r"\boxed{3 \text{ and } 4}"), ["3", "4"]);
/// ```
pub fn math_answers(question: &str, text: &str) -> Vec<String> {
    split_answers(question, math_candidates(text))
}

/// The reference's list splitting of normalised candidates (see [`math_answers`]).
pub(crate) fn split_answers(question: &str, candidates: Vec<String>) -> Vec<String> {
    let by_commas = question.contains("separated by commas");
    let mut answers = Vec::new();
    for candidate in candidates {
        if by_commas && !candidate.contains(['(', ')', '[', ']']) {
            answers.extend(candidate.split(',').map(|a| strip(a).to_string()));
        } else if TEXT_AND.is_match(&candidate) {
            let joined = TEXT_AND.replace_all(&candidate, "[SEP]");
            answers.extend(joined.split("[SEP]").map(|a| strip(a).to_string()));
        } else {
            answers.push(strip(&candidate).to_string());
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_boxed_matches_nested_braces() {
        assert_eq!(
            last_boxed(r"$\boxed{\frac{a}{b^{2}}}$ and more").as_deref(),
            Some(r"\frac{a}{b^{2}}")
        );
        assert_eq!(last_boxed(r"\fbox{1} then \boxed{2}").as_deref(), Some("2"));
        assert_eq!(last_boxed(r"\boxed{}").as_deref(), Some(""));
    }

    #[test]
    fn last_boxed_rejects_missing_or_broken_boxes() {
        assert_eq!(last_boxed("no box here"), None);
        assert_eq!(last_boxed(r"\boxed{1} and \boxed{2"), None);
        assert_eq!(last_boxed(r"\boxedx"), None);
        assert_eq!(last_boxed(r"\boxed"), None);
        assert_eq!(last_boxed(r"\boxed }"), Some("}".to_string()));
        assert_eq!(
            last_boxed("\\boxed 12 apples\nnext"),
            Some("12 apples".to_string())
        );
    }

    #[test]
    fn boxed_answers_follows_the_reference_cut() {
        assert_eq!(boxed_answers(r"\boxed{3} … \boxed{5}"), vec!["3", "5"]);
        assert_eq!(boxed_answers(r"\boxed{25}\%"), vec!["25"]);
        assert_eq!(boxed_answers(r"\boxed{25}%"), vec!["25%"]);
        assert_eq!(boxed_answers(r"\boxed{\boxed{1}}"), vec!["1"]);
        assert_eq!(boxed_answers(r"\boxed{1"), Vec::<String>::new());
        assert_eq!(boxed_answers(r"\fbox{1}"), Vec::<String>::new());
    }

    #[test]
    fn gsm8k_gold_and_prediction() {
        assert_eq!(gsm8k_gold("a\n#### -5"), "-5");
        assert_eq!(gsm8k_gold("a #### 1 #### 2"), "1");
        assert_eq!(gsm8k_prediction("a #### 1 #### 2 "), Some("2"));
        assert_eq!(gsm8k_prediction("####"), Some(""));
    }
}
