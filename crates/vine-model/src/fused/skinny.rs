//! `y = x Wᵀ` for a few rows of `x`: the decode step's products.
//!
//! A decode step multiplies 1–256 activation rows by every weight of the model. A general GEMM
//! packs both operands into cache-blocked panels first; with few rows that packing is a copy
//! of every weight on every step, as costly as the arithmetic. Here both `x` `(m × k)` and a
//! Hugging Face weight `W` `(n × k)` are read where they lie, row-major with `k` contiguous:
//! each output is a dot product, computed in register tiles of 4 rows of `x` × 3 rows of `W`
//! (4 × 4 where AVX-512VL gives 32 registers) with 8-wide FMAs (AVX2 + FMA, detected at run
//! time; a portable loop otherwise), and the columns of `y` are split between threads. Every
//! weight row is read once per tile of rows while it is in L1, and the next tile's rows are
//! prefetched meanwhile: between two steps the weights leave the caches (a step at batch 32
//! also streams some 30 MB of keys and values), and fetched on demand they held a layer's GEMMs
//! to 91 GFLOP/s on this machine's two cores, against 111–125 with the prefetch (150 warm).

use rayon::prelude::*;

use super::simd::dot;

/// Columns of `y` a parallel task aims at; see [`task_width`].
const COLS_PER_TASK: usize = 64;

/// Columns per task for a `y` of `n` columns: about [`COLS_PER_TASK`], a multiple of the tile
/// width, and as many tasks as keep every thread equally busy (`n` = 256 on two threads is four
/// tasks of 64, not three of 96 with one thread doing two).
fn task_width(n: usize, threads: usize) -> usize {
    let tile = tile_cols();
    let threads = threads.max(1);
    let tasks = n.div_ceil(COLS_PER_TASK).div_ceil(threads) * threads;
    n.div_ceil(tasks).div_ceil(tile) * tile
}

/// A pointer that parallel tasks share to write disjoint elements.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: tasks write disjoint column ranges of `y` (see `matmul_wt_many`), and `y` outlives them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `yᵢ (m × nᵢ) = x (m × k) · wᵢᵀ` with `wᵢ` `(nᵢ × k)`, all row-major, for several weights
/// sharing one input (a layer's q/k/v or gate/up projections) as one parallel region; every
/// `yᵢ` is overwritten. Threads: rayon's pool, whose size candle's thread count also follows.
pub(crate) fn matmul_wt_many(
    x: &[f32],
    m: usize,
    k: usize,
    jobs: &mut [(&[f32], usize, &mut [f32])],
) {
    assert!(x.len() >= m * k, "skinny gemm: input too short");
    let mut tasks = Vec::new();
    let mut work = 0;
    let threads = rayon::current_num_threads();
    for (i, (w, n, y)) in jobs.iter().enumerate() {
        assert!(w.len() >= n * k && y.len() >= m * n, "skinny gemm sizes");
        work += m * n * k;
        let width = task_width(*n, threads);
        for t in 0..n.div_ceil(width) {
            tasks.push((i, t * width, ((t + 1) * width).min(*n)));
        }
    }
    let outs: Vec<(&[f32], usize, Out)> = jobs
        .iter_mut()
        .map(|(w, n, y)| (*w, *n, Out(y.as_mut_ptr())))
        .collect();
    let run = |&(i, j0, j1): &(usize, usize, usize)| {
        let (w, n, out) = outs[i];
        // SAFETY: sizes were checked above; each task writes only columns `j0..j1` of its `y`.
        unsafe { columns(x, w, out, m, n, k, j0, j1) }
    };
    if tasks.len() > 1 && work >= 1 << 16 {
        tasks.par_iter().for_each(run);
    } else {
        tasks.iter().for_each(run);
    }
}

