//! LaTeX-subset parser: answers such as `2\sqrt{2}`, `\frac{\pi}{4}`, `(x+1)^2`, `\dfrac12`.
//!
//! Grammar (precedence from loosest): sums `a ± b`; products `a·b`, `a/b` and implicit
//! multiplication `2x`, `x(x+1)`, `2\sqrt{3}`; unary signs; powers `a^b` (right-associative;
//! a bare exponent is one atom, a whole digit run as sympy reads `x^23`); postfix `!`; atoms:
//! numbers, letters (with subscripts `a_1`), `\pi`, `e`, `i`, `\infty`, Greek letters, groups
//! `( )`, `[ ]`, `{ }`, `|x|`, `\frac`/`\dfrac`/`\tfrac`/`\cfrac` (braced or single-token
//! arguments: `\frac12`), `\sqrt[n]{x}`, `\binom`, `\text{…}`-like wrappers, and functions
//! `\sin \cos \tan \cot \sec \csc \arcsin \arccos \arctan \ln \log \log_b \exp` with `\sin^2 x`,
//! `\sin^{-1} x`, `\sin x`, `\sin(x)`. Bare words `sqrt`, `pi`, `sin`, … are read like sympy.
//! `\left`, `\right`, spacing commands, `\mbox{…}` and `$` are ignored; unbalanced braces are
//! repaired (see [`super::lex`]). Anything else is a parse failure, which makes the symbolic
//! comparison false.

use std::collections::BTreeSet;

use super::lex::{exact_number, function_named, is_atom_command, tokenize, Tok, GREEK, WRAPPERS};
use super::{Constant, Expr, Func, Parsed, Rat, MAX_DEPTH, MAX_INPUT_CHARS, MAX_NODES};

