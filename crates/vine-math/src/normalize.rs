//! MATH answer normalisation: the reference's `strip_string`.
//!
//! Implements `strip_string` of `math_answer_exctraction.py` (DeepSeekMath's evaluation code as
//! adapted by VinePPO), step by step in the reference's order; see [`strip_string`]. Regular
//! expressions use the `regex` crate, which runs in linear time; the patterns involved need no
//! look-around, and Rust's `\d`, `\s`, `\w` are Unicode-aware like Python's.

use std::sync::LazyLock;

use regex::Regex;

use crate::pystr::strip;

/// Compile one of the crate's fixed patterns. They are constants covered by tests, so failing to
/// compile is a programming error, never a property of user input.
pub(crate) fn builtin_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern:?}: {e}"))
}

static TEXT_UNIT: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\text\{.*?\}$"));
static METRIC_UNIT: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\{(c|m)?m\}(\^(2|3))?"));
static PM: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"p\.m\.$"));
static TRAILING_T: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(\d)\s*t$"));
static MBOX: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\mbox\{.*?\}"));
static ZERO_DECIMALS: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(\d+)\.0+([^\d])"));
static ZERO_DECIMALS_END: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(\d+)\.0+$"));
static SQRT_BARE: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\sqrt(-?[0-9.a-zA-Z]+)"));
static SQRT_SPACED: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\sqrt\s+(\w+)$"));
static TAN_BARE: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\tan(-?[0-9.a-zA-Z]+)"));
static TAN_SPACED: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"\\tan\s+(\w+)$"));
static TRAILING_PUNCT: LazyLock<Regex> = LazyLock::new(|| builtin_regex(r"(\\|,|\.)+$"));

/// Normalise a MATH answer the way the reference grader does before comparing.
///
/// In order: trim; delete newlines; strip trailing `.`; delete `\!`; unwrap a whole-string
/// `\text{…}`; `tfrac`/`dfrac`/`cfrac` → `frac`; delete `\left`, `\right`; drop a trailing
/// `\text{…}` (a unit) if something remains; delete `^{\circ}`, `^\circ`; delete `{m}`, `{cm}`,
/// `{mm}` with an optional `^2`/`^3`; delete a trailing `p.m.`; a trailing `t` after a digit;
/// delete `\$`, `$`, `x\in`; `\%` → `%` (twice); `" ."` → `" 0."`, `"{."` → `"{0."`; delete `\cdot`;
/// `infinity` → `\infty`, and a bare `inf` → `\infty`; delete `\mathbf`, `\mathrm`, `\mbox{…}`;
/// `j` → `i` when there is no `i`; drop zero decimals (`10.00` → `10`, `3.0x` → `3x`); prefix a
/// leading `.` with `0`; brace `\sqrtX` and `\tanX`; delete spaces; brace `\frac12` →
/// `\frac{1}{2}`; `a/b` of two integers → `\frac{a}{b}`; strip trailing `\`, `,`, `.`.
///
/// ```
/// use vine_math::normalize::strip_string;
/// assert_eq!(strip_string(r"\dfrac{1}{2}"), r"\frac{1}{2}");
/// assert_eq!(strip_string(r"10.00 \text{ dollars}"), "10");
/// assert_eq!(strip_string(r"30^\circ"), "30");
/// assert_eq!(strip_string(r"\frac12"), r"\frac{1}{2}");
/// assert_eq!(strip_string("3/4"), r"\frac{3}{4}");
/// assert_eq!(strip_string(r"25\%"), "25%");
/// ```
pub fn strip_string(answer: &str) -> String {
    let mut s = strip(answer).replace('\n', "");
    s = s.trim_end_matches('.').replace(r"\!", "");
    if s.starts_with(r"\text{") && s.ends_with('}') {
        // `split("{", 1)[1][:-1]`: after the first brace, without the last character.
        let inner = &s[r"\text{".len()..s.len() - 1];
        s = inner.to_string();
    }
    s = s
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace("cfrac", "frac");
    s = s.replace(r"\left", "").replace(r"\right", "");
    let without_unit = strip(&TEXT_UNIT.replace_all(&s, "")).to_string();
    if !without_unit.is_empty() && without_unit != s {
        s = without_unit;
    }
    s = strip(&s.replace(r"^{\circ}", "")).to_string();
    s = strip(&s.replace(r"^\circ", "")).to_string();
    s = strip(&METRIC_UNIT.replace_all(&s, "")).to_string();
    s = strip(&PM.replace_all(&s, "")).to_string();
    s = strip(&TRAILING_T.replace_all(&s, "$1")).to_string();
    s = s.replace(r"\$", "").replace('$', "").replace(r"x\in", "");
    // The reference replaces `\%` twice (as "\\%" and "\%", the same string), so `\\%` → `%`.
    s = s.replace(r"\%", "%").replace(r"\%", "%");
    s = s
        .replace(" .", " 0.")
        .replace("{.", "{0.")
        .replace(r"\cdot", "");
    s = s.replace("infinity", r"\infty");
    if !s.contains(r"\infty") {
        s = s.replace("inf", r"\infty");
    }
    s = s.replace(r"+\inity", r"\infty");
    s = s.replace(r"\mathbf", "").replace(r"\mathrm", "");
    s = MBOX.replace_all(&s, "").into_owned();
    if s.contains('j') && !s.contains('i') {
        s = s.replace('j', "i");
    }
    s = ZERO_DECIMALS.replace_all(&s, "${1}${2}").into_owned();
    s = ZERO_DECIMALS_END.replace_all(&s, "${1}").into_owned();
    if s.is_empty() {
        return s;
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s = SQRT_BARE.replace_all(&s, r"\sqrt{${1}}").into_owned();
    s = SQRT_SPACED.replace_all(&s, r"\sqrt{${1}}").into_owned();
    s = TAN_BARE.replace_all(&s, r"\tan{${1}}").into_owned();
    s = TAN_SPACED.replace_all(&s, r"\tan{${1}}").into_owned();
    s = s.replace(' ', "");
    s = fix_fracs(&s);
    s = fix_a_slash_b(&s);
    TRAILING_PUNCT.replace_all(&s, "").into_owned()
}

/// `\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}` (the reference's `_fix_fracs`). If a
/// `\frac` is followed by fewer than two characters the string is returned unchanged.
fn fix_fracs(s: &str) -> String {
    let mut pieces = s.split(r"\frac");
    let mut out = pieces.next().unwrap_or("").to_string();
    for piece in pieces {
        out.push_str(r"\frac");
        let mut chars = piece.chars();
        match (chars.next(), chars.next()) {
            (Some('{'), _) => out.push_str(piece),
            (Some(a), Some('{')) => {
                out.push('{');
                out.push(a);
                out.push('}');
                out.push_str(&piece[a.len_utf8()..]);
            }
            (Some(a), Some(b)) => {
                out.push_str(&format!("{{{a}}}{{{b}}}"));
                out.push_str(chars.as_str());
            }
            _ => return s.to_string(),
        }
    }
    out
}

/// `a/b` with `a`, `b` integers written canonically (or containing `sqrt`) → `\frac{a}{b}` (the
/// reference's `_fix_a_slash_b`, whose `int()` round-trip check accepts exactly these forms).
fn fix_a_slash_b(s: &str) -> String {
    let mut parts = s.split('/');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return s.to_string();
    };
    let acceptable = |part: &str| part.contains("sqrt") || is_canonical_int(part);
    if acceptable(a) && acceptable(b) {
        format!(r"\frac{{{a}}}{{{b}}}")
    } else {
        s.to_string()
    }
}

