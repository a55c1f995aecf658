//! The per-row kernels of [`super::attention`]: forward (probabilities and output) and
//! backward (gradients of `q`, `k`, `v`), one batch row per task.
//!
//! Layouts: a row's `q` is `(T, h·d)`, `k`/`v` `(T, kv·d)` (the projections' layout); the
//! probabilities of a row are `(h, T, T)`, written by the forward only inside the blocks it
//! computes (query block × the keys it can see) and read back by the backward from the same
//! blocks. Query head `hh` uses kv head `hh / (h / kv)`.

use std::ops::Range;

use candle_core::Result;
use rayon::prelude::*;

use super::gemm::{matmul, parallelism, View};
use super::rope::{rotate_rows, rotate_rows_back, Tables};
use super::softmax::{first_visible, softmax_grad_row, softmax_row, visible};
use super::{dot, Real};

/// Queries per score block.
const QUERY_BLOCK: usize = 32;

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub t: usize,
    pub h: usize,
    pub kv: usize,
    pub d: usize,
    pub scale: f64,
}

impl Geom {
    fn q_row(&self) -> usize {
        self.t * self.h * self.d
    }
    fn kv_row(&self) -> usize {
        self.t * self.kv * self.d
    }
    fn p_row(&self) -> usize {
        self.h * self.t * self.t
    }
    fn group(&self) -> usize {
        self.h / self.kv
    }
}

/// One batch row's inputs: `q` `(T, h·d)`, `k`/`v` `(T, kv·d)`, its tables and first real token.
struct RowIn<'a, T> {
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    tab: Tables<'a, T>,
    start: usize,
}

fn row_in<'a, T>(
    g: &Geom,
    x: [&'a [T]; 3],
    tab: Tables<'a, T>,
    b: usize,
    start: usize,
) -> RowIn<'a, T> {
    let (rq, rkv) = (g.q_row(), g.kv_row());
    RowIn {
        q: &x[0][b * rq..(b + 1) * rq],
        k: &x[1][b * rkv..(b + 1) * rkv],
        v: &x[2][b * rkv..(b + 1) * rkv],
        tab: tab.positions(b * g.t, g.t),
        start,
    }
}

/// Query blocks of a row of `t` tokens.
fn blocks(t: usize) -> impl Iterator<Item = Range<usize>> {
    (0..t)
        .step_by(QUERY_BLOCK)
        .map(move |i| i..(i + QUERY_BLOCK).min(t))
}

/// Rotated keys of one kv head and rotated, scaled queries of one query head, `(T, d)` each.
struct Rotated<T> {
    kr: Vec<T>,
    qr: Vec<T>,
}

impl<T: Real> Rotated<T> {
    fn new(g: &Geom) -> Self {
        Self {
            kr: vec![T::zero(); g.t * g.d],
            qr: vec![T::zero(); g.t * g.d],
        }
    }

    fn keys(&mut self, g: &Geom, row: &RowIn<'_, T>, kvh: usize) {
        rotate_rows(row.k, g.kv * g.d, kvh * g.d, row.tab, None, &mut self.kr);
    }

    fn queries(&mut self, g: &Geom, row: &RowIn<'_, T>, hh: usize) {
        let scale = T::from_f64(g.scale);
        rotate_rows(
            row.q,
            g.h * g.d,
            hh * g.d,
            row.tab,
            Some(scale),
            &mut self.qr,
        );
    }

    /// Probabilities of the queries `rows` over keys `lo..rows.end`, into `p` `(T, T)`.
    fn probs(
        &self,
        g: &Geom,
        rows: &Range<usize>,
        lo: usize,
        start: usize,
        p: &mut [T],
    ) -> Result<()> {
        let (t, d) = (g.t, g.d);
        let (m, n) = (rows.len(), rows.end - lo);
        let dst = View::rows(rows.start * t + lo, t);
        let (a, b) = (View::rows(rows.start * d, d), View::cols(lo * d, d));
        matmul(
            p,
            dst,
            &self.qr,
            a,
            &self.kr,
            b,
            (m, n, d),
            false,
            parallelism(false),
        )?;
        for i in rows.clone() {
            softmax_row(&mut p[i * t + lo..i * t + rows.end], lo, visible(i, start));
        }
        Ok(())
    }
}