/// Columns `j0..j1` of `y`.
///
/// # Safety
/// `x`, `w` and `out` must hold `m·k`, `n·k` and `m·n` elements; no other thread may write
/// columns `j0..j1` of `out` meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn columns(
    x: &[f32],
    w: &[f32],
    out: Out,
    m: usize,
    n: usize,
    k: usize,
    j0: usize,
    j1: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match x86_level() {
        // 32 vector registers: a 4 × 4 tile of accumulators.
        X86::Avx512Vl => return tiles::<4, 4>(x, w, out, m, n, k, j0, j1, tile_avx512vl::<4, 4>),
        // 16 registers: 12 accumulators, 3 weight rows and one input row.
        X86::Avx2 => return tiles::<4, 3>(x, w, out, m, n, k, j0, j1, tile_avx2::<4, 3>),
        X86::Baseline => {}
    }
    for j in j0..j1 {
        let wj = &w[j * k..][..k];
        for i in 0..m {
            *out.0.add(i * n + j) = dot(&x[i * k..][..k], wj);
        }
    }
}

/// The vector extensions the kernels use.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum X86 {
    /// AVX2 + FMA with AVX-512VL: the same 8-wide code with 32 registers.
    Avx512Vl,
    /// AVX2 + FMA.
    Avx2,
    /// Neither.
    Baseline,
}

/// The CPU's [`X86`] level, detected once.
#[cfg(target_arch = "x86_64")]
pub(super) fn x86_level() -> X86 {
    use std::arch::is_x86_feature_detected as has;
    static LEVEL: std::sync::OnceLock<X86> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        match (
            has!("avx2") && has!("fma"),
            has!("avx512f") && has!("avx512vl"),
        ) {
            (true, true) => X86::Avx512Vl,
            (true, false) => X86::Avx2,
            _ => X86::Baseline,
        }
    })
}

/// Columns of `y` per register tile on this CPU.
fn tile_cols() -> usize {
    #[cfg(target_arch = "x86_64")]
    if x86_level() == X86::Avx2 {
        return 3;
    }
    4
}

/// A register tile: `y[i..i+R, j..j+C]` (see [`tile`]).
#[cfg(target_arch = "x86_64")]
type Tile = unsafe fn(&[f32], &[f32], Out, usize, usize, usize, usize);

/// Columns `j0..j1` of `y` in `R × C` tiles of `full`, edges one element at a time.
///
/// # Safety
/// As [`columns`]; `full` must be `tile::<R, C>` compiled for features the CPU has.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<const R: usize, const C: usize>(
    x: &[f32],
    w: &[f32],
    out: Out,
    m: usize,
    n: usize,
    k: usize,
    j0: usize,
    j1: usize,
    full: Tile,
) {
    // Weight rows come from memory (the step's other data evicts them): while one tile's rows
    // are in use, the next tile's are fetched, a slice per tile of rows.
    let row_tiles = (m / R).max(1);
    let mut j = j0;
    while j + C <= j1 {
        let next = (j + C).min(n) * k..(j + 2 * C).min(n) * k;
        let lines = (next.len() * 4).div_ceil(64);
        let per = lines.div_ceil(row_tiles);
        let mut line = 0;
        let mut i = 0;
        while i + R <= m {
            for _ in 0..per.min(lines - line) {
                prefetch(w.as_ptr().add(next.start + line * 16));
                line += 1;
            }
            full(x, w, out, n, k, i, j);
            i += R;
        }
        for i in i..m {
            for c in 0..C {
                tile_avx2::<1, 1>(x, w, out, n, k, i, j + c);
            }
        }
        j += C;
    }
    for j in j..j1 {
        for i in 0..m {
            tile_avx2::<1, 1>(x, w, out, n, k, i, j);
        }
    }
}

/// Asks for the cache line at `p` to be brought into L1 (a hint; never faults).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(p: *const f32) {
    use std::arch::x86_64::*;
    // SAFETY: a prefetch does not access memory architecturally, whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
}

