//! Process-wide setup: thread counts, allocator tuning and logging.

use tracing_subscriber::EnvFilter;

/// Pins thread-pool sizes (before any thread starts) and raises glibc's mmap/trim thresholds so
/// big tensors are reused instead of being returned to the kernel and faulted back in.
pub fn init() {
    vine_model::tuning::pin_thread_counts();
    vine_model::tune_allocator();
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