/// Output `(B, T, h·d)` and probabilities `(B, h, T, T)` of the batch `x = [q, k, v]`.
pub(crate) fn forward<T: Real>(
    g: &Geom,
    starts: &[usize],
    x: [&[T]; 3],
    tab: Tables<'_, T>,
) -> Result<(Vec<T>, Vec<T>)> {
    let mut out = vec![T::zero(); x[0].len()];
    let mut probs = vec![T::zero(); starts.len() * g.p_row()];
    if g.q_row() == 0 {
        return Ok((out, probs));
    }
    out.par_chunks_mut(g.q_row())
        .zip(probs.par_chunks_mut(g.p_row()))
        .zip(starts.par_iter())
        .enumerate()
        .try_for_each(|(b, ((out, p), &start))| {
            forward_row(g, &row_in(g, x, tab, b, start), out, p)
        })?;
    Ok((out, probs))
}

/// One row: every kv head, every query head of its group, every query block.
fn forward_row<T: Real>(
    g: &Geom,
    row: &RowIn<'_, T>,
    out: &mut [T],
    probs: &mut [T],
) -> Result<()> {
    let (t, d, hd, kvd) = (g.t, g.d, g.h * g.d, g.kv * g.d);
    let mut r = Rotated::new(g);
    for kvh in 0..g.kv {
        r.keys(g, row, kvh);
        for hh in kvh * g.group()..(kvh + 1) * g.group() {
            r.queries(g, row, hh);
            let p = &mut probs[hh * t * t..(hh + 1) * t * t];
            for rows in blocks(t) {
                let lo = first_visible(&rows, row.start);
                r.probs(g, &rows, lo, row.start, p)?;
                let (m, n) = (rows.len(), rows.end - lo);
                let dst = View::rows(rows.start * hd + hh * d, hd);
                let pv = View::rows(rows.start * t + lo, t);
                let vv = View::rows(lo * kvd + kvh * d, kvd);
                matmul(
                    out,
                    dst,
                    p,
                    pv,
                    row.v,
                    vv,
                    (m, d, n),
                    false,
                    parallelism(false),
                )?;
            }
        }
    }
    Ok(())
}

/// Gradients `(dq, dk, dv)` of the batch; `x` is `[q, k, v, out, dout]`, `probs` the
/// forward's.
pub(crate) fn backward<T: Real>(
    g: &Geom,
    starts: &[usize],
    x: [&[T]; 5],
    probs: &[T],
    tab: Tables<'_, T>,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (rq, rkv, rp) = (g.q_row(), g.kv_row(), g.p_row());
    let mut dq = vec![T::zero(); x[0].len()];
    let mut dk = vec![T::zero(); x[1].len()];
    let mut dv = vec![T::zero(); x[2].len()];
    if rq == 0 {
        return Ok((dq, dk, dv));
    }
    if probs.len() != starts.len() * rp {
        candle_core::bail!("fused attention: stored probabilities do not match the inputs")
    }
    dq.par_chunks_mut(rq)
        .zip(dk.par_chunks_mut(rkv).zip(dv.par_chunks_mut(rkv)))
        .zip(starts.par_iter())
        .enumerate()
        .try_for_each(|(b, ((dq, (dk, dv)), &start))| {
            let row = row_in(g, [x[0], x[1], x[2]], tab, b, start);
            let (out, dout) = (&x[3][b * rq..(b + 1) * rq], &x[4][b * rq..(b + 1) * rq]);
            let p = &probs[b * rp..(b + 1) * rp];
            backward_row(g, &row, (out, dout), p, (dq, dk, dv))
        })?;
    Ok((dq, dk, dv))
}

/// Per-row gradient buffers: `dS` `(T, T)`, `δ` `(T)`, and `(T, d)` gradients of the rotated
/// queries, rotated keys and values.
struct Grads<T> {
    ds: Vec<T>,
    delta: Vec<T>,
    dqr: Vec<T>,
    dkr: Vec<T>,
    dvr: Vec<T>,
}

