//! Per-iteration metrics: a flat JSON object per line in `RUN_DIR/metrics.jsonl`, plus stage
//! timers.
//!
//! Keys are `group/name` (the stage names match the timers): `reward/*`, `response/*`, `kl/*`,
//! `ppo/*`, `vine/*`, `critic/*`, `timing/*_s`, `throughput/*`, `eval/*`. Every line has
//! `iteration` (0 = before training) and `time/elapsed_s` (wall-clock since the run started,
//! excluding time the run was not running, so a resumed run continues the clock).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    values: BTreeMap<String, Value>,
}

impl Metrics {
    /// Metrics of iteration `iteration`.
    pub fn new(iteration: u64) -> Self {
        let mut m = Self::default();
        m.set("iteration", iteration as f64);
        m
    }

    /// Sets a numeric metric; non-finite values are stored as `null`.
    pub fn set(&mut self, key: &str, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        self.values.insert(key.to_string(), v);
    }

    /// Reads a numeric metric.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(Value::as_f64)
    }

    /// Merges `other` into `self` (other wins).
    pub fn extend(&mut self, other: &Metrics) {
        self.values
            .extend(other.values.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Runs `f`, adding its wall-clock seconds to `timing/{stage}_s`.
    pub fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add_time(stage, start);
        out
    }

    /// Adds the seconds since `start` to `timing/{stage}_s` (for stages that also log metrics).
    pub fn add_time(&mut self, stage: &str, start: Instant) {
        let key = format!("timing/{stage}_s");
        let prev = self.get(&key).unwrap_or(0.0);
        self.set(&key, prev + start.elapsed().as_secs_f64());
    }

    /// All keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.as_str(), x)))
    }

    /// One JSON line.
    pub fn to_json_line(&self) -> String {
        Value::Object(self.values.clone().into_iter().collect::<Map<_, _>>()).to_string()
    }

    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Object(map) => Some(Self {
                values: map.into_iter().collect(),
            }),
            _ => None,
        }
    }
}

/// Appends metrics to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// The log of `run_dir`, keeping only lines with `iteration <= keep_through` (a resumed run
    /// drops what the interrupted run logged after its last checkpoint). `None` starts fresh.
    pub fn open(run_dir: &Path, keep_through: Option<u64>) -> Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let kept: Vec<Metrics> = match keep_through {
            Some(last) if path.exists() => read_metrics(&path)?
                .into_iter()
                .filter(|m| m.get("iteration").is_some_and(|i| i <= last as f64))
                .collect(),
            _ => Vec::new(),
        };
        let text: String = kept.iter().map(|m| m.to_json_line() + "\n").collect();
        crate::atomic::write_file(&path, text.as_bytes())?;
        Ok(Self { path })
    }

    /// Appends one line and flushes it to disk.
    pub fn append(&mut self, m: &Metrics) -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .with_context(|| format!("opening `{}`", self.path.display()))?;
        writeln!(f, "{}", m.to_json_line())
            .with_context(|| format!("writing `{}`", self.path.display()))?;
        f.sync_data()
            .with_context(|| format!("syncing `{}`", self.path.display()))
    }
}

/// Reads a `metrics.jsonl`; a malformed line is an error naming the file and line.
pub fn read_metrics(path: &Path) -> Result<Vec<Metrics>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("`{}` line {}: not valid JSON", path.display(), i + 1))?;
        out.push(Metrics::from_json(v).with_context(|| {
            format!(
                "`{}` line {}: expected a JSON object",
                path.display(),
                i + 1
            )
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_and_resume_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::open(dir.path(), None).unwrap();
        for it in 0..4 {
            let mut m = Metrics::new(it);
            m.set("reward/mean", it as f64 / 4.0);
            m.set("bad", f64::NAN);
            m.time("generate", || ());
            log.append(&m).unwrap();
        }
        let all = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[2].get("reward/mean"), Some(0.5));
        assert_eq!(all[2].get("bad"), None);
        assert!(all[1].get("timing/generate_s").is_some());
        MetricsLog::open(dir.path(), Some(1)).unwrap();
        let kept = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn malformed_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        fs::write(&p, "{\"iteration\": 0}\n[1, 2]\n").unwrap();
        let err = format!("{:#}", read_metrics(&p).unwrap_err());
        assert!(err.contains("line 2"), "{err}");
    }
}
