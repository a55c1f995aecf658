//! Training-step throughput measurement: forward, forward + backward, and an AdamW update of a
//! trainable [`Transformer`], timed in wall-clock and process CPU time.
//!
//! The step is what `vineppo sft` and the PPO update do per micro-batch: `forward_hidden` on a
//! right-padded `(B, T)` batch, the LM head, the fused target log-probs, a mean, `backward`.
//! The machine this runs on is usually shared, so every phase reports the best of `reps` runs
//! of both wall time and CPU time (`getrusage` user + sys of the whole process, all threads):
//! CPU time is what a loaded machine distorts least, wall time is what a quiet one gives.
//!
//! [`train_step`] is the entry point (the `train_step` bench and the CLI call it); the shapes
//! benchmarked in `BENCHMARKS.md` are [`TrainShape::builtin`] and [`TrainShape::s4x256`].

use std::fmt;
use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::Optimizer;

use crate::{Kernels, ModelConfig, Transformer};

/// A model shape and a batch to time it on.
#[derive(Debug, Clone)]
pub struct TrainShape {
    /// Short label for reports.
    pub name: String,
    /// The model.
    pub config: ModelConfig,
    /// Rows per micro-batch.
    pub batch: usize,
    /// Tokens per row.
    pub seq: usize,
}

impl TrainShape {
    /// The built-in `arith` model of `configs/arith/sft.toml` (Llama, width 192, 4 layers, 6
    /// query / 2 KV heads, SwiGLU 512, vocab 512, tied embeddings) at 32 × 110.
    pub fn builtin() -> Self {
        let mut config = ModelConfig::tiny_llama(512, 192, 4, 6, 2, 512);
        config.tie_word_embeddings = true;
        config.max_position_embeddings = 512;
        Self {
            name: "arith-tiny".into(),
            config,
            batch: 32,
            seq: 110,
        }
    }

    /// The 4.2M-parameter `s4x256` shape of the candle measurements (4 layers, width 256, 4
    /// heads, SwiGLU 688, vocab 2048, untied) at 16 × 128.
    pub fn s4x256() -> Self {
        Self {
            name: "s4x256".into(),
            config: ModelConfig::tiny_llama(2048, 256, 4, 4, 4, 688),
            batch: 16,
            seq: 128,
        }
    }

    /// Tokens per step.
    pub fn tokens(&self) -> usize {
        self.batch * self.seq
    }
}

/// Best-of-N timings of one phase, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Fastest wall-clock time.
    pub wall_s: f64,
    /// Smallest process CPU time (user + sys over all threads).
    pub cpu_s: f64,
}

/// What [`train_step`] measured.
#[derive(Debug, Clone)]
pub struct TrainStepReport {
    /// The shape timed.
    pub shape: TrainShape,
    /// The kernels of the differentiable forward.
    pub kernels: Kernels,
    /// Parameter count.
    pub parameters: usize,
    /// Runs per phase (after one warm-up).
    pub reps: usize,
    /// Forward only (log-probs and their mean, no graph kept afterwards).
    pub forward: Timing,
    /// Forward + backward.
    pub forward_backward: Timing,
    /// One candle-nn AdamW update of every parameter.
    pub adamw: Timing,
    /// The loss of the first step (to check that two builds compute the same thing).
    pub loss: f64,
}

/// Process CPU time (user + sys, all threads) in seconds; 0 where `getrusage` is unavailable.
pub fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return tv(u.ru_utime) + tv(u.ru_stime);
        }
    }
    0.0
}

/// Runs `f` once to warm up, then `reps` times; the best wall and the best CPU time.
pub fn best_of(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let mut best = Timing {
        wall_s: f64::INFINITY,
        cpu_s: f64::INFINITY,
    };
    for _ in 0..reps.max(1) {
        let (cpu0, wall0) = (process_cpu_seconds(), Instant::now());
        f()?;
        best.wall_s = best.wall_s.min(wall0.elapsed().as_secs_f64());
        best.cpu_s = best.cpu_s.min(process_cpu_seconds() - cpu0);
    }
    Ok(best)
}

