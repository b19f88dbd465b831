//! Bounds of the HTTP ports: `--http` of `serve` and `logic`,
//! `--metrics-listen` of `connect`.

use std::time::Duration;

use clap::Args;

use tern_public::http::HttpConfig;

/// Timeouts and the connection limit of an HTTP port.
#[derive(Debug, Clone, Args)]
pub struct HttpLimits {
    /// Time an HTTP request's headers have to arrive whole, from the
    /// connection's start or the request's first byte; then it is closed.
    #[arg(long, env = "TERN_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub http_header_timeout_secs: u64,
    /// Time a kept-alive HTTP connection may wait for its next request, or
    /// move no byte while a request is in flight; then it is closed.
    #[arg(long, env = "TERN_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_idle_timeout_secs: u64,
    /// Open HTTP connections at once; past it, new ones wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "TERN_HTTP_MAX_CONNECTIONS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub http_max_connections: u32,
}

impl HttpLimits {
    /// The port's bounds; requests in flight at shutdown get `grace`.
    pub fn config(&self, grace: Duration) -> HttpConfig {
        HttpConfig {
            header_timeout: Duration::from_secs(self.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(self.http_idle_timeout_secs),
            max_connections: self.http_max_connections as usize,
            shutdown_grace: grace,
            ..HttpConfig::default()
        }
    }
}