/// Parse one answer. `None` when it is not in the supported subset or exceeds the limits.
pub(crate) fn parse(text: &str) -> Option<Parsed> {
    if text.chars().count() > MAX_INPUT_CHARS {
        return None;
    }
    let mut parser = Parser {
        toks: tokenize(text)?,
        pos: 0,
        nodes: 0,
        depth: 0,
        abs_depth: 0,
        refused: false,
        variables: BTreeSet::new(),
        letters: BTreeSet::new(),
    };
    let expr = parser.sum()?;
    if parser.pos != parser.toks.len() {
        return None;
    }
    Some(Parsed {
        expr,
        variables: parser.variables.into_iter().collect(),
        letters: parser.letters.len(),
        refused: parser.refused,
    })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    nodes: usize,
    depth: usize,
    abs_depth: usize,
    refused: bool,
    variables: BTreeSet<String>,
    letters: BTreeSet<String>,
}

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eat_sym(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Sym(c));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_sym(&mut self, c: char) -> Option<()> {
        self.eat_sym(c).then_some(())
    }

    /// Count a node; `None` past the size limit.
    fn node(&mut self, e: Expr) -> Option<Expr> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES).then_some(e)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn sum(&mut self) -> Option<Expr> {
        self.enter()?;
        let mut lhs = self.product()?;
        loop {
            if self.eat_sym('+') {
                let rhs = self.product()?;
                lhs = self.node(Expr::Add(b(lhs), b(rhs)))?;
            } else if self.eat_sym('-') {
                let rhs = self.product()?;
                lhs = self.node(Expr::Sub(b(lhs), b(rhs)))?;
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(lhs)
    }

    fn product(&mut self) -> Option<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym('*')) => Some(true),
                Some(Tok::Cmd(c)) if matches!(c.as_str(), "times" | "cdot" | "ast") => Some(true),
                Some(Tok::Sym('/')) => Some(false),
                Some(Tok::Cmd(c)) if c == "div" => Some(false),
                _ => None,
            };
            if let Some(is_mul) = op {
                self.pos += 1;
                let rhs = self.unary()?;
                lhs = self.node(if is_mul {
                    Expr::Mul(b(lhs), b(rhs))
                } else {
                    Expr::Div(b(lhs), b(rhs))
                })?;
            } else if self.starts_atom() {
                let rhs = self.power()?;
                lhs = self.node(Expr::Mul(b(lhs), b(rhs)))?;
            } else {
                break;
            }
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Expr> {
        self.enter()?;
        let e = if self.eat_sym('-') {
            let inner = self.unary()?;
            self.node(Expr::Neg(b(inner)))?
        } else if self.eat_sym('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Some(e)
    }

    fn power(&mut self) -> Option<Expr> {
        let base = self.postfix()?;
        if self.eat_sym('^') {
            let exponent = self.exponent()?;
            return self.node(Expr::Pow(b(base), b(exponent)));
        }
        Some(base)
    }

    /// The exponent after `^`, applying the reference's refusal patterns to its written form.
    fn exponent(&mut self) -> Option<Expr> {
        self.enter()?;
        let braced = self.peek() == Some(&Tok::Sym('{'));
        let offset = usize::from(braced);
        let first = self.peek_at(offset).cloned();
        let after_sign = match first {
            Some(Tok::Sym('-')) => self.peek_at(offset + 1).cloned(),
            ref other => other.clone(),
        };
        match (&first, &after_sign) {
            (Some(Tok::Sym('(')), _) => self.refused = true,
            (_, Some(Tok::Num(n)))
                if n.chars().take(2).filter(char::is_ascii_digit).count() == 2 =>
            {
                self.refused = true
            }
            _ => {}
        }
        if let (Some(Tok::Num(_)), Some(Tok::Sym('^'))) = (&first, self.peek_at(offset + 1)) {
            self.refused = true;
        }
        let e = if braced {
            self.primary()?
        } else if self.eat_sym('-') {
            let inner = self.exponent()?;
            self.node(Expr::Neg(b(inner)))?
        } else {
            let atom = self.postfix()?;
            if self.eat_sym('^') {
                let inner = self.exponent()?;
                self.node(Expr::Pow(b(atom), b(inner)))?
            } else {
                atom
            }
        };
        self.depth -= 1;
        Some(e)
    }

    fn postfix(&mut self) -> Option<Expr> {
        let literal = match self.peek() {
            Some(Tok::Num(n)) => Some(n.clone()),
            _ => None,
        };
        let mut e = self.primary()?;
        if let Some(text) = &literal {
            if self.starts_numeric_frac() {
                let fraction = self.primary()?;
                e = self.node(Expr::Add(b(e), b(fraction)))?;
            } else if self.peek() == Some(&Tok::Sym('!')) {
                let trailing_digits = text.chars().rev().take_while(char::is_ascii_digit).count();
                if trailing_digits >= 3 {
                    self.refused = true;
                }
            }
        }
        while self.eat_sym('!') {
            e = self.node(Expr::Factorial(b(e)))?;
        }
        Some(e)
    }

    /// Whether a mixed number's fraction follows: `\frac` with a numeric numerator.
    fn starts_numeric_frac(&self) -> bool {
        let is_frac = matches!(self.peek(), Some(Tok::Cmd(c)) if matches!(c.as_str(), "frac" | "dfrac" | "tfrac" | "cfrac"));
        let numerator = match self.peek_at(1) {
            Some(Tok::Sym('{')) => self.peek_at(2),
            other => other,
        };
        is_frac && matches!(numerator, Some(Tok::Num(_)))
    }

    /// Whether the next token can start an implicitly multiplied factor.
    fn starts_atom(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Ident(_)) => true,
            Some(Tok::Sym('(' | '[' | '{')) => true,
            Some(Tok::Sym('|')) => self.abs_depth == 0,
            Some(Tok::Cmd(c)) => {
                !matches!(c.as_str(), "times" | "cdot" | "ast" | "div") && is_atom_command(c)
            }
            _ => false,
        }
    }

    fn starts_function(&self) -> bool {
        match self.peek() {
            Some(Tok::Cmd(c) | Tok::Ident(c)) => {
                c != "pi" && (function_named(c).is_some() || c == "sqrt")
            }
            _ => false,
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        self.enter()?;
        let e = match self.next()? {
            Tok::Num(text) => self.number(&text)?,
            Tok::Ident(word) => self.identifier(word)?,
            Tok::Sym(open @ ('(' | '[' | '{')) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let inner = self.sum()?;
                self.expect_sym(close)?;
                inner
            }
            Tok::Sym('|') => {
                self.abs_depth += 1;
                let inner = self.sum()?;
                self.expect_sym('|')?;
                self.abs_depth -= 1;
                self.node(Expr::Abs(b(inner)))?
            }
            Tok::Cmd(name) => self.command(&name)?,
            Tok::Sym(_) => return None,
        };
        self.depth -= 1;
        Some(e)
    }

    fn number(&mut self, text: &str) -> Option<Expr> {
        let e = match exact_number(text) {
            Some(r) => Expr::Num(r),
            None => Expr::Float(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
        };
        self.node(e)
    }

    fn identifier(&mut self, word: String) -> Option<Expr> {
        if let Some(f) = function_named(&word) {
            return self.function(f);
        }
        match word.as_str() {
            "pi" => return self.node(Expr::Const(Constant::Pi)),
            "sqrt" => return self.sqrt(),
            _ => {}
        }
        self.letters.insert(word.clone());
        match word.as_str() {
            "e" if self.peek() != Some(&Tok::Sym('_')) => {
                return self.node(Expr::Const(Constant::E))
            }
            "i" if self.peek() != Some(&Tok::Sym('_')) => {
                return self.node(Expr::Const(Constant::I))
            }
            _ => {}
        }
        let mut name = word;
        if self.eat_sym('_') {
            name.push('_');
            name.push_str(&self.subscript()?);
        }
        self.variables.insert(name.clone());
        self.node(Expr::Var(name))
    }

    /// The written form of a subscript (a braced group or one token), its letters counted.
    fn subscript(&mut self) -> Option<String> {
        let toks: Vec<Tok> = if self.eat_sym('{') {
            let start = self.pos;
            let len = self.toks[start..]
                .iter()
                .position(|t| *t == Tok::Sym('}'))?;
            self.pos = start + len + 1;
            self.toks[start..start + len].to_vec()
        } else {
            vec![self.next()?]
        };
        let mut text = String::new();
        for tok in toks {
            match tok {
                Tok::Num(s) => text.push_str(&s),
                Tok::Ident(s) => {
                    self.letters.insert(s.clone());
                    text.push_str(&s);
                }
                Tok::Cmd(s) => {
                    text.push('\\');
                    text.push_str(&s);
                }
                Tok::Sym(c) => text.push(c),
            }
        }
        Some(text)
    }

    fn command(&mut self, name: &str) -> Option<Expr> {
        if let Some(f) = function_named(name) {
            return self.function(f);
        }
        match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let numerator = self.argument()?;
                let denominator = self.argument()?;
                self.node(Expr::Div(b(numerator), b(denominator)))
            }
            "binom" | "dbinom" | "tbinom" => {
                let n = self.argument()?;
                let k = self.argument()?;
                self.node(Expr::Binom(b(n), b(k)))
            }
            "sqrt" => self.sqrt(),
            "pi" => self.node(Expr::Const(Constant::Pi)),
            "infty" => self.node(Expr::Infinity),
            _ if WRAPPERS.contains(&name) => self.argument(),
            _ if GREEK.contains(&name) => {
                let var = format!("\\{name}");
                self.letters.insert(var.clone());
                self.variables.insert(var.clone());
                self.node(Expr::Var(var))
            }
            _ => None,
        }
    }

    /// `\sqrt{x}`, `\sqrt[n]{x}`, `\sqrt2`.
    fn sqrt(&mut self) -> Option<Expr> {
        let index = if self.eat_sym('[') {
            let index = self.sum()?;
            self.expect_sym(']')?;
            index
        } else {
            self.node(Expr::Num(Rat::int(2)))?
        };
        let radicand = self.argument()?;
        let one = self.node(Expr::Num(Rat::ONE))?;
        let exponent = self.node(Expr::Div(b(one), b(index)))?;
        self.node(Expr::Pow(b(radicand), b(exponent)))
    }

    /// A macro argument: a braced group, or a single token (`\frac12` takes one digit each).
    fn argument(&mut self) -> Option<Expr> {
        if let Some(Tok::Num(text)) = self.peek().cloned() {
            let mut chars = text.chars();
            let first = chars.next()?;
            let rest = chars.as_str();
            if !rest.is_empty() && first.is_ascii_digit() {
                self.toks[self.pos] = Tok::Num(rest.to_string());
                return self.number(&first.to_string());
            }
        }
        self.primary()
    }

    /// A function application: `f x`, `f(x)`, `f^2 x`, `f^{-1} x`, `\log_b x`.
    fn function(&mut self, f: Func) -> Option<Expr> {
        let base = if f == Func::Ln && self.eat_sym('_') {
            Some(self.argument()?)
        } else {
            None
        };
        let power = if self.eat_sym('^') {
            Some(self.exponent()?)
        } else {
            None
        };
        let argument = if matches!(self.peek(), Some(Tok::Sym('(' | '[' | '{'))) {
            self.primary()?
        } else {
            self.function_operand()?
        };
        let inverse = f
            .inverse()
            .filter(|_| power == Some(Expr::Neg(b(Expr::Num(Rat::ONE)))));
        let mut e = self.node(Expr::Func(inverse.unwrap_or(f), b(argument)))?;
        if let Some(base) = base {
            let ln_base = self.node(Expr::Func(Func::Ln, b(base)))?;
            e = self.node(Expr::Div(b(e), b(ln_base)))?;
        }
        match power {
            Some(p) if inverse.is_none() => self.node(Expr::Pow(b(e), b(p))),
            _ => Some(e),
        }
    }

    /// The operand of an unparenthesised function: a signed product of implicitly multiplied
    /// factors that stops before the next function (`\sin 2x \cos x` = sin(2x)·cos(x)).
    fn function_operand(&mut self) -> Option<Expr> {
        let mut e = self.unary()?;
        while self.starts_atom() && !self.starts_function() {
            let rhs = self.power()?;
            e = self.node(Expr::Mul(b(e), b(rhs)))?;
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<String> {
        parse(text).unwrap().variables
    }

    #[test]
    fn accepts_the_answer_subset() {
        for text in [
            r"2\sqrt{2}",
            r"\frac{\pi}{4}",
            r"(x+1)^2",
            r"\dfrac12",
            r"\sqrt[3]{x^2}",
            r"x^{-1}",
            r"\sin^2 x+\cos^2x",
            r"\log_{2}8",
            r"e^{i\pi}",
            r"3!",
            r"\binom{5}{2}",
            r"|x-1|",
            r"\left(\frac{1}{2}\right)",
            r"\text{(C)}",
            r"2\times3\div4",
            r"a_1+a_{12}",
            r"\theta",
            r"7\frac{3}{4}",
            r"\infty",
            "-5",
            ".5",
            "sqrt(2)",
            "2pi",
            r"\sin\frac{\pi}{2}",
            r"\text{C",
            "H}",
            r"\frac{1}{2",
            "4.2e-05",
            r"5\mbox{ cm}",
        ] {
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for text in [
            "",
            "1,2",
            "x=1",
            r"\{1,2\}",
            r"\pm 2",
            "(1",
            "1)",
            r"\frac{1}",
            r"\unknown",
            "50%",
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn refusal_rules_follow_the_reference() {
        assert!(parse("2^{10}").unwrap().refused);
        assert!(parse("x^{-12}").unwrap().refused);
        assert!(parse("2^3^4").unwrap().refused);
        assert!(parse("2^{(x)}").unwrap().refused);
        assert!(parse("100!").unwrap().refused);
        assert!(!parse("2^{9}").unwrap().refused);
        assert!(!parse("99!").unwrap().refused);
        assert!(!parse("x^{1.5}").unwrap().refused);
    }

    #[test]
    fn letters_and_variables() {
        assert_eq!(vars("xy+2x"), ["x", "y"]);
        assert_eq!(vars(r"a_1+a_2"), ["a_1", "a_2"]);
        assert_eq!(parse(r"a_1+a_2").unwrap().letters, 1);
        assert_eq!(parse(r"\sin x + e + i").unwrap().letters, 3);
        assert!(vars(r"\pi r^2").contains(&"r".to_string()));
    }

    #[test]
    fn limits_hold() {
        assert!(parse(&"(".repeat(200)).is_none());
        assert!(parse(&"-".repeat(200)).is_none());
        assert!(parse(&"\\sin".repeat(200)).is_none());
        assert!(parse(&"1+".repeat(600)).is_none());
    }
}
