//! RoPE (Hugging Face `rotate_half` layout) on single head vectors, and its transpose.
//!
//! With `h = d/2`, `c`/`s` the half-width tables of one position:
//! `y[i] = x[i]·c[i] − x[i+h]·s[i]`, `y[i+h] = x[i+h]·c[i] + x[i]·s[i]`, which is what
//! [`crate::rope::apply_rope`] computes (`x·[c, c] + [−x₂, x₁]·[s, s]`) with the same
//! roundings. RoPE is a rotation, so its backward is the rotation by `−s`.

use super::simd::multiversion;

/// Half-width `cos`/`sin` tables of consecutive positions, `half` entries per position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables<'a, T> {
    pub cos: &'a [T],
    pub sin: &'a [T],
    pub half: usize,
}

impl<'a, T> Tables<'a, T> {
    /// The tables of positions `start..start + len`.
    pub(crate) fn positions(&self, start: usize, len: usize) -> Self {
        let r = start * self.half..(start + len) * self.half;
        Self {
            cos: &self.cos[r.clone()],
            sin: &self.sin[r],
            half: self.half,
        }
    }
}

multiversion! {
    /// Applies RoPE to the head vectors of the positions of `tables`: row `i` of `src` starts at
    /// `i·stride + offset`; the result goes to row `i·d` of `dst` (contiguous), multiplied by
    /// `scale` (after rounding the rotation, as `rope(q) · scale`).
    pub(crate) fn rotate_rows<T: Real>(
        src: &[T],
        stride: usize,
        offset: usize,
        tables: Tables<'_, T>,
        scale: Option<T>,
        dst: &mut [T],
    ) {
        let (h, cos, sin) = (tables.half, tables.cos, tables.sin);
        let d = 2 * h;
        let rows = cos.len().checked_div(h).unwrap_or(0);
        for (i, out) in dst.chunks_exact_mut(d.max(1)).take(rows).enumerate() {
            let x = &src[i * stride + offset..i * stride + offset + d];
            let (c, s) = (&cos[i * h..(i + 1) * h], &sin[i * h..(i + 1) * h]);
            let (x1, x2) = x.split_at(h);
            let (y1, y2) = out.split_at_mut(h);
            let pairs = y1.iter_mut().zip(y2.iter_mut()).zip(x1.iter().zip(x2));
            for (((y1, y2), (&a, &b)), (&c, &s)) in pairs.zip(c.iter().zip(s)) {
                *y1 = a * c - b * s;
                *y2 = b * c + a * s;
            }
            if let Some(scale) = scale {
                out.iter_mut().for_each(|y| *y *= scale);
            }
        }
    }
}

multiversion! {
    /// The transpose of [`rotate_rows`]: `src` rows are contiguous (`d` wide), each is multiplied
    /// by `scale` first, rotated by `−s`, and written to `dst` at `i·stride + offset`, for the
    /// positions of `tables`.
    pub(crate) fn rotate_rows_back<T: Real>(
        src: &[T],
        tables: Tables<'_, T>,
        scale: Option<T>,
        dst: &mut [T],
        stride: usize,
        offset: usize,
    ) {
        let (h, cos, sin) = (tables.half, tables.cos, tables.sin);
        let d = 2 * h;
        let rows = cos.len().checked_div(h).unwrap_or(0);
        for (i, g) in src.chunks_exact(d.max(1)).take(rows).enumerate() {
            let (c, s) = (&cos[i * h..(i + 1) * h], &sin[i * h..(i + 1) * h]);
            let out = &mut dst[i * stride + offset..i * stride + offset + d];
            let (y1, y2) = out.split_at_mut(h);
            let (g1, g2) = g.split_at(h);
            // Multiplying by 1 is exact, so `None` and `Some(1)` agree bit for bit.
            let k = scale.unwrap_or(T::one());
            let pairs = y1.iter_mut().zip(y2.iter_mut()).zip(g1.iter().zip(g2));
            for (((y1, y2), (&a, &b)), (&c, &s)) in pairs.zip(c.iter().zip(s)) {
                let (a, b) = (a * k, b * k);
                *y1 = a * c + b * s;
                *y2 = b * c - a * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_then_transpose_is_the_identity() {
        // Two positions, d = 4, interleaved in a stride-6 source at offset 1.
        let src: Vec<f64> = (0..12).map(|i| i as f64 * 0.3 - 1.0).collect();
        let ang = [0.0f64, 0.0, 1.0, 2.0];
        let cos: Vec<f64> = ang.iter().map(|a| a.cos()).collect();
        let sin: Vec<f64> = ang.iter().map(|a| a.sin()).collect();
        let tables = Tables {
            cos: &cos,
            sin: &sin,
            half: 2,
        };
        let mut rotated = vec![0.0; 8];
        rotate_rows(&src, 6, 1, tables, None, &mut rotated);
        // Position 0 has angle 0 on both frequencies: unchanged.
        assert_eq!(rotated[..4], src[1..5]);
        let mut back = vec![0.0; 12];
        rotate_rows_back(&rotated, tables, None, &mut back, 6, 1);
        for i in 0..2 {
            for j in 0..4 {
                assert!((back[i * 6 + 1 + j] - src[i * 6 + 1 + j]).abs() < 1e-12);
            }
        }
    }
}
