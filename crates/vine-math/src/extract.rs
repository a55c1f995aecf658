//! Final-answer extraction: the content of `\boxed{…}`, the GSM8K `#### n` line.
//!
//! These are the building blocks the graders and the dataset loaders share. They work on raw
//! model output, so every function accepts arbitrary text and never panics: a missing or
//! malformed answer is `None`, never an error.

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
