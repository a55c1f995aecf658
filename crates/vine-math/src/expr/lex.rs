//! Tokens of the LaTeX-subset parser ([`super::parse`]) and its vocabulary.
//!
//! Numbers (`12`, `0.5`, `.5`, `2e-3` as Python reads it), letters (ASCII runs are cut into
//! single letters except the bare words sympy knows: `sqrt`, `pi`, `sin`, …), control sequences
//! and single symbols. Whitespace, `~`, `$`, `\left`, `\right`, sizing and spacing commands and
//! `\mbox{…}` are dropped; unbalanced braces are repaired ([`balance_braces`]).

use super::{Func, Rat};

#[derive(Clone, PartialEq, Debug)]
pub(super) enum Tok {
    Num(String),
    Ident(String),
    Cmd(String),
    Sym(char),
}

/// Bare words read as functions or constants, longest first where one is a prefix of another.
const BARE_WORDS: [&str; 14] = [
    "arcsin", "arccos", "arctan", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp",
    "ln", "pi",
];

const IGNORED_COMMANDS: [&str; 22] = [
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "displaystyle",
    "textstyle",
    "limits",
    "quad",
    "qquad",
    ",",
    ";",
    ":",
];

pub(super) const WRAPPERS: [&str; 12] = [
    "text",
    "textrm",
    "textbf",
    "textit",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mbox",
    "operatorname",
    "boxed",
    "rm",
];

pub(super) const GREEK: [&str; 27] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Omega",
];

pub(super) fn function_named(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "cot" => Func::Cot,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" => Func::Atan,
        "ln" | "log" => Func::Ln,
        "exp" => Func::Exp,
        _ => return None,
    })
}

/// Split an answer into tokens (see the module docs of [`super::parse`] for what is skipped).
pub(super) fn tokenize(text: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest = &chars[i..];
        i += if c.is_whitespace() || c == '~' || c == '$' {
            1
        } else if c.is_ascii_digit() || (c == '.' && rest.get(1).is_some_and(char::is_ascii_digit))
        {
            let len = number_len(rest);
            toks.push(Tok::Num(rest[..len].iter().collect()));
            len
        } else if c == '\\' {
            command_token(rest, &mut toks)?
        } else if c.is_ascii_alphabetic() {
            let run: String = rest
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let len = BARE_WORDS
                .iter()
                .find(|w| run.starts_with(**w))
                .map_or(1, |w| w.len());
            toks.push(Tok::Ident(rest[..len].iter().collect()));
            len
        } else if c.is_alphabetic() {
            toks.push(Tok::Ident(c.to_string()));
            1
        } else {
            toks.push(Tok::Sym(c));
            1
        };
    }
    Some(balance_braces(toks))
}

/// Length of the number at the start of `chars`: digits, an optional fraction, an optional
/// exponent.
fn number_len(chars: &[char]) -> usize {
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut len = digits(0);
    if chars.get(len) == Some(&'.') {
        len += 1 + digits(len + 1);
    }
    len + scientific_exponent_len(&chars[len..])
}

/// Read the control sequence at the start of `chars` (which begins with `\`), pushing its token
/// unless it is ignored; returns its length, `None` for a lone trailing backslash.
fn command_token(chars: &[char], toks: &mut Vec<Tok>) -> Option<usize> {
    let letters = chars[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let end = if letters == 0 { 2 } else { 1 + letters };
    let name: String = chars.get(1..end)?.iter().collect();
    if name == "mbox" {
        // strip_string deletes `\mbox{…}`; do the same when it survived (`\ mbox{…}`).
        return Some(end + braced_group_len(&chars[end..]));
    }
    if IGNORED_COMMANDS.contains(&name.as_str()) || matches!(name.as_str(), "!" | " " | "$") {
        // `\left.` and `\right.` are invisible delimiters.
        let dot = matches!(name.as_str(), "left" | "right") && chars.get(end) == Some(&'.');
        return Some(end + usize::from(dot));
    }
    toks.push(Tok::Cmd(name));
    Some(end)
}

/// Length of a Python float exponent (`e5`, `E-05`) at the start of `chars`, or 0. Like
/// sympy's tokenizer, `2e5` is one number while `2e` and `2e^x` multiply by `e`.
fn scientific_exponent_len(chars: &[char]) -> usize {
    if !matches!(chars.first(), Some('e' | 'E')) {
        return 0;
    }
    let sign = usize::from(matches!(chars.get(1), Some('+' | '-')));
    let digits = chars[1 + sign..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        0
    } else {
        1 + sign + digits
    }
}

/// Length of the `{…}` group (with nested braces) at the start of `chars`, or 0.
fn braced_group_len(chars: &[char]) -> usize {
    if chars.first() != Some(&'{') {
        return 0;
    }
    let mut depth = 0usize;
    for (k, &c) in chars.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

/// Drop unmatched `}` and close unclosed `{` at the end, as pylatexenc's tolerant parser does
/// for the reference. Such fragments arise when the reference's list splitting cuts
/// `\text{C, F}` at its comma into `\text{C` and `F}`.
fn balance_braces(toks: Vec<Tok>) -> Vec<Tok> {
    let mut depth = 0usize;
    let mut balanced = Vec::with_capacity(toks.len());
    for tok in toks {
        match tok {
            Tok::Sym('{') => depth += 1,
            Tok::Sym('}') if depth == 0 => continue,
            Tok::Sym('}') => depth -= 1,
            _ => {}
        }
        balanced.push(tok);
    }
    balanced.extend(std::iter::repeat_n(Tok::Sym('}'), depth));
    balanced
}

/// A decimal literal with an optional exponent (`1.5`, `2e-3`) as an exact rational, if it fits.
pub(super) fn exact_number(text: &str) -> Option<Rat> {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Rat::parse_decimal(text);
    };
    let exponent: i128 = exponent.parse().ok().filter(|e: &i128| e.abs() <= 38)?;
    Rat::parse_decimal(mantissa)?.mul(Rat::int(10).pow_int(exponent)?)
}

pub(super) fn is_atom_command(name: &str) -> bool {
    matches!(
        name,
        "frac"
            | "dfrac"
            | "tfrac"
            | "cfrac"
            | "binom"
            | "dbinom"
            | "tbinom"
            | "sqrt"
            | "pi"
            | "infty"
    ) || function_named(name).is_some()
        || WRAPPERS.contains(&name)
        || GREEK.contains(&name)
}