/// Whether `str(int(s)) == s` in Python: an optional `-`, then `0` or digits without a leading 0.
fn is_canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = digits == "0" || (!digits.is_empty() && !digits.starts_with('0'));
    canonical && digits.bytes().all(|b| b.is_ascii_digit()) && s != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patterns_compile() {
        for re in [
            &TEXT_UNIT,
            &METRIC_UNIT,
            &PM,
            &TRAILING_T,
            &MBOX,
            &ZERO_DECIMALS,
        ] {
            LazyLock::force(re);
        }
        for re in [
            &ZERO_DECIMALS_END,
            &SQRT_BARE,
            &SQRT_SPACED,
            &TAN_BARE,
            &TAN_SPACED,
        ] {
            LazyLock::force(re);
        }
        LazyLock::force(&TRAILING_PUNCT);
    }

    #[test]
    fn fractions_and_slashes() {
        assert_eq!(fix_fracs(r"\frac1{72}"), r"\frac{1}{72}");
        assert_eq!(
            fix_fracs(r"\frac{1}{2}+\frac34x"),
            r"\frac{1}{2}+\frac{3}{4}x"
        );
        assert_eq!(fix_fracs(r"\frac1"), r"\frac1");
        assert_eq!(fix_a_slash_b("-1/2"), r"\frac{-1}{2}");
        assert_eq!(fix_a_slash_b("01/2"), "01/2");
        assert_eq!(fix_a_slash_b(r"\sqrt{2}/2"), r"\frac{\sqrt{2}}{2}");
        assert_eq!(fix_a_slash_b("1/2/3"), "1/2/3");
        assert_eq!(fix_a_slash_b("-0/1"), "-0/1");
    }

    #[test]
    fn reference_examples() {
        assert_eq!(strip_string(r"\text{(C)}"), "(C)");
        assert_eq!(strip_string(r"5\text{ cm}^2"), r"5\text{cm}^2");
        assert_eq!(strip_string(r"5\text{ cm}"), "5");
        assert_eq!(strip_string(r"\left( 1, 2 \right)"), "(1,2)");
        assert_eq!(strip_string(r"x\in [2, 5)"), "[2,5)");
        assert_eq!(strip_string(r"x \in [2, 5)"), r"x\in[2,5)");
        assert_eq!(strip_string(r"\$1,000.00"), "1,000");
        assert_eq!(strip_string(r"3+2j"), "3+2i");
        assert_eq!(strip_string(r"\sqrt2"), r"\sqrt{2}");
        assert_eq!(strip_string(".5"), "0.5");
        assert_eq!(strip_string("inf"), r"\infty");
        // The trailing `.` is stripped first, so the `p.m.` rule never fires on this.
        assert_eq!(strip_string("10 p.m."), "10p.m");
        assert_eq!(strip_string(""), "");
    }
}
