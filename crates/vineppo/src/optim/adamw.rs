//! AdamW with global gradient-norm clipping, gradient accumulation and saveable moments.
//!
//! Matches `torch.optim.AdamW` (decoupled weight decay, bias-corrected moments):
//!
//! ```text
//! p ← p · (1 − lr·λ)
//! m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
//! p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
//! ```
//!
//! Gradients are first clipped to a global L2 norm as `torch.nn.utils.clip_grad_norm_` does
//! (`g ← g · max_norm / (norm + 1e-6)` when `norm > max_norm`).
//!
//! On CPU with f32 parameters the update runs as one fused loop per parameter (candle-nn's AdamW
//! is about ten tensor ops per parameter, each allocating); elsewhere it uses tensor ops.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

/// Hyperparameters of [`AdamW`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Clip the global gradient L2 norm to this value (`None` = no clipping).
    pub max_grad_norm: Option<f64>,
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Sums gradients of several backward passes (micro-batches) per parameter.
#[derive(Default)]
pub struct GradAccumulator {
    sums: HashMap<candle_core::TensorId, Tensor>,
    passes: usize,
}

impl GradAccumulator {
    /// Adds the gradients of `params` found in `grads`, scaled by `scale`.
    pub fn add(&mut self, params: &[(String, Var)], grads: &GradStore, scale: f64) -> Result<()> {
        for (_, var) in params {
            if let Some(g) = grads.get(var.as_tensor()) {
                let g = (g * scale)?;
                let id = var.as_tensor().id();
                let sum = match self.sums.remove(&id) {
                    Some(s) => (s + g)?,
                    None => g,
                };
                self.sums.insert(id, sum);
            }
        }
        self.passes += 1;
        Ok(())
    }

    /// Number of backward passes added.
    pub fn passes(&self) -> usize {
        self.passes
    }

    fn get(&self, var: &Var) -> Option<&Tensor> {
        self.sums.get(&var.as_tensor().id())
    }
}

/// AdamW over a fixed, named set of parameters.
pub struct AdamW {
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
    cfg: AdamWConfig,
}

impl AdamW {
    /// An optimizer for `params` with zeroed moments.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let mut m = Vec::with_capacity(params.len());
        let mut v = Vec::with_capacity(params.len());
        for (_, p) in &params {
            m.push(Tensor::zeros(p.shape(), DType::F32, p.device())?);
            v.push(Tensor::zeros(p.shape(), DType::F32, p.device())?);
        }
        Ok(Self {
            params,
            m,
            v,
            step: 0,
            cfg,
        })
    }

    /// Number of steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The parameters, in a fixed order.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Clips the accumulated gradients and applies one update with learning rate `lr`.
    /// Parameters without a gradient are left untouched (their moments too).
    pub fn step(&mut self, grads: &GradAccumulator, lr: f64) -> Result<StepStats> {
        let grad_norm = global_norm(self.params.iter().filter_map(|(_, p)| grads.get(p)))?;
        if !grad_norm.is_finite() {
            bail!("gradient norm is {grad_norm}; skipping would hide a bug, so the run stops here");
        }
        let clip = match self.cfg.max_grad_norm {
            Some(max) if grad_norm > max => max / (grad_norm + 1e-6),
            _ => 1.0,
        };
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.cfg.beta1.powi(t);
        let bc2 = 1.0 - self.cfg.beta2.powi(t);
        for i in 0..self.params.len() {
            let Some(g) = grads.get(&self.params[i].1) else {
                continue;
            };
            let g = if clip != 1.0 { (g * clip)? } else { g.clone() };
            self.update_one(i, &g, lr, bc1, bc2)?;
        }
        Ok(StepStats { grad_norm, lr })
    }

    fn update_one(&mut self, i: usize, g: &Tensor, lr: f64, bc1: f64, bc2: f64) -> Result<()> {
        let c = self.cfg.clone();
        let p = &self.params[i].1;
        if matches!(p.device(), Device::Cpu) && p.dtype() == DType::F32 {
            let mut pv: Vec<f32> = p.as_tensor().flatten_all()?.to_vec1()?;
            let gv: Vec<f32> = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let mut mv: Vec<f32> = self.m[i].flatten_all()?.to_vec1()?;
            let mut vv: Vec<f32> = self.v[i].flatten_all()?.to_vec1()?;
            let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
            let decay = (1.0 - lr * c.weight_decay) as f32;
            let (step1, sbc2) = ((lr / bc1) as f32, (bc2.sqrt()) as f32);
            for j in 0..pv.len() {
                mv[j] = b1 * mv[j] + (1.0 - b1) * gv[j];
                vv[j] = b2 * vv[j] + (1.0 - b2) * gv[j] * gv[j];
                pv[j] = pv[j] * decay - step1 * mv[j] / (vv[j].sqrt() / sbc2 + eps);
            }
            let shape = p.shape().clone();
            p.set(&Tensor::from_vec(pv, shape.clone(), &Device::Cpu)?)?;
            self.m[i] = Tensor::from_vec(mv, shape.clone(), &Device::Cpu)?;
            self.v[i] = Tensor::from_vec(vv, shape, &Device::Cpu)?;
            return Ok(());
        }
        let g = g.to_dtype(DType::F32)?;
        let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
        let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
        let update = ((&m / bc1)? / denom)?;
        let pf = p.as_tensor().to_dtype(DType::F32)?;
        let new_p = ((pf * (1.0 - lr * c.weight_decay))? - (update * lr)?)?;
        p.set(&new_p.to_dtype(p.dtype())?)?;
        self.m[i] = m;
        self.v[i] = v;
        Ok(())
    }

    /// Writes the moments and the step count to one safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            tensors.insert(format!("m.{name}"), self.m[i].clone());
            tensors.insert(format!("v.{name}"), self.v[i].clone());
        }
        tensors.insert(
            "step".into(),
            Tensor::new(&[self.step as i64], &Device::Cpu)?,
        );
        candle_core::safetensors::save(&tensors, path)
            .with_context(|| format!("writing optimizer state `{}`", path.display()))
    }

    /// Restores moments and step count written by [`AdamW::save`] for the same parameters.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let dev = self
            .params
            .first()
            .map(|(_, p)| p.device().clone())
            .unwrap_or(Device::Cpu);
        let mut t = candle_core::safetensors::load(path, &dev)
            .with_context(|| format!("reading optimizer state `{}`", path.display()))?;
        let missing = |k: &str| {
            anyhow::anyhow!(
                "optimizer state `{}` has no tensor `{k}`; it belongs to another model",
                path.display()
            )
        };
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (key, slot) in [
                (format!("m.{name}"), &mut self.m[i]),
                (format!("v.{name}"), &mut self.v[i]),
            ] {
                let value = t.remove(&key).ok_or_else(|| missing(&key))?;
                if value.dims() != p.dims() {
                    bail!(
                        "optimizer state `{}`: `{key}` has shape {:?}, the model needs {:?}",
                        path.display(),
                        value.dims(),
                        p.dims()
                    );
                }
                *slot = value.to_dtype(DType::F32)?;
            }
        }
        let step = t.remove("step").ok_or_else(|| missing("step"))?;
        self.step = step
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .first()
            .copied()
            .unwrap_or(0)
            .max(0) as u64;
        Ok(())
    }
}

