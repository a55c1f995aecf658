//! Device memory in use, and its peak over a stretch of work.
//!
//! candle has no allocator statistics, so this asks the driver (`cuMemGetInfo`: total − free,
//! which counts this process's allocations, the CUDA context and the stream's memory pool).
//! [`PeakMemory`] polls it every few milliseconds on a background thread; a spike shorter than
//! the polling interval can be missed, so `scripts/gpu/` also records `nvidia-smi`'s view.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use candle_core::Device;

/// Bytes in use on `device` (all processes), `None` on the CPU or in a build without CUDA.
pub fn used_bytes(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let (free, total) = d.cuda_stream().context().mem_get_info().ok()?;
        return Some(total.saturating_sub(free) as u64);
    }
    let _ = device;
    None
}

/// The device's name, when the driver tells.
pub fn device_name(device: &Device) -> Option<String> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        return d.cuda_stream().context().name().ok();
    }
    let _ = device;
    None
}

/// Tracks the largest [`used_bytes`] seen until [`PeakMemory::finish`].
pub struct PeakMemory {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    baseline: Option<u64>,
}

impl PeakMemory {
    /// Starts polling `device` every `interval` (nothing happens off CUDA).
    pub fn start(device: &Device, interval: Duration) -> Self {
        let baseline = used_bytes(device);
        let peak = Arc::new(AtomicU64::new(baseline.unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = baseline.map(|_| {
            let (dev, peak, stop) = (device.clone(), peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(u) = used_bytes(&dev) {
                        peak.fetch_max(u, Ordering::Relaxed);
                    }
                    std::thread::sleep(interval);
                }
            })
        });
        Self {
            peak,
            stop,
            handle,
            baseline,
        }
    }

    /// Stops polling; returns `(baseline, peak)` bytes in use, `None` off CUDA.
    pub fn finish(mut self) -> Option<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let peak = self.peak.load(Ordering::Relaxed);
        self.baseline.map(|b| (b, peak.max(b)))
    }
}

impl Drop for PeakMemory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Bytes as GiB.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}
