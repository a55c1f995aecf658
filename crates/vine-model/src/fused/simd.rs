//! Wider vectors for the fused kernels' loops without changing their results.
//!
//! The crate is built for baseline x86-64 (SSE2), so the compiler vectorises loops 4 floats
//! wide. [`multiversion!`] compiles a kernel a second time with AVX2 enabled and picks that
//! copy at run time when the CPU has it. Rust never contracts `a * b + c` into a fused
//! multiply-add and never reorders float arithmetic on its own, so both copies compute
//! exactly the same values; only loops written with independent lanes (element-wise maps,
//! sums over fixed interleaved partial accumulators) get wider.

/// True when the CPU runs the AVX2 copies of the kernels.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Defines `fn $name<T: Real>(args) -> ret` whose body is compiled twice: for the baseline
/// target and with AVX2 (x86-64 only), dispatched on the CPU's features. Arguments must be
/// plain identifiers.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name<T: $crate::fused::Real>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner<T: $crate::fused::Real>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2<T: $crate::fused::Real>($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                if $crate::fused::simd::has_avx2() {
                    // SAFETY: the CPU supports AVX2, the only feature `avx2` is compiled with.
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Lanes of the interleaved partial sums and maxima.
pub(crate) const LANES: usize = 8;

multiversion! {
    /// `Σ a_i b_i` in [`LANES`] interleaved partial sums (a fixed order for any input).
    pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
        let mut acc = [T::zero(); LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        let mut s = T::zero();
        for (x, y) in ra.iter().zip(rb) {
            s += *x * *y;
        }
        acc.iter().fold(s, |s, &x| s + x)
    }
}

multiversion! {
    /// `Σ a_i` in [`LANES`] interleaved partial sums.
    pub(crate) fn sum<T: Real>(a: &[T]) -> T {
        let mut acc = [T::zero(); LANES];
        let chunks = a.chunks_exact(LANES);
        let rest = chunks.remainder();
        for x in chunks {
            for l in 0..LANES {
                acc[l] += x[l];
            }
        }
        let s = rest.iter().fold(T::zero(), |s, &x| s + x);
        acc.iter().fold(s, |s, &x| s + x)
    }
}

multiversion! {
    /// The largest element (−∞ for an empty slice), from [`LANES`] interleaved maxima.
    pub(crate) fn max<T: Real>(a: &[T]) -> T {
        let mut acc = [T::NEG_INFINITY; LANES];
        let chunks = a.chunks_exact(LANES);
        let rest = chunks.remainder();
        for x in chunks {
            for l in 0..LANES {
                acc[l] = if x[l] > acc[l] { x[l] } else { acc[l] };
            }
        }
        let pick = |m: T, &x: &T| if x > m { x } else { m };
        acc.iter().chain(rest).fold(T::NEG_INFINITY, pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_agree_with_plain_loops() {
        for n in [0usize, 1, 7, 8, 9, 31, 100] {
            let a: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 4.5).collect();
            let b: Vec<f64> = (0..n).map(|i| ((i * 13) % 7) as f64 * 0.5).collect();
            let naive_dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert_eq!(dot(&a, &b), naive_dot); // small integers and halves: exact
            assert_eq!(sum(&a), a.iter().sum::<f64>());
            let m = a.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            assert_eq!(max(&a), m);
        }
    }
}
