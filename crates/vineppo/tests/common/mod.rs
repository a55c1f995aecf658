//! Helpers shared by the end-to-end tests that run the `vineppo` binary on the tiny random
//! Llama fixture. (Each test file is its own crate and uses a subset, hence the allow.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tiny random Llama written by `scripts/make_parity_fixtures.py`.
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vine-model/tests/fixtures/llama")
}

/// Runs the binary with `args` and extra environment variables, single-threaded so that runs
/// are reproducible and cheap on a 2-core machine.
pub fn vineppo(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vineppo"));
    cmd.args(args).env("RAYON_NUM_THREADS", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts that the command succeeded (showing its stderr if not) and returns its stderr.
pub fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// One metrics line.
pub type Line = serde_json::Map<String, serde_json::Value>;

/// The run's metric lines without wall-clock entries, which differ between runs by nature.
pub fn metrics(run: &Path) -> Vec<Line> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut m: Line = serde_json::from_str(l).unwrap();
            m.retain(|k, _| {
                !k.starts_with("time/")
                    && !k.starts_with("timing/")
                    && !k.starts_with("throughput/")
            });
            m
        })
        .collect()
}
