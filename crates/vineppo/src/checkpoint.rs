//! Checkpoints of a run directory, written atomically.
//!
//! ```text
//! RUN_DIR/checkpoints/iter_000010/   policy/ (Hugging Face dir), critic/?, optimizer.safetensors,
//!                                    critic_optimizer.safetensors?, state.json
//! RUN_DIR/checkpoints/LATEST         "iter_000010"
//! ```
//!
//! A checkpoint directory is built under a temporary name and renamed into place, and `LATEST`
//! is replaced atomically after that, so a crash at any moment leaves the previous checkpoint
//! usable. `state.json` holds everything else an exact resume needs: the iteration, optimizer
//! step count, data cursor, RNG state and the wall-clock spent so far.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::{write_file, StagedDir};

/// Version of the checkpoint layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// Scalar training state saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Last completed iteration (or epoch, for SFT-style loops).
    pub iteration: u64,
    /// Optimizer steps taken so far.
    pub optimizer_steps: u64,
    /// Position in the data stream (examples consumed), for loops that walk a dataset.
    pub data_cursor: u64,
    /// State of the run's random generator, when it carries one across iterations.
    pub rng: Option<Vec<u8>>,
    /// Wall-clock seconds the run has spent so far.
    pub elapsed_s: f64,
    /// Best held-out score seen so far and its iteration (for best-checkpoint tracking).
    pub best: Option<(f64, u64)>,
}

impl TrainState {
    /// The state of a run that has not started.
    pub fn fresh() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            iteration: 0,
            optimizer_steps: 0,
            data_cursor: 0,
            rng: None,
            elapsed_s: 0.0,
            best: None,
        }
    }
}

/// Writes, lists and prunes the checkpoints of one run directory.
pub struct Checkpointer {
    dir: PathBuf,
    prefix: &'static str,
    keep: usize,
}

impl Checkpointer {
    /// Checkpoints under `run_dir/checkpoints`, keeping the newest `keep` (at least 1).
    pub fn new(run_dir: &Path, keep: usize) -> Self {
        Self::in_dir(run_dir.join("checkpoints"), "iter", keep)
    }

    /// Checkpoints named `{prefix}_{n:06}` directly under `dir` (e.g. RestEM's per-epoch
    /// checkpoints, `epoch_000003`), keeping the newest `keep` (at least 1).
    pub fn in_dir(dir: PathBuf, prefix: &'static str, keep: usize) -> Self {
        Self {
            dir,
            prefix,
            keep: keep.max(1),
        }
    }

    /// Directory name of the checkpoint of `iteration` in a run's `checkpoints/`.
    pub fn name(iteration: u64) -> String {
        format!("iter_{iteration:06}")
    }

    /// Path of the checkpoint numbered `n` (which may not exist).
    pub fn path_of(&self, n: u64) -> PathBuf {
        self.dir.join(self.entry(n))
    }

    fn entry(&self, n: u64) -> String {
        format!("{}_{n:06}", self.prefix)
    }

    /// Writes the checkpoint of `state.iteration`: `write` fills the staged directory, then
    /// `state.json` is added, the directory renamed into place, `LATEST` updated and old
    /// checkpoints pruned. Returns the checkpoint's path.
    pub fn save(
        &self,
        state: &TrainState,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let name = self.entry(state.iteration);
        let dest = self.dir.join(&name);
        let staged = StagedDir::new(&dest)?;
        write(staged.path())?;
        let json = serde_json::to_vec_pretty(state).context("serialising state.json")?;
        write_file(&staged.path().join("state.json"), &json)?;
        staged.commit()?;
        write_file(&self.dir.join("LATEST"), name.as_bytes())?;
        self.prune()?;
        Ok(dest)
    }

    /// The newest complete checkpoint, if any: its path and state.
    pub fn latest(&self) -> Result<Option<(PathBuf, TrainState)>> {
        let pointer = self.dir.join("LATEST");
        if !pointer.exists() {
            return Ok(None);
        }
        let name = fs::read_to_string(&pointer)
            .with_context(|| format!("reading `{}`", pointer.display()))?;
        let dir = self.dir.join(name.trim());
        let state = read_state(&dir)?;
        Ok(Some((dir, state)))
    }

    /// [`Self::latest`] when resuming; `None` for a fresh run.
    pub fn latest_if(&self, resuming: bool) -> Result<Option<(PathBuf, TrainState)>> {
        if resuming {
            self.latest()
        } else {
            Ok(None)
        }
    }

