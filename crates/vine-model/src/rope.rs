//! Rotary position embeddings (RoPE) in Hugging Face's `rotate_half` layout.
//!
//! `x' = x · cos(p·θ) + rotate_half(x) · sin(p·θ)` with `rotate_half([x1, x2]) = [−x2, x1]`
//! and per-pair inverse frequencies `θ_i = base^(−2i/d)`, rescaled by the `linear` or `llama3`
//! rules exactly as transformers' `modeling_rope_utils` computes them (in f32, the same order
//! of operations). Positions are per row, so left-padded rows start at position 0 on their
//! first real token.
//!
//! Two ways to apply it: [`apply_rope`] is composed of differentiable ops (training);
//! [`apply_rope_fused`] is candle's fused kernel, which has no backward (inference only).

use candle_core::{DType, Device, Result, Tensor, D};
use serde_json::{Map, Value};

use crate::config::Fields;
use crate::error::{ModelError, ModelResult};

/// How the base frequencies are rescaled.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `rope_type = "default"`: plain RoPE.
    Default,
    /// `rope_type = "linear"`: all frequencies divided by `factor`.
    Linear {
        /// Division factor.
        factor: f64,
    },
    /// `rope_type = "llama3"`: Llama 3.1's band-wise rescaling.
    Llama3 {
        /// Division factor of the low frequencies.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length of pre-training.
        original_max_position_embeddings: usize,
    },
}

/// RoPE base and scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// `rope_theta`, the frequency base.
    pub theta: f64,
    /// Frequency rescaling.
    pub scaling: RopeScaling,
}

impl Default for RopeConfig {
    fn default() -> Self {
        Self {
            theta: 10_000.0,
            scaling: RopeScaling::Default,
        }
    }
}

/// RoPE types we implement, listed in errors.
const SUPPORTED: &str = "`default`, `linear`, `llama3`";

impl RopeConfig {
    /// Reads RoPE from a config in either layout: legacy top-level `rope_theta` +
    /// `rope_scaling`, or transformers-v5 `rope_parameters`. As in transformers, a non-null
    /// `rope_scaling` takes priority, and `rope_theta` inside the dict beats the top-level one.
    pub(crate) fn from_hf(f: &Fields<'_>, max_pos: usize) -> ModelResult<Self> {
        let (field, dict) = match (f.get("rope_scaling"), f.get("rope_parameters")) {
            (Some(v), _) => ("rope_scaling", Some(v)),
            (None, Some(v)) => ("rope_parameters", Some(v)),
            (None, None) => ("rope_scaling", None),
        };
        let empty = Map::new();
        let mut obj = match dict {
            None => &empty,
            Some(v) => v
                .as_object()
                .ok_or_else(|| f.err(field, format!("expected an object, found {v}")))?,
        };
        // transformers v5 may nest the parameters by layer type.
        if let Some(Value::Object(inner)) = obj.get("full_attention") {
            obj = inner;
        }
        let d = Fields { obj, path: f.path };
        let sub = |k: &str| format!("{field}.{k}");
        let theta = match d.get("rope_theta") {
            Some(_) => d
                .f64_or("rope_theta", 0.0)
                .map_err(|_| f.err(&sub("rope_theta"), "expected a number"))?,
            None => f.f64_or("rope_theta", 10_000.0)?,
        };
        for (src, key) in [
            (&d, sub("partial_rotary_factor")),
            (f, "partial_rotary_factor".into()),
        ] {
            let prf = src
                .f64_or("partial_rotary_factor", 1.0)
                .map_err(|_| f.err(&key, "expected a number"))?;
            if prf != 1.0 {
                return Err(f.err(&key, format!("{prf} is not supported; only 1.0 is")));
            }
        }
        let scaling = parse_scaling(f, &d, field, max_pos)?;
        let cfg = RopeConfig { theta, scaling };
        cfg.check(f.path, field)?;
        Ok(cfg)
    }