/// Deterministic pseudo-random ids `(B, T)` in `[0, vocab)`.
pub fn random_ids(b: usize, t: usize, vocab: usize, seed: u64) -> Result<Tensor> {
    let mut s = seed;
    let v: Vec<u32> = (0..b * t)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab.max(1) as u64) as u32
        })
        .collect();
    Tensor::from_vec(v, (b, t), &Device::Cpu)
}

/// Times forward, forward + backward and AdamW for `shape` with a fresh random f32 model on
/// the CPU (seed 0) running `kernels`, best of `reps` each.
pub fn train_step(shape: &TrainShape, kernels: Kernels, reps: usize) -> Result<TrainStepReport> {
    let mut model =
        Transformer::new_random(shape.config.clone(), 0, DType::F32, &Device::Cpu, true)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    model.set_kernels(kernels);
    let ids = random_ids(shape.batch, shape.seq, shape.config.vocab_size, 1)?;
    let loss = || model.token_logprobs(&ids, &[], 1.0)?.mean_all();
    let first = loss()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let forward = best_of(reps, || loss()?.to_scalar::<f32>().map(|_| ()))?;
    let forward_backward = best_of(reps, || loss()?.backward().map(|_| ()))?;
    let vars: Vec<Var> = model.vars().into_iter().map(|(_, v)| v).collect();
    let params = candle_nn::ParamsAdamW {
        lr: 1e-6,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(vars, params)?;
    let grads = loss()?.backward()?;
    let adamw = best_of(reps, || opt.step(&grads))?;
    Ok(TrainStepReport {
        shape: shape.clone(),
        kernels,
        parameters: shape.config.num_parameters(),
        reps,
        forward,
        forward_backward,
        adamw,
        loss: first,
    })
}

impl TrainStepReport {
    /// Tokens per second of forward + backward, by wall and by CPU time.
    pub fn tokens_per_s(&self) -> (f64, f64) {
        let n = self.shape.tokens() as f64;
        (
            n / self.forward_backward.wall_s,
            n / self.forward_backward.cpu_s,
        )
    }
}

impl fmt::Display for TrainStepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shape;
        let c = &s.config;
        writeln!(
            f,
            "{} ({:?} kernels): {} params (L{} H{} heads {}/{} ffn {} V{}), batch {} x {} = {} \
             tokens, best of {}, loss {:.6}",
            s.name,
            self.kernels,
            self.parameters,
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.intermediate_size,
            c.vocab_size,
            s.batch,
            s.seq,
            s.tokens(),
            self.reps,
            self.loss
        )?;
        let n = s.tokens() as f64;
        let line = |f: &mut fmt::Formatter<'_>, what: &str, t: Timing| {
            writeln!(
                f,
                "  {what:<17} wall {:>8.1} ms ({:>6.0} tok/s)   cpu {:>8.1} ms ({:>6.0} tok/cpu-s)",
                t.wall_s * 1e3,
                n / t.wall_s,
                t.cpu_s * 1e3,
                n / t.cpu_s
            )
        };
        line(f, "forward", self.forward)?;
        line(f, "forward+backward", self.forward_backward)?;
        writeln!(
            f,
            "  {:<17} wall {:>8.1} ms                 cpu {:>8.1} ms",
            "adamw (candle-nn)",
            self.adamw.wall_s * 1e3,
            self.adamw.cpu_s * 1e3
        )
    }
}

/// Forward + backward of one op at a training shape, composed and fused.
#[derive(Debug, Clone)]
pub struct OpTiming {
    /// What was timed, with its input shapes.
    pub name: String,
    /// How many times one training step of the shape runs it.
    pub per_step: usize,
    /// The composed candle ops.
    pub composed: Timing,
    /// The fused kernel.
    pub fused: Timing,
}

/// Forward + backward of `sum(op(inputs))` for both formulations, best of `reps`.
fn time_op(
    name: String,
    per_step: usize,
    inputs: &[Var],
    reps: usize,
    op: impl Fn(&[Tensor], Kernels) -> Result<Tensor>,
) -> Result<OpTiming> {
    let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let run = |k: Kernels| best_of(reps, || op(&xs, k)?.sum_all()?.backward().map(|_| ()));
    Ok(OpTiming {
        name,
        per_step,
        composed: run(Kernels::Composed)?,
        fused: run(Kernels::Fused)?,
    })
}

