//! Learned state values for the analysis: the critic's prediction for a state is its value at the
//! state's last token (spec §4.4; the reference's `values[len(request_token_ids) - 1]`), i.e. the
//! value the critic gives the state before the next token is generated, as GAE uses it.

use anyhow::Result;
use candle_core::Tensor;
use vine_model::ValueModel;

/// Something that predicts the value of token prefixes (BOS included).
pub trait StateValues {
    /// One value per prefix, in order.
    fn values(&self, prefixes: &[Vec<u32>]) -> Result<Vec<f32>>;
}

/// `critic`'s values of `prefixes`, checked to be one per prefix; `None` without a critic.
pub fn predict(
    critic: Option<&dyn StateValues>,
    prefixes: &[Vec<u32>],
) -> Result<Option<Vec<f32>>> {
    let Some(c) = critic else {
        return Ok(None);
    };
    if prefixes.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let v = c.values(prefixes)?;
    if v.len() != prefixes.len() {
        anyhow::bail!(
            "the critic returned {} values for {} states",
            v.len(),
            prefixes.len()
        );
    }
    Ok(Some(v))
}

/// A trained critic, evaluated `chunk` prefixes at a time.
pub struct Critic<'a> {
    /// Backbone + value head.
    pub model: &'a ValueModel,
    /// Prefixes per forward pass.
    pub chunk: usize,
}

impl StateValues for Critic<'_> {
    fn values(&self, prefixes: &[Vec<u32>]) -> Result<Vec<f32>> {
        if prefixes.iter().any(Vec::is_empty) {
            anyhow::bail!("a state has no tokens; every state starts with its prompt");
        }
        // Similar lengths share a forward pass; results go back to the caller's order.
        let mut order: Vec<usize> = (0..prefixes.len()).collect();
        order.sort_by_key(|&i| prefixes[i].len());
        let mut out = vec![0f32; prefixes.len()];
        let device = self.model.backbone.device();
        for part in order.chunks(self.chunk.max(1)) {
            let b = part.len();
            let l = part.iter().map(|&i| prefixes[i].len()).max().unwrap_or(1);
            // Right padding: causal attention never looks at the padding after a row's tokens.
            let mut ids = vec![0u32; b * l];
            for (row, &i) in part.iter().enumerate() {
                ids[row * l..row * l + prefixes[i].len()].copy_from_slice(&prefixes[i]);
            }
            let ids = Tensor::from_vec(ids, (b, l), device)?; // (B, L)
            let values = self.model.values(&ids, &[])?.to_vec2::<f32>()?; // (B, L)
            for (row, &i) in part.iter().enumerate() {
                out[i] = values[row][prefixes[i].len() - 1];
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vine_model::LoadOptions;

    /// Batched, right-padded and reordered evaluation equals one prefix at a time, and the value
    /// is read at each prefix's own last token (tolerance 1e-5: float summation order only).
    #[test]
    fn batched_values_match_one_prefix_at_a_time() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vine-model/tests/fixtures/llama");
        let opts = LoadOptions {
            dtype: candle_core::DType::F32,
            device: candle_core::Device::Cpu,
            trainable: false,
        };
        let model = ValueModel::load(&dir, &opts, 7).unwrap();
        let prefixes: Vec<Vec<u32>> = vec![
            vec![0, 5, 9, 200, 31],
            vec![0, 5],
            vec![0, 5, 9, 200, 31, 44, 45, 46],
            vec![0, 17, 3],
            vec![0],
        ];
        let batched = Critic {
            model: &model,
            chunk: 3,
        }
        .values(&prefixes)
        .unwrap();
        for (p, &b) in prefixes.iter().zip(&batched) {
            let alone = Critic {
                model: &model,
                chunk: 1,
            }
            .values(std::slice::from_ref(p))
            .unwrap()[0];
            assert!((alone - b).abs() < 1e-5, "{alone} vs {b}");
            let ids = Tensor::new(p.as_slice(), &candle_core::Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let all = model.values(&ids, &[]).unwrap().to_vec2::<f32>().unwrap();
            assert!((all[0][p.len() - 1] - b).abs() < 1e-5);
        }
        // The first prefix is a prefix of the third: its value is the third's at that position.
        let ids = Tensor::new(prefixes[2].as_slice(), &candle_core::Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let third = model.values(&ids, &[]).unwrap().to_vec2::<f32>().unwrap();
        assert!((third[0][prefixes[0].len() - 1] - batched[0]).abs() < 1e-5);
        assert!(
            (batched[0] - batched[2]).abs() > 1e-6,
            "different states, different values"
        );
    }
}
