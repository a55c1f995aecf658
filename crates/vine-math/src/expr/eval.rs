//! Evaluation of an [`Expr`] at a point: exact rationals while possible, complex floats after.
//!
//! A value stays [`Value::Exact`] through `+ − × ÷`, integer powers and perfect roots as long
//! as `i128` arithmetic does not overflow; anything else (π, e, i, irrational roots,
//! trigonometry, overflow) continues in [`C64`]. `None` means undefined at this point: division
//! by zero, a pole, a non-finite float, a factorial of a non-integer, or `\infty` inside an
//! expression. Work is bounded: exponents of exact powers are capped at [`MAX_EXACT_EXPONENT`]
//! and factorials at [`MAX_FACTORIAL`].

use std::collections::BTreeMap;
use std::f64::consts::{E, PI};

use super::complex::{C64, I};
use super::{Constant, Expr, Func, Rat};

/// Largest |exponent| evaluated exactly (larger ones go through floats).
const MAX_EXACT_EXPONENT: i128 = 4096;
/// Largest root index tried exactly (`x^{p/q}` with `q` up to this).
const MAX_EXACT_ROOT: i128 = 64;
/// Largest factorial argument (171! overflows f64).
const MAX_FACTORIAL: i128 = 170;
/// Largest `k` of `\binom{n}{k}` (after using `k = min(k, n − k)`).
const MAX_BINOM_K: i128 = 1000;

/// A value: exact when possible.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Value {
    Exact(Rat),
    Approx(C64),
}

impl Value {
    /// The value as a complex float.
    pub fn to_c64(self) -> C64 {
        match self {
            Value::Exact(r) => C64::real(r.to_f64()),
            Value::Approx(z) => z,
        }
    }
}

fn approx(z: C64) -> Option<Value> {
    z.is_finite().then_some(Value::Approx(z))
}

/// Evaluate `expr` with the variables bound in `point`.
pub(crate) fn eval(expr: &Expr, point: &BTreeMap<String, Rat>) -> Option<Value> {
    use Value::Exact;
    match expr {
        Expr::Num(r) => Some(Exact(*r)),
        Expr::Float(f) => approx(C64::real(*f)),
        Expr::Var(name) => point.get(name).map(|r| Exact(*r)),
        Expr::Const(Constant::Pi) => approx(C64::real(PI)),
        Expr::Const(Constant::E) => approx(C64::real(E)),
        Expr::Const(Constant::I) => approx(I),
        Expr::Infinity => None,
        Expr::Neg(a) => match eval(a, point)? {
            Exact(r) => r
                .neg()
                .map(Exact)
                .or_else(|| approx(C64::real(-r.to_f64()))),
            Value::Approx(z) => approx(z.neg()),
        },
        Expr::Add(a, b) => arith(eval(a, point)?, eval(b, point)?, Rat::add, C64::add),
        Expr::Sub(a, b) => arith(eval(a, point)?, eval(b, point)?, Rat::sub, C64::sub),
        Expr::Mul(a, b) => arith(eval(a, point)?, eval(b, point)?, Rat::mul, C64::mul),
        Expr::Div(a, b) => divide(eval(a, point)?, eval(b, point)?),
        Expr::Pow(a, b) => power(eval(a, point)?, eval(b, point)?),
        Expr::Func(f, a) => function(*f, eval(a, point)?),
        Expr::Factorial(a) => factorial(eval(a, point)?),
        Expr::Binom(n, k) => binom(eval(n, point)?, eval(k, point)?),
        Expr::Abs(a) => match eval(a, point)? {
            Exact(r) => Some(Exact(if r.numer() < 0 { r.neg()? } else { r })),
            Value::Approx(z) => approx(C64::real(z.abs())),
        },
    }
}

fn arith(
    a: Value,
    b: Value,
    exact: fn(Rat, Rat) -> Option<Rat>,
    float: fn(C64, C64) -> C64,
) -> Option<Value> {
    if let (Value::Exact(x), Value::Exact(y)) = (a, b) {
        if let Some(r) = exact(x, y) {
            return Some(Value::Exact(r));
        }
    }
    approx(float(a.to_c64(), b.to_c64()))
}

fn divide(a: Value, b: Value) -> Option<Value> {
    match b {
        Value::Exact(y) if y.is_zero() => None,
        _ => arith(a, b, Rat::div, C64::div),
    }
}

fn power(base: Value, exponent: Value) -> Option<Value> {
    if let (Value::Exact(b), Value::Exact(e)) = (base, exponent) {
        if b.is_zero() && e.numer() <= 0 {
            return None;
        }
        if let Some(r) = exact_power(b, e) {
            return Some(Value::Exact(r));
        }
    }
    let (b, e) = (base.to_c64(), exponent.to_c64());
    if e == C64::real(0.5) {
        return approx(b.sqrt());
    }
    approx(b.pow(e))
}

/// `b^(p/q)` exactly: integer powers, and roots of non-negative perfect powers.
fn exact_power(b: Rat, e: Rat) -> Option<Rat> {
    let (p, q) = (e.numer(), e.denom());
    if p.abs() > MAX_EXACT_EXPONENT || q > MAX_EXACT_ROOT {
        return None;
    }
    let root = if q == 1 {
        b
    } else {
        b.root(u32::try_from(q).ok()?)?
    };
    root.pow_int(p)
}

