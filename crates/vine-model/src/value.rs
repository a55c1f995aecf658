//! A scalar value head on a transformer backbone: the critic of the PPO-with-critic baseline.
//!
//! As the reference's `PreTrainedModelForValueNetwork`: `V = Linear(H, 1)(h)` on the last
//! hidden state (after the final norm), with the head weight drawn from N(0, 1/(H+1)) (std
//! `1/sqrt(H+1)`) and a zero bias. The head is kept in f32 and the hidden states are upcast to
//! it, so values are f32 whatever the backbone dtype (the reference upcasts likewise). No
//! dropout (the reference's default). Saved as the backbone's Hugging Face directory plus
//! `value_head.safetensors` (`value_head.weight` `(1, H)`, `value_head.bias` `(1)`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Result, Tensor, Var};

use crate::checkpoint::{write_dir_atomically, LoadOptions, SaveOptions};
use crate::error::{ModelError, ModelResult};
use crate::init::{normal_samples, param_rng};
use crate::layers::Linear;
use crate::transformer::Transformer;
use crate::weights::write_safetensors;

/// File holding the head next to the backbone's weights.
pub const VALUE_HEAD_FILE: &str = "value_head.safetensors";

/// A backbone with a scalar head. See the module docs.
#[derive(Debug, Clone)]
pub struct ValueModel {
    /// The transformer whose last hidden states feed the head.
    pub backbone: Transformer,
    /// (1, H) and (1), f32.
    head: Linear,
    /// The head's variables when the backbone is trainable.
    head_vars: Option<(Var, Var)>,
}

impl ValueModel {
    /// A fresh head (seeded by `seed`) on `backbone`; trainable iff the backbone is.
    pub fn new(backbone: Transformer, seed: u64) -> Result<Self> {
        let h = backbone.config().hidden_size;
        let std = 1.0 / ((h + 1) as f64).sqrt();
        let w = normal_samples(&mut param_rng(seed, u64::MAX), h, std);
        let device = backbone.device();
        let weight = Tensor::from_vec(w, (1, h), device)?;
        let bias = Tensor::zeros(1, DType::F32, device)?;
        Self::from_parts(backbone, weight, bias)
    }

    /// A head with the given weights `(1, H)` and bias `(1)` (converted to f32).
    pub fn from_parts(backbone: Transformer, weight: Tensor, bias: Tensor) -> Result<Self> {
        let h = backbone.config().hidden_size;
        if weight.dims() != [1, h] || bias.dims() != [1] {
            candle_core::bail!(
                "value head shapes {:?}, {:?}; expected [1, {h}] and [1]",
                weight.dims(),
                bias.dims()
            )
        }
        let weight = weight.to_dtype(DType::F32)?.detach();
        let bias = bias.to_dtype(DType::F32)?.detach();
        let (head, head_vars) = if backbone.is_trainable() {
            let (w, b) = (Var::from_tensor(&weight)?, Var::from_tensor(&bias)?);
            let head = Linear {
                weight: w.as_tensor().clone(),
                bias: Some(b.as_tensor().clone()),
            };
            (head, Some((w, b)))
        } else {
            (
                Linear {
                    weight,
                    bias: Some(bias),
                },
                None,
            )
        };
        Ok(Self {
            backbone,
            head,
            head_vars,
        })
    }

    /// Values `(B, T)` in f32 for `ids` `(B, T)`; entries at left padding are meaningless.
    /// Differentiable when trainable.
    pub fn values(&self, ids: &Tensor, left_pad: &[usize]) -> Result<Tensor> {
        let hidden = self.backbone.forward_hidden(ids, left_pad, None)?; // (B, T, H)
        let mode = self.backbone.default_mode();
        let v = self.head.forward(&hidden.to_dtype(DType::F32)?, mode)?; // (B, T, 1)
        v.squeeze(2)
    }

    /// Every trainable variable: the backbone's, then `value_head.weight`, `value_head.bias`.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut out = self.backbone.vars();
        if let Some((w, b)) = &self.head_vars {
            out.push(("value_head.weight".into(), w.clone()));
            out.push(("value_head.bias".into(), b.clone()));
        }
        out
    }

    /// The head's tensors under their saved names.
    pub fn head_tensors(&self) -> Vec<(String, Tensor)> {
        let bias = self.head.bias.clone().into_iter();
        std::iter::once(("value_head.weight".to_string(), self.head.weight.clone()))
            .chain(bias.map(|b| ("value_head.bias".to_string(), b)))
            .collect()
    }

    /// Writes the backbone as a Hugging Face directory plus [`VALUE_HEAD_FILE`], atomically.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>, opts: &SaveOptions) -> ModelResult<()> {
        write_dir_atomically(dir.as_ref(), |tmp| {
            self.backbone.write_hf_files(tmp, opts)?;
            write_safetensors(&tmp.join(VALUE_HEAD_FILE), &self.head_tensors(), DType::F32)
        })
    }

    /// Loads a directory written by [`ValueModel::save_pretrained`]; a plain model directory
    /// (no head file) gets a fresh head seeded by `seed`.
    pub fn load(dir: impl AsRef<Path>, opts: &LoadOptions, seed: u64) -> ModelResult<Self> {
        let dir = dir.as_ref();
        let backbone = Transformer::load(dir, opts)?;
        let path = dir.join(VALUE_HEAD_FILE);
        if !path.is_file() {
            return Ok(Self::new(backbone, seed)?);
        }
        let h = backbone.config().hidden_size;
        let mut t: HashMap<String, Tensor> = candle_core::safetensors::load(&path, &opts.device)
            .map_err(|e| ModelError::Safetensors {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let mut take = |name: &str, shape: Vec<usize>| {
            let found = t.remove(name).ok_or_else(|| ModelError::MissingTensor {
                path: path.clone(),
                name: name.into(),
                expected: shape.clone(),
            })?;
            if found.dims() != shape.as_slice() {
                return Err(ModelError::ShapeMismatch {
                    path: path.clone(),
                    name: name.into(),
                    expected: shape,
                    found: found.dims().to_vec(),
                });
            }
            Ok(found)
        };
        let weight = take("value_head.weight", vec![1, h])?;
        let bias = take("value_head.bias", vec![1])?;
        Ok(Self::from_parts(backbone, weight, bias)?)
    }
}
