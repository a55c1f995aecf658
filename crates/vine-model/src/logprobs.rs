//! Fused log-probabilities of target tokens: `log softmax(logits / T)[target]` per row.
//!
//! The trainer needs, for every position, only the log-probability of the token that
//! follows; the composed version (`log_softmax` then `gather`) materialises several `(N, V)`
//! temporaries in the forward and the backward. This custom op reads the logits once per row
//! (max, then log-sum-exp), writes `(N)` values, and its backward writes the analytic gradient
//! `∂/∂logits = (onehot(target) − softmax(logits / T)) / T · g` straight into one `(N, V)`
//! buffer, reusing each row's max and log-sum-exp from the forward. Rows run in parallel. Accumulation is in f32 (f64 for f64 logits) whatever the
//! logits' dtype, as the spec's log-softmax in f32 requires for bf16/f16 models.
//!
//! The temperature is the sampling temperature (the spec divides logits by 0.6 for actor, old
//! and reference log-probs alike; top-p is not accounted for). On devices other than the CPU
//! the same function falls back to composed ops (correct gradients, more memory).

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape,
    Tensor, WithDType, D,
};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

/// `log softmax(logits / temperature)[targets]`: `logits` `(N, V)`, `targets` `(N)` (u32) →
/// `(N)` in f32 (f64 for f64 logits). Differentiable with respect to `logits`.
pub fn target_logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Result<Tensor> {
    if !(temperature.is_finite() && temperature > 0.0) {
        candle_core::bail!("temperature must be positive and finite, got {temperature}")
    }
    let (n, v) = logits.dims2()?;
    if v == 0 {
        candle_core::bail!("target_logprobs: logits have no classes")
    }
    if targets.dims1()? != n {
        candle_core::bail!("{n} rows of logits but {} targets", targets.dims1()?)
    }
    let targets = targets.to_dtype(DType::U32)?.contiguous()?;
    if logits.device().is_cpu() {
        return logits.contiguous()?.apply_op2(
            &targets,
            TargetLogprobs {
                temperature,
                stats: OnceLock::new(),
            },
        );
    }
    composed_target_logprobs(logits, &targets, temperature)
}

/// The unfused reference: `log_softmax(logits / T).gather(targets)`, f32 (f64 for f64 logits).
pub fn composed_target_logprobs(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let acc = accumulator_dtype(logits.dtype());
    let scaled = (logits.to_dtype(acc)? / temperature)?;
    let lp = candle_nn::ops::log_softmax(&scaled, D::Minus1)?; // (N, V)
    lp.gather(
        &targets.to_dtype(DType::U32)?.contiguous()?.unsqueeze(1)?,
        1,
    )?
    .squeeze(1)
}

fn accumulator_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Float type rows are accumulated in.
trait Acc: Copy + Send + Sync + PartialOrd + WithDType {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
}

impl Acc for f32 {
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
}

impl Acc for f64 {
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
}

/// Max and `log Σ exp(x/T − max)` of one row, in `A`.
fn row_stats<T: WithDType, A: Acc>(row: &[T], inv_t: A) -> (A, A) {
    let mut m = A::from_f64(f64::NEG_INFINITY);
    for &x in row {
        let x = A::from_f64(x.to_f64()) * inv_t;
        if x > m {
            m = x;
        }
    }
    let mut s = A::from_f64(0.0);
    for &x in row {
        s += (A::from_f64(x.to_f64()) * inv_t - m).exp();
    }
    (m, s.ln())
}

fn check_targets(targets: &[u32], v: usize) -> Result<()> {
    match targets.iter().find(|&&t| t as usize >= v) {
        Some(t) => candle_core::bail!("target id {t} is out of range for {v} logits"),
        None => Ok(()),
    }
}

/// Log-probs of the targets and every row's `[max, lse]` (exact in f64 for `A` = f32 or f64),
/// which the backward reuses instead of recomputing them.
fn fwd_rows<T: WithDType, A: Acc>(
    x: &[T],
    targets: &[u32],
    v: usize,
    temp: f64,
) -> Result<(Vec<A>, Vec<[f64; 2]>)> {
    check_targets(targets, v)?;
    let inv_t = A::from_f64(1.0 / temp);
    Ok(x.par_chunks(v)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let (m, lse) = row_stats(row, inv_t);
            let lp = A::from_f64(row[t as usize].to_f64()) * inv_t - m - lse;
            (lp, [m.to_f64(), lse.to_f64()])
        })
        .unzip())
}

