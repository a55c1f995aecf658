//! `vineppo train` with `model.dtype = "bf16"` on the tiny Llama fixture (CPU): the run trains,
//! writes bf16 Hugging Face checkpoints and f32 master weights with the optimizer state, and a
//! run killed mid-iteration resumes to exactly the weights of an uninterrupted one.
//!
//! PPO with a critic (GAE) is the credit method here: the random fixture never earns a reward,
//! so MC values and group baselines give all-zero advantages, while a critic's random values
//! give real gradients. It also mixes bf16 (backbone) and f32 (value head) parameters in one
//! optimizer.

use std::path::{Path, PathBuf};

mod common;
use common::{fixture, metrics, vineppo};

use safetensors::{Dtype, SafeTensors};

fn config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[model]
path = "{model}"
dtype = "bf16"
[task]
kind = "arith"
[task.arith]
train_size = 64
test_size = 8
[rollout]
prompts_per_iteration = 4
samples_per_prompt = 4
max_new_tokens = 16
max_context = 256
[credit]
kind = "gae"
[ppo]
minibatch_size = 8
micro_batch_size = 4
[optim]
lr = 1e-3
warmup = "linear"
[eval]
every = 2
samples = 2
limit = 4
max_new_tokens = 12
[run]
iterations = 2
seed = 11
save_every = 1
out_dir = "{out}"
progress = false
"#,
        model = fixture().display(),
        out = dir.join("run").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn train(dir: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    let cfg = config(dir);
    vineppo(&["train", "--config", cfg.to_str().unwrap()], envs)
}

/// dtype of every tensor of a safetensors file.
fn dtypes(path: &Path) -> Vec<(String, Dtype)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype()))
        .collect()
}

#[test]
fn bf16_run_trains_saves_bf16_and_resumes_exactly() {
    let straight = tempfile::tempdir().unwrap();
    let out = train(straight.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = straight.path().join("run");
    let lines = metrics(&run);
    assert_eq!(lines.len(), 3, "eval at 0 and two iterations");
    for key in ["ppo/grad_norm", "critic/grad_norm"] {
        let norm = lines[1][key].as_f64().unwrap();
        assert!(norm.is_finite() && norm > 0.0, "{key} = {norm}");
    }

    // Hugging Face checkpoints in bf16, as the reference saves them.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("final/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["torch_dtype"], "bfloat16");
    let weights = dtypes(&run.join("final/model.safetensors"));
    assert!(
        weights.iter().all(|(_, d)| *d == Dtype::BF16),
        "{weights:?}"
    );
    // The optimizer state holds an f32 master for every parameter.
    let state = dtypes(&run.join("checkpoints/iter_000002/optimizer.safetensors"));
    let masters: Vec<_> = state
        .iter()
        .filter(|(n, _)| n.starts_with("master."))
        .collect();
    assert_eq!(masters.len(), weights.len());
    assert!(masters.iter().all(|(_, d)| *d == Dtype::F32));
    // The critic: masters for its bf16 backbone, none for its f32 value head.
    let critic = dtypes(&run.join("checkpoints/iter_000002/critic_optimizer.safetensors"));
    let critic_masters: Vec<&String> = critic
        .iter()
        .filter(|(n, _)| n.starts_with("master."))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(critic_masters.len(), weights.len());
    assert!(critic_masters.iter().all(|n| !n.contains("value_head")));
    let head = dtypes(&run.join("checkpoints/iter_000002/critic/value_head.safetensors"));
    assert!(head.iter().all(|(_, d)| *d == Dtype::F32));
    // Training moved the weights (lr 1e-3 is far above bf16 resolution of these weights).
    let final_bytes = std::fs::read(run.join("final/model.safetensors")).unwrap();
    let initial = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let (a, b) = (
        SafeTensors::deserialize(&final_bytes).unwrap(),
        SafeTensors::deserialize(&initial).unwrap(),
    );
    let name = "model.layers.0.self_attn.q_proj.weight";
    let q_final = a.tensor(name).unwrap();
    let q_init = b.tensor(name).unwrap();
    let moved = q_final
        .data()
        .chunks(2)
        .zip(q_init.data().chunks(4))
        .filter(|(h, f)| {
            let x = half_to_f32([h[0], h[1]]);
            let y = f32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            (x - y).abs() > 1e-2 * y.abs().max(1e-3)
        })
        .count();
    assert!(
        moved > q_init.data().len() / 8,
        "only {moved} weights moved"
    );

    // Killed in the middle of the last update, then resumed: the same run.
    let crashed = tempfile::tempdir().unwrap();
    let out = train(crashed.path(), &[("VINEPPO_TEST_CRASH_AT", "2:update")]);
    assert!(!out.status.success(), "the crash hook must abort the run");
    let resumed = crashed.path().join("run");
    let out = vineppo(&["train", "--resume", resumed.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(metrics(&run), metrics(&resumed));
    let read = |r: &Path, f: &str| std::fs::read(r.join(f)).unwrap();
    assert!(read(&run, "final/model.safetensors") == read(&resumed, "final/model.safetensors"));
    for opt in ["optimizer.safetensors", "critic_optimizer.safetensors"] {
        let opt = format!("checkpoints/iter_000002/{opt}");
        assert!(read(&run, &opt) == read(&resumed, &opt), "{opt} differs");
    }
}

/// bf16 bits (little-endian) to f32.
fn half_to_f32(b: [u8; 2]) -> f32 {
    f32::from_bits((u16::from_le_bytes(b) as u32) << 16)
}
