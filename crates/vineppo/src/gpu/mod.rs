//! `vineppo gpu`: correctness checks and benchmarks for a CUDA build, runnable from the binary
//! alone on a GPU machine that has no Rust toolchain (see `docs/gpu.md` and `scripts/gpu/`).
//!
//! - `check`: the transformers parity fixtures on the device (f32 and bf16), greedy decoding
//!   through the engine against the CPU, the log-prob op and AdamW against their CPU versions;
//! - `decode`: engine decode tokens/s at several batch sizes against the HBM-bandwidth roofline;
//! - `mc`: VinePPO's MC pattern (K continuations from every step boundary) with and without
//!   prefix forking;
//! - `train`: forward + backward + AdamW tokens/s and MFU;
//! - `init-model`: a random model of a benchmark shape as a Hugging Face directory (with a
//!   tokenizer), to run a full `vineppo train` iteration on.
//!
//! Every command also runs on the CPU (`--device cpu`, `--shape tiny`), which is how the tests
//! exercise them.

pub mod bench;
pub mod checks;
pub mod memory;
pub mod shapes;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Args, Subcommand};

use crate::config::Dtype;
use shapes::Shape;

/// The CUDA device `ordinal` if this build has the `cuda` feature and a GPU answers.
pub fn cuda_device(ordinal: usize) -> Option<Device> {
    if !cfg!(feature = "cuda") {
        return None;
    }
    Device::new_cuda(ordinal).ok()
}

/// Which model to benchmark, where.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model shape (random weights at Hugging Face init).
    #[arg(long, value_enum, default_value = "1.1b")]
    pub shape: Shape,
    /// `cuda`, `cuda:N` or `cpu`.
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// Weight dtype.
    #[arg(long, value_enum, default_value = "bf16")]
    pub dtype: Dtype,
    /// Seed of the weights and token ids.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `vineppo gpu` subcommands.
#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Correctness on the device: transformers fixtures, greedy vs CPU, log-probs, AdamW.
    Check {
        /// `cuda`, `cuda:N` or `cpu`.
        #[arg(long, default_value = "cuda")]
        device: String,
        /// Directory holding the `llama` and `qwen2` parity fixtures.
        #[arg(long, default_value = "crates/vine-model/tests/fixtures")]
        fixtures: PathBuf,
    },
    /// Decode tokens/s of the engine at several batch sizes, against the bandwidth roofline.
    Decode {
        #[command(flatten)]
        model: ModelArgs,
        /// Batch sizes (rows decoding at once).
        #[arg(long, value_delimiter = ',', default_value = "64,128,256")]
        batch: Vec<usize>,
        /// Prompt tokens per row.
        #[arg(long, default_value_t = 128)]
        prompt_len: usize,
        /// Generated tokens per row.
        #[arg(long, default_value_t = 128)]
        new_tokens: usize,
        /// Memory bandwidth in GB/s for the roofline (H100 SXM 3350, H200 4800).
        #[arg(long, default_value_t = 3350.0)]
        hbm_gbps: f64,
    },
    /// VinePPO's MC rollouts: K continuations from S states of P trajectories, with and
    /// without prefix sharing.
    Mc {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        mc: bench::McArgs,
    },
    /// Training throughput: forward + backward + AdamW on random token batches.
    Train {
        #[command(flatten)]
        model: ModelArgs,
        /// Sequences per step.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Tokens per sequence (attention activations grow with its square: docs/gpu.md).
        #[arg(long, default_value_t = 512)]
        seq: usize,
        /// Timed steps (after one warm-up step).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Peak dense TFLOP/s of the device in this dtype, for MFU (H100/H200 bf16: 989).
        #[arg(long, default_value_t = 989.0)]
        peak_tflops: f64,
    },
    /// Writes a random model of a shape as a Hugging Face directory with a tokenizer.
    InitModel {
        /// Model shape.
        #[arg(long, value_enum)]
        shape: Shape,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Runs one `vineppo gpu` command.
pub fn run(cmd: GpuCommand) -> Result<()> {
    match cmd {
        GpuCommand::Check { device, fixtures } => {
            let dev = crate::session::device(&device)?;
            let results = checks::run_all(&fixtures, &dev)?;
            let failed = results.iter().filter(|c| !c.passed).count();
            for c in &results {
                println!("{c}");
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} checks failed on {device}", results.len());
            }
            println!("all {} checks passed on {device}", results.len());
            Ok(())
        }
        GpuCommand::Decode {
            model,
            batch,
            prompt_len,
            new_tokens,
            hbm_gbps,
        } => {
            let cfg = bench::DecodeArgs {
                batch,
                prompt_len,
                new_tokens,
                hbm_gbps,
            };
            let rows = bench::decode(&model, &cfg)?;
            bench::emit(&model, "decode", &rows)
        }
        GpuCommand::Mc { model, mc } => {
            let rows = bench::mc(&model, &mc)?;
            bench::emit(&model, "mc", &rows)
        }
        GpuCommand::Train {
            model,
            batch,
            seq,
            steps,
            peak_tflops,
        } => {
            let rows = bench::train(&model, batch, seq, steps, peak_tflops)?;
            bench::emit(&model, "train", &rows)
        }
        GpuCommand::InitModel { shape, out, seed } => {
            bench::init_model(shape, &out, seed).with_context(|| {
                format!("writing a {} model to `{}`", shape.name(), out.display())
            })?;
            println!("{}", out.display());
            Ok(())
        }
    }
}