/// `(onehot − softmax) / T · g` per row, from the forward's row statistics `stats`.
fn bwd_rows<T: WithDType, A: Acc>(
    x: &[T],
    targets: &[u32],
    g: &[A],
    stats: &[[f64; 2]],
    (v, temp): (usize, f64),
) -> Result<Vec<T>> {
    check_targets(targets, v)?;
    if stats.len() != targets.len() {
        candle_core::bail!("target_logprobs backward: row statistics do not match the logits")
    }
    let inv_t = A::from_f64(1.0 / temp);
    let mut out = vec![T::from_f64(0.0); x.len()];
    out.par_chunks_mut(v)
        .zip(x.par_chunks(v))
        .zip(targets.par_iter().zip(g.par_iter()).zip(stats.par_iter()))
        .for_each(|((o, row), ((&t, &g), st))| {
            let (m, lse) = (A::from_f64(st[0]), A::from_f64(st[1]));
            let scale = g * inv_t;
            for (o, &x) in o.iter_mut().zip(row) {
                let p = (A::from_f64(x.to_f64()) * inv_t - m - lse).exp();
                *o = T::from_f64((A::from_f64(0.0) - p * scale).to_f64());
            }
            let p_t = o[t as usize].to_f64();
            o[t as usize] = T::from_f64(p_t + scale.to_f64());
        });
    Ok(out)
}

