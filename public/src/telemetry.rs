//! Tracing setup shared by every tern binary.

use tracing_subscriber::EnvFilter;

/// Installs a stderr `fmt` subscriber with the given filter (e.g.
/// `info,tern_connect=debug`). Calling it twice is harmless.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}