/// Global L2 norm of a set of gradients, accumulated in f64.
pub fn global_norm<'a>(grads: impl Iterator<Item = &'a Tensor>) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads {
        sq += g
            .to_dtype(DType::F32)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
    }
    Ok(sq.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AdamWConfig {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
        }
    }

    /// Golden values from torch (tolerance 1e-6 absolute):
    /// ```python
    /// import torch
    /// p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    /// opt = torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    /// for g in ([0.5, -1.0, 2.0], [0.1, 0.2, -0.3]):
    ///     p.grad = torch.tensor(g); torch.nn.utils.clip_grad_norm_([p], 1.0); opt.step()
    /// print(p.tolist())
    /// ```
    #[test]
    fn matches_torch_adamw_with_clipping() {
        let dev = Device::Cpu;
        for use_tensor_path in [false, true] {
            let var = Var::new(&[1f32, -2.0, 3.0], &dev).unwrap();
            let var = if use_tensor_path {
                Var::from_tensor(&var.as_tensor().to_dtype(DType::F64).unwrap()).unwrap()
            } else {
                var
            };
            let mut opt = AdamW::new(vec![("p".into(), var.clone())], cfg()).unwrap();
            for g in [[0.5f32, -1.0, 2.0], [0.1, 0.2, -0.3]] {
                let loss = (var.as_tensor()
                    * Tensor::new(&g, &dev)
                        .unwrap()
                        .to_dtype(var.dtype())
                        .unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
                let mut acc = GradAccumulator::default();
                acc.add(opt.params(), &loss.backward().unwrap(), 1.0)
                    .unwrap();
                opt.step(&acc, 0.1).unwrap();
            }
            let got: Vec<f32> = var
                .as_tensor()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec1()
                .unwrap();
            let want = [0.80617857f32, -1.8662064, 2.8549364];
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() < 1e-5,
                    "tensor path {use_tensor_path}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn save_and_load_round_trip() {
        let dev = Device::Cpu;
        let var = Var::new(&[1f32, 2.0], &dev).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], cfg()).unwrap();
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        let mut acc = GradAccumulator::default();
        acc.add(opt.params(), &loss.backward().unwrap(), 1.0)
            .unwrap();
        opt.step(&acc, 0.01).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut other = AdamW::new(vec![("w".into(), var)], cfg()).unwrap();
        other.load(&path).unwrap();
        assert_eq!(other.steps_taken(), 1);
        let a: Vec<f32> = opt.v[0].to_vec1().unwrap();
        let b: Vec<f32> = other.v[0].to_vec1().unwrap();
        assert_eq!(a, b);
    }
}