/// Per-op forward + backward timings at `shape`'s activation sizes (f32, random inputs):
/// where a training step's time goes, and what each fused kernel saves.
pub fn op_breakdown(shape: &TrainShape, reps: usize) -> Result<Vec<OpTiming>> {
    use crate::fused::{self, AttentionSpec};
    let c = &shape.config;
    let (b, t, h, i) = (shape.batch, shape.seq, c.hidden_size, c.intermediate_size);
    let (heads, kv, d, l) = (
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim,
        c.num_hidden_layers,
    );
    let randn = |dims: &[usize], std: f64| -> Result<Var> {
        Var::from_tensor(&Tensor::randn(0f32, std as f32, dims, &Device::Cpu)?)
    };
    let fused_or = |k: Kernels| k == Kernels::Fused;
    let mut out = Vec::new();
    let x = randn(&[b, t, h], 1.0)?;
    let w = randn(&[h], 1.0)?;
    out.push(time_op(
        format!("rms_norm ({b},{t},{h})"),
        2 * l + 1,
        &[x.clone(), w],
        reps,
        |x, k| match fused_or(k) {
            true => fused::rms_norm(&x[0], &x[1], 1e-5),
            false => fused::composed_rms_norm(&x[0], &x[1], 1e-5),
        },
    )?);
    let positions = crate::cache::positions(&vec![0; b], 0, t);
    let rope =
        crate::rope::Rope::new(&c.rope, d).tables(&positions, b, t, DType::F32, &Device::Cpu)?;
    let spec = AttentionSpec {
        n_heads: heads,
        n_kv_heads: kv,
        head_dim: d,
        scale: 1.0 / (d as f64).sqrt(),
    };
    let qkv = [
        randn(&[b, t, heads * d], 1.0)?,
        randn(&[b, t, kv * d], 1.0)?,
        randn(&[b, t, kv * d], 1.0)?,
    ];
    out.push(time_op(
        format!("attention ({b},{t}) {heads}/{kv} heads of {d}"),
        l,
        &qkv,
        reps,
        |x, k| match fused_or(k) {
            true => fused::attention(&x[0], &x[1], &x[2], &spec, &rope, &[]),
            false => fused::composed_attention(&x[0], &x[1], &x[2], &spec, &rope, &[]),
        },
    )?);
    let mlp = [
        randn(&[b, t, h], 1.0)?,
        randn(&[i, h], 0.02)?,
        randn(&[i, h], 0.02)?,
        randn(&[h, i], 0.02)?,
    ];
    let name = format!("swiglu mlp ({b},{t},{h}) via {i}");
    out.push(time_op(name, l, &mlp, reps, |x, k| match fused_or(k) {
        true => fused::swiglu_mlp(&x[0], &x[1], &x[2], &x[3]),
        false => fused::composed_swiglu_mlp(&x[0], &x[1], &x[2], &x[3]),
    })?);
    let linears = [
        (h, heads * d, "q_proj + o_proj", 2 * l),
        (h, kv * d, "k_proj / v_proj", 2 * l),
        (h, c.vocab_size, "lm_head", 1),
    ];
    for (inp, outp, what, n) in linears {
        let xw = [randn(&[b, t, inp], 1.0)?, randn(&[outp, inp], 0.02)?];
        out.push(time_op(
            format!("linear {what} ({b},{t},{inp})->{outp}"),
            n,
            &xw,
            reps,
            |x, k| match fused_or(k) {
                true => fused::linear(&x[0], &x[1]),
                false => fused::composed_linear(&x[0], &x[1]),
            },
        )?);
    }
    Ok(out)
}

/// A table of [`op_breakdown`] results: per call and per training step, CPU milliseconds.
pub fn format_breakdown(ops: &[OpTiming]) -> String {
    let mut s = format!(
        "  {:<48} {:>5} {:>14} {:>14} {:>16}\n",
        "op (fwd+bwd)", "/step", "composed cpu", "fused cpu", "per step c -> f"
    );
    for o in ops {
        let (c, f) = (o.composed.cpu_s * 1e3, o.fused.cpu_s * 1e3);
        s += &format!(
            "  {:<48} {:>5} {:>11.2} ms {:>11.2} ms {:>7.1} -> {:>5.1}\n",
            o.name,
            o.per_step,
            c,
            f,
            c * o.per_step as f64,
            f * o.per_step as f64
        );
    }
    s
}
