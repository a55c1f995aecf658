//! Exact rational numbers on `i128` with checked arithmetic.
//!
//! Every operation returns `None` on overflow instead of panicking or wrapping; the evaluator
//! then continues in floating point. Values are kept in lowest terms with a positive
//! denominator, so structural equality is numeric equality.

/// A rational number `num / den` in lowest terms, `den > 0`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Rat {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    // Works on magnitudes; callers never pass i128::MIN (rejected in `new`).
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rat {
    pub const ZERO: Rat = Rat { num: 0, den: 1 };
    pub const ONE: Rat = Rat { num: 1, den: 1 };

    /// `num / den` in lowest terms; `None` if `den == 0` or a value is `i128::MIN`.
    pub fn new(num: i128, den: i128) -> Option<Rat> {
        if den == 0 || num == i128::MIN || den == i128::MIN {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Rat {
            num: sign * num / g,
            den: sign * den / g,
        })
    }

    pub fn int(n: i128) -> Rat {
        Rat { num: n, den: 1 }
    }

    pub fn numer(self) -> i128 {
        self.num
    }

    pub fn denom(self) -> i128 {
        self.den
    }

    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Parse a decimal literal `digits[.digits]` (or `.digits`) exactly.
    pub fn parse_decimal(text: &str) -> Option<Rat> {
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut num: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            num = num.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let den = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
        Rat::new(num, den)
    }

    pub fn neg(self) -> Option<Rat> {
        Some(Rat {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    pub fn add(self, other: Rat) -> Option<Rat> {
        let g = gcd(self.den, other.den);
        let left = self.num.checked_mul(other.den / g)?;
        let right = other.num.checked_mul(self.den / g)?;
        Rat::new(
            left.checked_add(right)?,
            (self.den / g).checked_mul(other.den)?,
        )
    }

    pub fn sub(self, other: Rat) -> Option<Rat> {
        self.add(other.neg()?)
    }

    pub fn mul(self, other: Rat) -> Option<Rat> {
        // Cross-reduce first to keep intermediates small.
        let g1 = gcd(self.num, other.den).max(1);
        let g2 = gcd(other.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(other.num / g2)?;
        let den = (self.den / g2).checked_mul(other.den / g1)?;
        Rat::new(num, den)
    }

    pub fn recip(self) -> Option<Rat> {
        Rat::new(self.den, self.num)
    }

    pub fn div(self, other: Rat) -> Option<Rat> {
        self.mul(other.recip()?)
    }

    /// `self^exp` for an integer exponent (`0^0 = 1`, `0^-n` undefined).
    pub fn pow_int(self, exp: i128) -> Option<Rat> {
        let base = if exp < 0 { self.recip()? } else { self };
        let mut e = exp.checked_abs()?;
        let (mut result, mut square) = (Rat::ONE, base);
        while e > 0 {
            if e & 1 == 1 {
                result = result.mul(square)?;
            }
            e >>= 1;
            if e > 0 {
                square = square.mul(square)?;
            }
        }
        Some(result)
    }

    /// The exact non-negative `n`-th root, if `self >= 0` and both terms are perfect powers.
    pub fn root(self, n: u32) -> Option<Rat> {
        if self.num < 0 || n == 0 {
            return None;
        }
        Rat::new(int_root(self.num, n)?, int_root(self.den, n)?)
    }
}

/// Exact `n`-th root of a non-negative integer, if it is a perfect power.
fn int_root(value: i128, n: u32) -> Option<i128> {
    if n == 1 || value < 2 {
        return Some(value);
    }
    let guess = (value as f64).powf(1.0 / n as f64).round() as i128;
    (guess.saturating_sub(1)..=guess.saturating_add(1))
        .find(|&r| r >= 0 && r.checked_pow(n) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rat {
        Rat::new(n, d).unwrap()
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        assert_eq!(r(1, 2).add(r(1, 3)), Some(r(5, 6)));
        assert_eq!(r(2, -4), r(-1, 2));
        assert_eq!(r(3, 4).mul(r(4, 3)), Some(Rat::ONE));
        assert_eq!(r(1, 3).div(Rat::ZERO), None);
        assert_eq!(r(2, 3).pow_int(-3), Some(r(27, 8)));
        assert_eq!(Rat::parse_decimal("0.3333"), Some(r(3333, 10000)));
        assert_eq!(Rat::parse_decimal(".5"), Some(r(1, 2)));
        assert_eq!(Rat::parse_decimal("."), None);
        assert_eq!(r(8, 27).root(3), Some(r(2, 3)));
        assert_eq!(r(8, 1).root(2), None);
    }

    #[test]
    fn overflow_is_none_not_panic() {
        let big = Rat::int(i128::MAX / 2);
        assert_eq!(big.mul(big), None);
        assert_eq!(Rat::int(i128::MAX).add(Rat::ONE), None);
        assert_eq!(Rat::int(10).pow_int(100), None);
        assert_eq!(Rat::new(i128::MIN, 1), None);
        assert_eq!(Rat::parse_decimal(&"9".repeat(60)), None);
        assert_eq!(Rat::int(i128::MAX).root(2), None);
    }
}
