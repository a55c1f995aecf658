//! In-place writes of new positions into a cache buffer, and a step written row group by row
//! group (the fused decode step's pipeline).

use candle_core::{DType, Result, Tensor};

use super::KvCache;

impl KvCache {
    /// Starts a step of `t_new` positions that [`KvCache::write_step_rows`] fills group by group:
    /// every layer gets room for them (layers not yet written are created, `(B, n_kv, ·, d)` of
    /// `dtype`). Call [`KvCache::advance`] once every row of every layer is written.
    pub(crate) fn reserve_step(
        &mut self,
        t_new: usize,
        n_kv: usize,
        d: usize,
        dtype: DType,
        device: &candle_core::Device,
    ) -> Result<()> {
        let end = self.len + t_new;
        self.begin_step(end)?;
        // Only the shape matters to `make_room`: (B, n_kv, 0, d).
        let like = Tensor::zeros((self.batch(), n_kv, 0, d), dtype, device)?;
        for layer in 0..self.layers.len() {
            self.make_room(layer, end, &like)?;
        }
        Ok(())
    }

    /// Writes keys and values `(r, n_kv, t_new, d)` of rows `row0..row0 + r` of `layer` at the
    /// positions [`KvCache::reserve_step`] made room for.
    pub(crate) fn write_step_rows(
        &mut self,
        layer: usize,
        row0: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<()> {
        let (r, _, t_new, _) = k.dims4()?;
        if self.pending != Some(self.len + t_new) || row0 + r > self.batch() {
            candle_core::bail!(
                "write_step_rows: rows {row0}..{} of {}, {t_new} positions, step not reserved",
                row0 + r,
                self.batch()
            )
        }
        let l = self
            .layers
            .get(layer)
            .and_then(Option::as_ref)
            .ok_or_else(|| candle_core::Error::Msg(format!("no cache layer {layer}")))?;
        write_positions(&l.k.narrow(0, row0, r)?, k, self.len)?;
        write_positions(&l.v.narrow(0, row0, r)?, v, self.len)
    }
}

/// Writes `src` `(B, n_kv, t, d)` into positions `at..at + t` of `buf` `(B, n_kv, cap, d)`, in
/// place. On the CPU this is one copy per row and head (candle's `slice_set` took ~50 µs for
/// one decode step's keys at batch 32, a tenth of the step); elsewhere it is `slice_set`.
pub(super) fn write_positions(buf: &Tensor, src: &Tensor, at: usize) -> Result<()> {
    let src = src.contiguous()?;
    if buf.device().is_cpu() && buf.is_contiguous() {
        buf.inplace_op2(&src, &WritePositions { at })
    } else {
        buf.slice_set(&src, 2, at)
    }
}

/// The CPU body of [`write_positions`].
struct WritePositions {
    at: usize,
}

impl candle_core::InplaceOp2 for WritePositions {
    fn name(&self) -> &'static str {
        "kv-write-positions"
    }

    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        src: &candle_core::CpuStorage,
        src_layout: &candle_core::Layout,
    ) -> Result<()> {
        use candle_core::CpuStorage as S;
        let (b, h, cap, d) = dst_layout.shape().dims4()?;
        let (sb, sh, t, sd) = src_layout.shape().dims4()?;
        if (sb, sh, sd) != (b, h, d) || self.at + t > cap {
            candle_core::bail!(
                "kv write: ({sb}, {sh}, {t}, {sd}) at position {} into ({b}, {h}, {cap}, {d})",
                self.at
            )
        }
        let (Some((d0, _)), Some((s0, _))) = (
            dst_layout.contiguous_offsets(),
            src_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("kv write: non-contiguous buffers")
        };
        fn copy<T: Copy>(
            dst: &mut [T],
            src: &[T],
            bh: usize,
            cap: usize,
            at: usize,
            block: usize,
            d: usize,
        ) {
            for (i, from) in src.chunks_exact(block).take(bh).enumerate() {
                dst[(i * cap + at) * d..][..block].copy_from_slice(from);
            }
        }
        let (bh, block) = (b * h, t * d);
        match (dst, src) {
            (S::F32(x), S::F32(y)) => copy(&mut x[d0..], &y[s0..], bh, cap, self.at, block, d),
            (S::F64(x), S::F64(y)) => copy(&mut x[d0..], &y[s0..], bh, cap, self.at, block, d),
            (S::BF16(x), S::BF16(y)) => copy(&mut x[d0..], &y[s0..], bh, cap, self.at, block, d),
            (S::F16(x), S::F16(y)) => copy(&mut x[d0..], &y[s0..], bh, cap, self.at, block, d),
            _ => candle_core::bail!("kv write: the cache and the new keys differ in dtype"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_step_written_by_row_groups_equals_one_append() {
        let dev = Device::Cpu;
        let data = |seed: f32| {
            Tensor::arange(0f32, 4.0 * 2.0 * 3.0, &dev)
                .unwrap()
                .affine(1.0, seed as f64)
                .unwrap()
                .reshape((4, 2, 1, 3))
                .unwrap()
        };
        let (k0, v0, k1, v1) = (data(0.0), data(100.0), data(200.0), data(300.0));
        let mut whole = KvCache::new(1);
        let mut split = KvCache::new(1);
        for c in [&mut whole, &mut split] {
            c.set_left_padding(&[0, 0, 0, 0]).unwrap();
        }
        for (k, v) in [(&k0, &v0), (&k1, &v1)] {
            whole.append(0, k, v).unwrap();
            whole.advance(1).unwrap();
            split.reserve_step(1, 2, 3, DType::F32, &dev).unwrap();
            split
                .write_step_rows(
                    0,
                    0,
                    &k.narrow(0, 0, 3).unwrap(),
                    &v.narrow(0, 0, 3).unwrap(),
                )
                .unwrap();
            split
                .write_step_rows(
                    0,
                    3,
                    &k.narrow(0, 3, 1).unwrap(),
                    &v.narrow(0, 3, 1).unwrap(),
                )
                .unwrap();
            split.advance(1).unwrap();
        }
        let (a, b) = (
            whole.layer_buffers(0).unwrap(),
            split.layer_buffers(0).unwrap(),
        );
        for (x, y) in [(a.0, b.0), (a.1, b.1)] {
            let x = x.narrow(2, 0, 2).unwrap().flatten_all().unwrap();
            let y = y.narrow(2, 0, 2).unwrap().flatten_all().unwrap();
            assert_eq!(x.to_vec1::<f32>().unwrap(), y.to_vec1::<f32>().unwrap());
        }
        // Rows past the batch, or a step not reserved: errors.
        split.reserve_step(1, 2, 3, DType::F32, &dev).unwrap();
        assert!(split.write_step_rows(0, 3, &k0, &v0).is_err());
        split.advance(1).unwrap();
        assert!(split
            .write_step_rows(
                0,
                0,
                &k0.narrow(0, 0, 1).unwrap(),
                &v0.narrow(0, 0, 1).unwrap()
            )
            .is_err());
    }

    #[test]
    fn writes_the_same_as_slice_set_in_every_dtype() {
        let dev = Device::Cpu;
        let src = Tensor::arange(0f32, 48.0, &dev)
            .unwrap()
            .reshape((2, 3, 2, 4))
            .unwrap();
        for dtype in [DType::F32, DType::F64, DType::BF16, DType::F16] {
            let src = src.to_dtype(dtype).unwrap();
            let ours = Tensor::zeros((2, 3, 5, 4), dtype, &dev).unwrap();
            let theirs = ours.copy().unwrap();
            write_positions(&ours, &src, 2).unwrap();
            theirs.slice_set(&src, 2, 2).unwrap();
            let (a, b) = (
                ours.to_dtype(DType::F64).unwrap().flatten_all().unwrap(),
                theirs.to_dtype(DType::F64).unwrap().flatten_all().unwrap(),
            );
            assert_eq!(
                a.to_vec1::<f64>().unwrap(),
                b.to_vec1::<f64>().unwrap(),
                "{dtype:?}"
            );
        }
        // A transposed (non-contiguous) source is made contiguous first.
        let t = src.transpose(2, 3).unwrap().transpose(2, 3).unwrap();
        let buf = Tensor::zeros((2, 3, 5, 4), DType::F32, &dev).unwrap();
        write_positions(&buf, &t, 3).unwrap();
        assert_eq!(
            buf.narrow(2, 3, 2)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            src.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        // Past the capacity: an error, nothing written.
        let err = write_positions(&buf, &src, 4).unwrap_err().to_string();
        assert!(err.contains("kv write"), "{err}");
        let mixed = write_positions(&buf, &src.to_dtype(DType::F64).unwrap(), 0);
        assert!(mixed.is_err());
    }
}