    /// Completed checkpoints, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in
            fs::read_dir(&self.dir).with_context(|| format!("listing `{}`", self.dir.display()))?
        {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(it) = name
                .strip_prefix(self.prefix)
                .and_then(|n| n.strip_prefix('_'))
                .and_then(|n| n.parse::<u64>().ok())
            {
                if path.join("state.json").exists() {
                    out.push((it, path));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep);
        for (_, path) in all.into_iter().take(excess) {
            fs::remove_dir_all(&path)
                .with_context(|| format!("removing old checkpoint `{}`", path.display()))?;
        }
        Ok(())
    }
}

/// Test hook: `VINEPPO_TEST_CRASH_AT=<position>:<stage>` aborts the process at that point, as a
/// crash or kill would, so tests can resume a run interrupted mid-iteration. `position` is what
/// the loop counts (an iteration, an optimizer step).
pub fn crash_point(position: u64, stage: &str) {
    if let Ok(spec) = std::env::var("VINEPPO_TEST_CRASH_AT") {
        if spec == format!("{position}:{stage}") {
            std::process::abort();
        }
    }
}

/// Reads and checks `dir/state.json`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join("state.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let state: TrainState = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a valid checkpoint state", path.display()))?;
    if state.format_version != FORMAT_VERSION {
        bail!(
            "`{}` has checkpoint format {} but this vineppo reads format {FORMAT_VERSION}; resume it with the vineppo version that wrote it",
            path.display(),
            state.format_version
        );
    }
    Ok(state)
}

/// How much of `metrics.jsonl` a run keeps (`keep_through` of [`crate::metrics::MetricsLog::open`]):
/// a resumed run keeps the lines through its latest checkpoint (through iteration 0, the
/// evaluation before training, when it had none yet); a fresh run keeps nothing.
pub fn keep_metrics_through(latest: Option<&(PathBuf, TrainState)>, resuming: bool) -> Option<u64> {
    latest.map(|(_, s)| s.iteration).or(resuming.then_some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_latest_and_prune() {
        let run = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(run.path(), 2);
        assert!(ck.latest().unwrap().is_none());
        for it in [1, 2, 3] {
            let mut s = TrainState::fresh();
            s.iteration = it;
            s.rng = Some(vec![it as u8; 4]);
            ck.save(&s, |d| write_file(&d.join("weights.bin"), &[it as u8]))
                .unwrap();
        }
        let (dir, state) = ck.latest().unwrap().unwrap();
        assert_eq!(state.iteration, 3);
        assert_eq!(fs::read(dir.join("weights.bin")).unwrap(), vec![3]);
        assert_eq!(
            ck.list().unwrap().iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn prefixed_checkpoints_list_and_prune_their_own_kind() {
        let run = tempfile::tempdir().unwrap();
        let ck = Checkpointer::in_dir(run.path().join("epochs"), "epoch", 2);
        fs::create_dir_all(run.path().join("epochs/iter_000009")).unwrap();
        for e in [1, 2, 3] {
            let mut s = TrainState::fresh();
            s.iteration = e;
            ck.save(&s, |_| Ok(())).unwrap();
        }
        assert_eq!(ck.latest().unwrap().unwrap().0, ck.path_of(3));
        assert!(ck.path_of(3).ends_with("epochs/epoch_000003"));
        assert_eq!(
            ck.list().unwrap().iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(run.path().join("epochs/iter_000009").exists());
    }

    #[test]
    fn failed_write_keeps_previous_checkpoint() {
        let run = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(run.path(), 3);
        ck.save(&TrainState::fresh(), |_| Ok(())).unwrap();
        let mut s = TrainState::fresh();
        s.iteration = 5;
        assert!(ck.save(&s, |_| bail!("disk full")).is_err());
        assert_eq!(ck.latest().unwrap().unwrap().1.iteration, 0);
        assert_eq!(ck.list().unwrap().len(), 1);
    }

    #[test]
    fn wrong_format_version_is_explained() {
        let run = tempfile::tempdir().unwrap();
        let mut s = TrainState::fresh();
        s.format_version = 99;
        fs::write(
            run.path().join("state.json"),
            serde_json::to_vec(&s).unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", read_state(run.path()).unwrap_err());
        assert!(err.contains("format 99"), "{err}");
    }
}