fn function(f: Func, a: Value) -> Option<Value> {
    // Exact special values keep, e.g., `\ln 1 + x` or `\sin 0` exact.
    if let Value::Exact(r) = a {
        match f {
            Func::Ln if r == Rat::ONE => return Some(Value::Exact(Rat::ZERO)),
            Func::Exp | Func::Cos if r.is_zero() => return Some(Value::Exact(Rat::ONE)),
            Func::Sin | Func::Tan | Func::Asin | Func::Atan if r.is_zero() => {
                return Some(Value::Exact(Rat::ZERO))
            }
            _ => {}
        }
    }
    let z = a.to_c64();
    let one = C64::real(1.0);
    approx(match f {
        Func::Sin => z.sin(),
        Func::Cos => z.cos(),
        Func::Tan => z.sin().div(z.cos()),
        Func::Cot => z.cos().div(z.sin()),
        Func::Sec => one.div(z.cos()),
        Func::Csc => one.div(z.sin()),
        Func::Asin => z.asin(),
        Func::Acos => z.acos(),
        Func::Atan => z.atan(),
        Func::Ln if z == C64::real(0.0) => return None,
        Func::Ln => z.ln(),
        Func::Exp => z.exp(),
    })
}

/// A non-negative integer argument, or `None`.
fn natural(v: Value) -> Option<i128> {
    match v {
        Value::Exact(r) if r.is_integer() && r.numer() >= 0 => Some(r.numer()),
        _ => None,
    }
}

fn factorial(a: Value) -> Option<Value> {
    let n = natural(a).filter(|&n| n <= MAX_FACTORIAL)?;
    let mut exact = Some(Rat::ONE);
    let mut float = 1.0f64;
    for k in 2..=n {
        exact = exact.and_then(|r| r.mul(Rat::int(k)));
        float *= k as f64;
    }
    exact.map(Value::Exact).or_else(|| approx(C64::real(float)))
}

fn binom(n: Value, k: Value) -> Option<Value> {
    let (n, k) = (natural(n)?, natural(k)?);
    if k > n {
        return Some(Value::Exact(Rat::ZERO));
    }
    let k = k.min(n - k);
    if k > MAX_BINOM_K {
        return None;
    }
    let mut exact = Some(Rat::ONE);
    let mut float = 1.0f64;
    for j in 1..=k {
        // C(n, j) = C(n, j − 1) · (n − j + 1) / j stays an integer at every step.
        exact = exact.and_then(|r| r.mul(Rat::int(n - j + 1))?.div(Rat::int(j)));
        float = float * (n - j + 1) as f64 / j as f64;
    }
    exact.map(Value::Exact).or_else(|| approx(C64::real(float)))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn value(text: &str) -> Option<Value> {
        eval(&parse(text).unwrap().expr, &BTreeMap::new())
    }

    fn exact(text: &str) -> Rat {
        match value(text) {
            Some(Value::Exact(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn float(text: &str) -> f64 {
        value(text).unwrap().to_c64().re
    }

    #[test]
    fn exact_where_possible() {
        assert_eq!(exact(r"\frac{1}{2}+0.5"), Rat::ONE);
        assert_eq!(exact(r"\sqrt{16}\sqrt[3]{8}"), Rat::int(8));
        assert_eq!(exact(r"\sqrt{\frac{9}{4}}"), Rat::new(3, 2).unwrap());
        assert_eq!(exact("2^{-3}"), Rat::new(1, 8).unwrap());
        assert_eq!(exact(r"7\frac{3}{4}"), Rat::new(31, 4).unwrap());
        assert_eq!(exact(r"-7\frac{3}{4}"), Rat::new(-31, 4).unwrap());
        assert_eq!(exact("5!"), Rat::int(120));
        assert_eq!(exact(r"\binom{10}{3}"), Rat::int(120));
        assert_eq!(exact("|-3|"), Rat::int(3));
        assert_eq!(exact(r"8^{\frac{2}{3}}"), Rat::int(4));
    }

    #[test]
    fn floats_after_that() {
        assert!((float(r"2\sqrt{2}") - 8f64.sqrt()).abs() < 1e-12);
        assert!((float(r"\frac{\pi}{4}") - PI / 4.0).abs() < 1e-12);
        assert!((float(r"\log_{2}8") - 3.0).abs() < 1e-12);
        assert!((float(r"\sin^2 1+\cos^2 1") - 1.0).abs() < 1e-12);
        assert!((float("30!") - 2.652528598121911e32).abs() / 2.65e32 < 1e-12);
        let z = value(r"e^{i\pi}").unwrap().to_c64();
        assert!((z.re + 1.0).abs() < 1e-12 && z.im.abs() < 1e-12);
    }

    #[test]
    fn undefined_points() {
        for text in [
            "1/0",
            r"\frac{1}{1-1}",
            r"\ln 0",
            "0^{-1}",
            r"\infty+1",
            "(-1)!",
            "0.5!",
            "171!",
        ] {
            assert_eq!(value(text), None, "{text}");
        }
        assert_eq!(value("10^{400}"), None);
    }
}