/// One row's gradients, written into its slices of `dq`, `dk`, `dv`.
fn backward_row<T: Real>(
    g: &Geom,
    row: &RowIn<'_, T>,
    (out, dout): (&[T], &[T]),
    probs: &[T],
    (dq, dk, dv): (&mut [T], &mut [T], &mut [T]),
) -> Result<()> {
    let (t, d, hd, kvd) = (g.t, g.d, g.h * g.d, g.kv * g.d);
    let mut r = Rotated::new(g);
    let zeros = |n: usize| vec![T::zero(); n];
    let mut s = Grads {
        ds: zeros(t * t),
        delta: zeros(t),
        dqr: zeros(t * d),
        dkr: zeros(t * d),
        dvr: zeros(t * d),
    };
    for kvh in 0..g.kv {
        r.keys(g, row, kvh);
        s.dkr
            .iter_mut()
            .chain(s.dvr.iter_mut())
            .for_each(|x| *x = T::zero());
        for hh in kvh * g.group()..(kvh + 1) * g.group() {
            r.queries(g, row, hh);
            for (i, dl) in s.delta.iter_mut().enumerate() {
                let at = i * hd + hh * d;
                *dl = dot(&dout[at..at + d], &out[at..at + d]);
            }
            let p = &probs[hh * t * t..(hh + 1) * t * t];
            for rows in blocks(t) {
                let lo = first_visible(&rows, row.start);
                block_grads(g, row, &r, p, dout, (kvh, hh), (&rows, lo), &mut s)?;
            }
            let at = hh * d;
            rotate_rows_back(&s.dqr, row.tab, Some(T::from_f64(g.scale)), dq, hd, at);
        }
        rotate_rows_back(&s.dkr, row.tab, None, dk, kvd, kvh * d);
        for (i, x) in s.dvr.chunks_exact(d).enumerate() {
            dv[i * kvd + kvh * d..i * kvd + kvh * d + d].copy_from_slice(x);
        }
    }
    Ok(())
}

/// The gradients of one query block of head `hh`: `dS = P ⊙ (dO vᵀ − δ)`, then
/// `dq̃[block] = dS k̃`, `dk̃ += dSᵀ q̃[block]`, `dv += Pᵀ dO[block]` (over keys `lo..end`).
#[allow(clippy::too_many_arguments)]
fn block_grads<T: Real>(
    g: &Geom,
    row: &RowIn<'_, T>,
    r: &Rotated<T>,
    p: &[T],
    dout: &[T],
    (kvh, hh): (usize, usize),
    (rows, lo): (&Range<usize>, usize),
    s: &mut Grads<T>,
) -> Result<()> {
    let (t, d, hd, kvd) = (g.t, g.d, g.h * g.d, g.kv * g.d);
    let (m, n) = (rows.len(), rows.end - lo);
    let none = parallelism(false);
    let blk = View::rows(rows.start * t + lo, t); // (m, n) in p and ds
    let blk_t = View::cols(rows.start * t + lo, t); // its transpose
    let dov = View::rows(rows.start * hd + hh * d, hd); // dO of the block, (m, d)
    let vt = View::cols(lo * kvd + kvh * d, kvd); // vᵀ of the keys, (d, n)
    matmul(&mut s.ds, blk, dout, dov, row.v, vt, (m, n, d), false, none)?;
    for i in rows.clone() {
        let span = i * t + lo..i * t + rows.end;
        softmax_grad_row(&p[span.clone()], &mut s.ds[span], s.delta[i]);
    }
    let qb = View::rows(rows.start * d, d);
    let keys = View::rows(lo * d, d);
    matmul(
        &mut s.dqr,
        qb,
        &s.ds,
        blk,
        &r.kr,
        keys,
        (m, d, n),
        false,
        none,
    )?;
    matmul(
        &mut s.dkr,
        keys,
        &s.ds,
        blk_t,
        &r.qr,
        qb,
        (n, d, m),
        true,
        none,
    )?;
    matmul(&mut s.dvr, keys, p, blk_t, dout, dov, (n, d, m), true, none)
}