/// Contiguous slice of a CPU storage.
fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("target_logprobs needs contiguous inputs".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

struct TargetLogprobs {
    temperature: f64,
    /// Every row's `[max, lse]`, set by the forward for the backward.
    stats: OnceLock<Arc<Vec<[f64; 2]>>>,
}

impl CustomOp2 for TargetLogprobs {
    fn name(&self) -> &'static str {
        "target-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, v) = l1.shape().dims2()?;
        let targets = slice::<u32>(s2, l2)?;
        let t = self.temperature;
        let (out, stats) = match s1 {
            CpuStorage::F32(_) => {
                let (lp, st) = fwd_rows::<f32, f32>(slice(s1, l1)?, targets, v, t)?;
                (CpuStorage::F32(lp), st)
            }
            CpuStorage::F64(_) => {
                let (lp, st) = fwd_rows::<f64, f64>(slice(s1, l1)?, targets, v, t)?;
                (CpuStorage::F64(lp), st)
            }
            CpuStorage::BF16(_) => {
                let (lp, st) = fwd_rows::<half::bf16, f32>(slice(s1, l1)?, targets, v, t)?;
                (CpuStorage::F32(lp), st)
            }
            CpuStorage::F16(_) => {
                let (lp, st) = fwd_rows::<half::f16, f32>(slice(s1, l1)?, targets, v, t)?;
                (CpuStorage::F32(lp), st)
            }
            other => candle_core::bail!("target_logprobs: unsupported dtype {:?}", other.dtype()),
        };
        // candle runs an op's forward once; were it run again, the backward would see the
        // first statistics (and check their length).
        let _ = self.stats.set(Arc::new(stats));
        Ok((out, Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let dx = logits.apply_op3_no_bwd(
            targets,
            &g,
            &TargetLogprobsGrad {
                temperature: self.temperature,
                stats: self.stats.get().cloned().ok_or_else(|| {
                    candle_core::Error::Msg("target_logprobs: backward before forward".into())
                })?,
            },
        )?;
        Ok((Some(dx), None))
    }
}

/// `(onehot − softmax(x/T)) / T · g`, `(N, V)` in the logits' dtype.
struct TargetLogprobsGrad {
    temperature: f64,
    stats: Arc<Vec<[f64; 2]>>,
}

impl CustomOp3 for TargetLogprobsGrad {
    fn name(&self) -> &'static str {
        "target-logprobs-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, v) = l1.shape().dims2()?;
        let targets = slice::<u32>(s2, l2)?;
        let vt = (v, self.temperature);
        let st = self.stats.as_slice();
        let out = match (s1, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(bwd_rows::<f32, f32>(
                slice(s1, l1)?,
                targets,
                slice(s3, l3)?,
                st,
                vt,
            )?),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(bwd_rows::<f64, f64>(
                slice(s1, l1)?,
                targets,
                slice(s3, l3)?,
                st,
                vt,
            )?),
            (CpuStorage::BF16(_), CpuStorage::F32(_)) => {
                CpuStorage::BF16(bwd_rows::<half::bf16, f32>(
                    slice(s1, l1)?,
                    targets,
                    slice(s3, l3)?,
                    st,
                    vt,
                )?)
            }
            (CpuStorage::F16(_), CpuStorage::F32(_)) => CpuStorage::F16(
                bwd_rows::<half::f16, f32>(slice(s1, l1)?, targets, slice(s3, l3)?, st, vt)?,
            ),
            (a, b) => candle_core::bail!(
                "target_logprobs backward: unsupported dtypes {:?}, {:?}",
                a.dtype(),
                b.dtype()
            ),
        };
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use proptest::prelude::*;

    fn logits(n: usize, v: usize, seed: u64, scale: f64, dtype: DType) -> Tensor {
        let mut rng = crate::init::param_rng(seed, 0);
        let x = crate::init::normal_samples(&mut rng, n * v, scale);
        Tensor::from_vec(x, (n, v), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn targets(n: usize, v: usize, seed: u64) -> Tensor {
        let t: Vec<u32> = (0..n as u64)
            .map(|i| ((i * 7919 + seed * 31) % v as u64) as u32)
            .collect();
        Tensor::from_vec(t, n, &Device::Cpu).unwrap()
    }

    fn vec1(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// Values and logit gradients of the fused op against log_softmax + gather, for a loss
    /// `Σ w_i · logp_i` with distinct weights. Tolerance 1e-5 (f32), 1e-12 (f64).
    fn check_against_composed(n: usize, v: usize, temp: f64, dtype: DType, seed: u64) {
        let x = Var::from_tensor(&logits(n, v, seed, 3.0, dtype)).unwrap();
        let tg = targets(n, v, seed);
        let w = Tensor::arange(1u32, n as u32 + 1, &Device::Cpu)
            .unwrap()
            .to_dtype(accumulator_dtype(dtype))
            .unwrap();
        let fused = target_logprobs(x.as_tensor(), &tg, temp).unwrap();
        let composed = composed_target_logprobs(x.as_tensor(), &tg, temp).unwrap();
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
        let (a, b) = (vec1(&fused), vec1(&composed));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < tol, "value {p} vs {q}");
        }
        let ga = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (composed * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (ga, gb) = (vec1(ga.get(&x).unwrap()), vec1(gb.get(&x).unwrap()));
        let gtol = if dtype == DType::F64 { 1e-10 } else { 1e-4 };
        for (p, q) in ga.iter().zip(&gb) {
            assert!((p - q).abs() < gtol * (1.0 + q.abs()), "grad {p} vs {q}");
        }
    }

    #[test]
    fn fused_matches_composed_f32_and_f64() {
        for temp in [1.0, 0.6] {
            check_against_composed(13, 37, temp, DType::F32, 1);
            check_against_composed(5, 1000, temp, DType::F64, 2);
        }
    }

    #[test]
    fn fused_handles_half_precision_logits() {
        // bf16 logits: values accumulated in f32, gradient rounded to bf16 (tolerance 1e-2).
        let x = logits(4, 50, 3, 2.0, DType::BF16);
        let tg = targets(4, 50, 3);
        let fused = vec1(&target_logprobs(&x, &tg, 0.6).unwrap());
        let reference =
            vec1(&composed_target_logprobs(&x.to_dtype(DType::F32).unwrap(), &tg, 0.6).unwrap());
        for (p, q) in fused.iter().zip(&reference) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }

    #[test]
    fn rejects_bad_targets_and_temperatures() {
        let x = logits(2, 5, 1, 1.0, DType::F32);
        let bad = Tensor::from_vec(vec![0u32, 5], 2, &Device::Cpu).unwrap();
        let err = target_logprobs(&x, &bad, 1.0).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        assert!(target_logprobs(&x, &targets(2, 5, 0), 0.0).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn logprobs_are_normalised(n in 1usize..6, v in 1usize..300, t in 0.1f64..3.0, seed in 0u64..1000) {
            // Σ_j exp(logp(j)) = 1 for every row: evaluate every target of every row.
            let x = logits(n, v, seed, 5.0, DType::F64);
            let rows: Vec<f64> = (0..v)
                .flat_map(|j| {
                    let tg = Tensor::from_vec(vec![j as u32; n], n, &Device::Cpu).unwrap();
                    vec1(&target_logprobs(&x, &tg, t).unwrap())
                })
                .collect();
            for r in 0..n {
                let total: f64 = (0..v).map(|j| rows[j * n + r].exp()).sum();
                prop_assert!((total - 1.0).abs() < 1e-10, "row {} sums to {}", r, total);
            }
        }
    }
}