    fn check(&self, path: &std::path::Path, field: &str) -> ModelResult<()> {
        let bad = |k: &str, m: &str| Err(ModelError::config(path, &format!("{field}.{k}"), m));
        if self.theta.is_nan() || self.theta <= 0.0 {
            return bad("rope_theta", "must be positive");
        }
        match &self.scaling {
            RopeScaling::Default => {}
            RopeScaling::Linear { factor } if *factor <= 0.0 => {
                return bad("factor", "must be positive")
            }
            RopeScaling::Linear { .. } => {}
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                if *factor <= 0.0 || *original_max_position_embeddings == 0 {
                    return bad(
                        "factor",
                        "factor and original_max_position_embeddings must be positive",
                    );
                }
                if high_freq_factor <= low_freq_factor {
                    return bad("high_freq_factor", "must exceed low_freq_factor");
                }
            }
        }
        Ok(())
    }

    /// Writes `rope_theta` and `rope_scaling` (legacy layout) into a config object.
    pub(crate) fn to_hf(&self, o: &mut Map<String, Value>) {
        o.insert("rope_theta".into(), self.theta.into());
        let scaling = match &self.scaling {
            RopeScaling::Default => Value::Null,
            RopeScaling::Linear { factor } => serde_json::json!({
                "rope_type": "linear",
                "factor": factor,
            }),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => serde_json::json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
        };
        o.insert("rope_scaling".into(), scaling);
    }

    /// Inverse frequencies `(head_dim / 2)`, computed in f32 as transformers does.
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let base = self.theta as f32;
        let dim = head_dim as f32;
        let plain = (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / dim));
        match self.scaling {
            RopeScaling::Default => plain.collect(),
            RopeScaling::Linear { factor } => plain.map(|f| f / factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let factor = factor as f32;
                let lo = low_freq_factor as f32;
                let old = original_max_position_embeddings as f32;
                let low_wavelen =
                    (original_max_position_embeddings as f64 / low_freq_factor) as f32;
                let high_wavelen =
                    (original_max_position_embeddings as f64 / high_freq_factor) as f32;
                let span = (high_freq_factor - low_freq_factor) as f32;
                plain
                    .map(|f| {
                        let wavelen = (2.0 * std::f64::consts::PI) as f32 / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                        if medium {
                            let smooth = (old / wavelen - lo) / span;
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        } else {
                            scaled
                        }
                    })
                    .collect()
            }
        }
    }
}

/// The `rope_type`-specific parameters of the RoPE dict `d` (found under `field` of `f`).
fn parse_scaling(
    f: &Fields<'_>,
    d: &Fields<'_>,
    field: &str,
    max_pos: usize,
) -> ModelResult<RopeScaling> {
    let sub = |k: &str| format!("{field}.{k}");
    let rope_type = match (d.get("rope_type"), d.get("type")) {
        (Some(v), _) | (None, Some(v)) => v
            .as_str()
            .ok_or_else(|| f.err(&sub("rope_type"), format!("expected a string, found {v}")))?,
        (None, None) => "default",
    };
    let num = |k: &str| -> ModelResult<f64> {
        d.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| f.err(&sub(k), format!("required for rope_type `{rope_type}`")))
    };
    Ok(match rope_type {
        "default" => RopeScaling::Default,
        "linear" => RopeScaling::Linear {
            factor: num("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: d
                .opt_usize("original_max_position_embeddings")
                .map_err(|_| {
                    f.err(
                        &sub("original_max_position_embeddings"),
                        "expected an integer",
                    )
                })?
                .unwrap_or(max_pos),
        },
        other => {
            return Err(f.err(
                &sub("rope_type"),
                format!("`{other}` is not supported; supported: {SUPPORTED}"),
            ))
        }
    })
}

/// Precomputed inverse frequencies of one model.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

/// `cos` and `sin` of every (row, position, frequency), `(B, T, head_dim / 2)`.
#[derive(Debug, Clone)]
pub struct RopeTables {
    /// (B, T, head_dim / 2)
    pub cos: Tensor,
    /// (B, T, head_dim / 2)
    pub sin: Tensor,
}

impl Rope {
    /// Frequencies for heads of width `head_dim`.
    pub fn new(cfg: &RopeConfig, head_dim: usize) -> Self {
        Self {
            inv_freq: cfg.inv_freq(head_dim),
        }
    }

    /// Tables for `positions` given row-major `(B * T)`, in `dtype` (rounded like transformers'
    /// `cos.to(x.dtype)`).
    pub fn tables(
        &self,
        positions: &[u32],
        b: usize,
        t: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<RopeTables> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (b, t, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (b, t, half), device)?.to_dtype(dtype)?;
        Ok(RopeTables { cos, sin })
    }
}

impl RopeTables {
    /// Full-width tables `(B, 1, T, head_dim)` (`[cos, cos]`) for [`apply_rope`].
    pub fn full(&self) -> Result<(Tensor, Tensor)> {
        let widen = |x: &Tensor| Tensor::cat(&[x, x], D::Minus1)?.unsqueeze(1);
        Ok((widen(&self.cos)?, widen(&self.sin)?))
    }
}

/// Differentiable RoPE on `x` `(B, heads, T, head_dim)` with full-width tables
/// `(B, 1, T, head_dim)` from [`RopeTables::full`].
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// candle's fused RoPE (no backward) on `x` `(B, heads, T, head_dim)` with half-width tables.
pub fn apply_rope_fused(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    candle_nn::rotary_emb::rope(&x.contiguous()?, &tables.cos, &tables.sin)
}