/// Defines `$name::<R, C>`, [`tile`] compiled with the target features `$features`.
macro_rules! tile_with {
    ($(#[$doc:meta])* $name:ident, $features:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must have the function's target features; the rows must exist (see
        /// [`columns`]).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize, const C: usize>(
            x: &[f32],
            w: &[f32],
            out: Out,
            n: usize,
            k: usize,
            i: usize,
            j: usize,
        ) {
            tile::<R, C>(x, w, out, n, k, i, j)
        }
    };
}

tile_with!(
    /// [`tile`] compiled with AVX2 and FMA.
    tile_avx2,
    "avx2,fma"
);
tile_with!(
    /// [`tile`] compiled with AVX-512VL too, which gives the 8-wide code 32 registers.
    tile_avx512vl,
    "avx2,fma,avx512f,avx512vl"
);

/// `y[i..i+R, j..j+C]` from `R` rows of `x` and `C` rows of `w`, 8 lanes at a time; inlined
/// into [`tile_avx2`] and [`tile_avx512vl`], which compile it for their features.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the rows must exist (see [`columns`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<const R: usize, const C: usize>(
    x: &[f32],
    w: &[f32],
    out: Out,
    n: usize,
    k: usize,
    i: usize,
    j: usize,
) {
    use std::arch::x86_64::*;
    let xp = x.as_ptr().add(i * k);
    let wp = w.as_ptr().add(j * k);
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let k8 = k - k % 8;
    let mut p = 0;
    while p < k8 {
        let mut wv = [_mm256_setzero_ps(); C];
        for (c, wv) in wv.iter_mut().enumerate() {
            *wv = _mm256_loadu_ps(wp.add(c * k + p));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let xv = _mm256_loadu_ps(xp.add(r * k + p));
            for (a, &wv) in acc.iter_mut().zip(&wv) {
                *a = _mm256_fmadd_ps(xv, wv, *a);
            }
        }
        p += 8;
    }
    for (r, acc) in acc.iter().enumerate() {
        for (c, &a) in acc.iter().enumerate() {
            let mut v = hsum(a);
            for q in k8..k {
                v += *xp.add(r * k + q) * *wp.add(c * k + q);
            }
            *out.0.add((i + r) * n + j + c) = v;
        }
    }
}

/// The sum of the 8 lanes of `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn hsum(a: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_product_on_ragged_shapes() {
        // Products of small integers are exact in f32 whatever the summation order.
        for (m, n, k) in [
            (1, 1, 1),
            (5, 7, 13),
            (4, 3, 8),
            (33, 200, 67),
            (64, 97, 256),
        ] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 9) as f32 - 4.0).collect();
            let mut ys = Vec::new();
            let mut y = vec![f32::NAN; m * n];
            matmul_wt_many(&x, m, k, &mut [(&w, n, &mut y)]);
            ys.push(("dispatched", y));
            // Every tile shape this CPU can run, whichever the dispatch picks.
            #[cfg(target_arch = "x86_64")]
            {
                let level = x86_level();
                let mut run = |name, f: &dyn Fn(Out)| {
                    let mut y = vec![f32::NAN; m * n];
                    f(Out(y.as_mut_ptr()));
                    ys.push((name, y));
                };
                if level != X86::Baseline {
                    // SAFETY: AVX2 and FMA are present; the sizes are the product's.
                    run("avx2 4x3", &|o| unsafe {
                        tiles::<4, 3>(&x, &w, o, m, n, k, 0, n, tile_avx2::<4, 3>)
                    });
                }
                if level == X86::Avx512Vl {
                    // SAFETY: AVX-512VL is present; the sizes are the product's.
                    run("avx512vl 4x4", &|o| unsafe {
                        tiles::<4, 4>(&x, &w, o, m, n, k, 0, n, tile_avx512vl::<4, 4>)
                    });
                }
            }
            for (name, y) in &ys {
                for i in 0..m {
                    for j in 0..n {
                        let naive: f32 = (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum();
                        assert_eq!(y[i * n + j], naive, "{name} ({m},{n},{k}) at ({i},{j})");
                    }
                }
            }
        }
    }
}
