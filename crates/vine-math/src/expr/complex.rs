//! Complex floating-point numbers with principal-branch elementary functions.
//!
//! Used when an expression leaves exact rational arithmetic (radicals, π, trigonometry, overflow).
//! Evaluating in ℂ makes `\sqrt{-4}`, `\ln(-1)` or `(-8)^{1/3}` well defined (principal values,
//! as sympy defines them), so both sides of a comparison are evaluated consistently instead of
//! failing on a real-domain error.

use std::f64::consts::FRAC_PI_2;

/// A complex number `re + im·i`.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct C64 {
    pub re: f64,
    pub im: f64,
}

pub(crate) const I: C64 = C64 { re: 0.0, im: 1.0 };

impl C64 {
    pub fn real(re: f64) -> C64 {
        C64 { re, im: 0.0 }
    }

    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }

    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    pub fn is_real(self) -> bool {
        self.im == 0.0
    }

    pub fn add(self, o: C64) -> C64 {
        C64 {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }

    pub fn sub(self, o: C64) -> C64 {
        C64 {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }

    pub fn neg(self) -> C64 {
        C64 {
            re: -self.re,
            im: -self.im,
        }
    }

    pub fn mul(self, o: C64) -> C64 {
        if self.is_real() && o.is_real() {
            return C64::real(self.re * o.re);
        }
        C64 {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }

    pub fn div(self, o: C64) -> C64 {
        if self.is_real() && o.is_real() {
            return C64::real(self.re / o.re);
        }
        let d = o.re * o.re + o.im * o.im;
        C64 {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }

    pub fn exp(self) -> C64 {
        let m = self.re.exp();
        if self.is_real() {
            return C64::real(m);
        }
        C64 {
            re: m * self.im.cos(),
            im: m * self.im.sin(),
        }
    }

    /// Principal logarithm; `ln 0` is `-∞` (the caller treats non-finite values as undefined).
    pub fn ln(self) -> C64 {
        if self.is_real() && self.re > 0.0 {
            return C64::real(self.re.ln());
        }
        C64 {
            re: self.abs().ln(),
            im: self.im.atan2(self.re),
        }
    }

    /// Principal square root.
    pub fn sqrt(self) -> C64 {
        if self.is_real() && self.re >= 0.0 {
            return C64::real(self.re.sqrt());
        }
        let m = self.abs();
        let re = ((m + self.re) / 2.0).sqrt();
        let im = ((m - self.re) / 2.0).sqrt();
        C64 {
            re,
            im: if self.im < 0.0 { -im } else { im },
        }
    }

    /// Principal power `self^w = exp(w ln self)`, with exact handling of small integer
    /// exponents and `0^w` (0 for `Re w > 0`, undefined otherwise).
    pub fn pow(self, w: C64) -> C64 {
        if w.is_real() && w.re.fract() == 0.0 && w.re.abs() <= 64.0 {
            let mut result = C64::real(1.0);
            for _ in 0..w.re.abs() as u32 {
                result = result.mul(self);
            }
            return if w.re < 0.0 {
                C64::real(1.0).div(result)
            } else {
                result
            };
        }
        if self.re == 0.0 && self.im == 0.0 {
            return if w.re > 0.0 {
                C64::real(0.0)
            } else {
                C64::real(f64::NAN)
            };
        }
        if self.is_real() && self.re > 0.0 && w.is_real() {
            return C64::real(self.re.powf(w.re));
        }
        w.mul(self.ln()).exp()
    }

    pub fn sin(self) -> C64 {
        C64 {
            re: self.re.sin() * self.im.cosh(),
            im: self.re.cos() * self.im.sinh(),
        }
    }

    pub fn cos(self) -> C64 {
        C64 {
            re: self.re.cos() * self.im.cosh(),
            im: -self.re.sin() * self.im.sinh(),
        }
    }

    /// `asin z = -i ln(iz + √(1 − z²))`.
    pub fn asin(self) -> C64 {
        if self.is_real() && self.re.abs() <= 1.0 {
            return C64::real(self.re.asin());
        }
        let one = C64::real(1.0);
        let root = one.sub(self.mul(self)).sqrt();
        I.neg().mul(I.mul(self).add(root).ln())
    }

    /// `acos z = π/2 − asin z`.
    pub fn acos(self) -> C64 {
        C64::real(FRAC_PI_2).sub(self.asin())
    }

    /// `atan z = (i/2)(ln(1 − iz) − ln(1 + iz))`.
    pub fn atan(self) -> C64 {
        if self.is_real() {
            return C64::real(self.re.atan());
        }
        let one = C64::real(1.0);
        let iz = I.mul(self);
        C64 { re: 0.0, im: 0.5 }.mul(one.sub(iz).ln().sub(one.add(iz).ln()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: C64, b: C64) -> bool {
        a.sub(b).abs() < 1e-12
    }

    #[test]
    fn principal_branches() {
        assert!(close(C64::real(-4.0).sqrt(), C64 { re: 0.0, im: 2.0 }));
        assert!(close(
            C64::real(-1.0).ln(),
            C64 {
                re: 0.0,
                im: std::f64::consts::PI
            }
        ));
        assert!(close(I.mul(I), C64::real(-1.0)));
        assert!(close(C64::real(2.0).pow(C64::real(-2.0)), C64::real(0.25)));
        let cube_root = C64::real(-8.0).pow(C64::real(1.0 / 3.0));
        assert!(close(
            cube_root,
            C64 {
                re: 1.0,
                im: 3f64.sqrt()
            }
        ));
        assert!(C64::real(0.0).pow(C64::real(-0.5)).re.is_nan());
        assert!(close(C64::real(2.0).asin().sin(), C64::real(2.0)));
        let z = C64 { re: 0.5, im: 0.5 };
        assert!(close(z.atan().sin().div(z.atan().cos()), z));
        assert!(close(C64::real(0.5).acos(), C64::real(0.5f64.acos())));
    }
}
