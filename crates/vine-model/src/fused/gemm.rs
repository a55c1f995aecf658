//! Bounds-checked GEMM on strided views of slices, through the `gemm` crate candle itself
//! uses for matmul (same microkernels, so the same precision).

use candle_core::Result;
use gemm::Parallelism;

use super::Real;

/// A strided matrix inside a slice: element `(i, j)` is at `offset + i·rs + j·cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// A row-major view with row stride `rs`, starting at `offset`.
    pub(crate) fn rows(offset: usize, rs: usize) -> Self {
        Self { offset, rs, cs: 1 }
    }

    /// The transpose of [`View::rows`]: element `(i, j)` is row `j`, column `i` of the data.
    pub(crate) fn cols(offset: usize, rs: usize) -> Self {
        Self {
            offset,
            rs: 1,
            cs: rs,
        }
    }

    /// True when a `rows × cols` matrix through this view stays inside `len` elements.
    fn fits(&self, len: usize, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs < len
    }
}

/// Threads for one GEMM: all of candle's when `parallel`, else the calling thread only.
pub(crate) fn parallelism(parallel: bool) -> Parallelism {
    let n = candle_core::utils::get_num_threads();
    if parallel && n > 1 {
        Parallelism::Rayon(n)
    } else {
        Parallelism::None
    }
}

/// `dst (m×n) = a (m×k) · b (k×n)`, or `dst += a · b` when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Real>(
    dst: &mut [T],
    dv: View,
    a: &[T],
    av: View,
    b: &[T],
    bv: View,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    par: Parallelism,
) -> Result<()> {
    if !(dv.fits(dst.len(), m, n) && av.fits(a.len(), m, k) && bv.fits(b.len(), k, n)) {
        candle_core::bail!("fused gemm: a {m}x{n}x{k} product does not fit its buffers")
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[dv.offset + i * dv.rs + j * dv.cs] = T::zero();
                }
            }
        }
        return Ok(());
    }
    // SAFETY: every index the product touches was checked against its slice above; `dst` is
    // borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dv.offset),
            dv.cs as isize,
            dv.rs as isize,
            accumulate,
            a.as_ptr().add(av.offset),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.offset),
            bv.cs as isize,
            bv.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// `a (m×k) · b (k×n)` as a new row-major `m×n` vector, written by the GEMM directly (no
/// zero-fill first: for the activation-sized products of the fused ops that fill was a pass
/// over memory as long as an element-wise op).
#[allow(clippy::too_many_arguments)]
pub(crate) fn product<T: Real>(
    a: &[T],
    av: View,
    b: &[T],
    bv: View,
    (m, n, k): (usize, usize, usize),
    par: Parallelism,
) -> Result<Vec<T>> {
    if !(av.fits(a.len(), m, k) && bv.fits(b.len(), k, n)) {
        candle_core::bail!("fused gemm: a {m}x{n}x{k} product does not fit its inputs")
    }
    if m == 0 || n == 0 || k == 0 {
        return Ok(vec![T::zero(); m * n]);
    }
    let mut out: Vec<T> = Vec::with_capacity(m * n);
    // SAFETY: the inputs were bounds-checked above and the destination has capacity m·n with
    // row stride n. With `read_dst = false` and k > 0 the GEMM writes every element of the
    // destination without reading it first, so all m·n elements are initialised before
    // `set_len`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr().add(av.offset),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.offset),
            bv.cs as isize,
            bv.rs as isize,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            par,
        );
        out.set_len(m * n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_products_match_the_naive_sum() {
        // a (2×3) row-major, b given transposed (n×k storage), dst inside a wider buffer.
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0f64, 0.0, -1.0, 2.0, 1.0, 0.5]; // b = btᵀ, (3×2)
        let mut dst = vec![100.0f64; 8];
        let p = Parallelism::None;
        let (av, bv, dv) = (View::rows(0, 3), View::cols(0, 3), View::rows(1, 4));
        matmul(&mut dst, dv, &a, av, &bt, bv, (2, 2, 3), false, p).unwrap();
        assert_eq!(dst, vec![100.0, -2.0, 5.5, 100.0, 100.0, -2.0, 16.0, 100.0]);
        matmul(&mut dst, dv, &a, av, &bt, bv, (2, 2, 3), true, p).unwrap();
        assert_eq!(dst[1..3], [-4.0, 11.0]);
        let err = matmul(
            &mut dst,
            View::rows(5, 4),
            &a,
            av,
            &bt,
            bv,
            (2, 2, 3),
            false,
            p,
        );
        assert!(err.is_err());
    }
}
