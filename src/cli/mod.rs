//! Command-line configuration. Every setting is a flag with a `TERN_…`
//! environment variable and a default that makes `tern serve` work as is.

mod http;
mod limits;
mod push;
mod tls;
mod webhooks;

pub use push::PushArgs;
pub use webhooks::WebhookArgs;

pub use http::HttpLimits;
pub use limits::{Common, ConnectLimits, LogicLimits, Policy};
pub use tls::TlsArgs;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use tern_connect::ConnectConfig;
use tern_logic::{LogicConfig, SendPolicy};
use tern_public::bus::Subjects;
use tern_public::http::HttpConfig;

/// tern: a chat server for mobile apps.
#[derive(Debug, Parser)]
#[command(name = "tern", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, tern runs `serve` with these settings.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Standalone server: connect + logic in one process, SQLite under the data directory.
    Serve(ServeArgs),
    /// Cluster connect node: client connections, talking to logic over NATS.
    Connect(ConnectArgs),
    /// Cluster logic node: commands and storage (MySQL), presence (Redis), over NATS.
    Logic(LogicArgs),
    /// Load generator against a running server (loopback only).
    Bench(crate::bench::BenchArgs),
    /// Chat in the terminal: register or log in, open a conversation, talk.
    Chat(crate::chat::ChatArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Client TCP address.
    #[arg(long, env = "TERN_LISTEN", default_value = "127.0.0.1:7400")]
    pub listen: String,
    /// Directory of the standalone database.
    #[arg(long, env = "TERN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL; defaults to SQLite at <data-dir>/tern.db.
    #[arg(long, env = "TERN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Id of this node on the bus.
    #[arg(long, env = "TERN_NODE_ID", default_value = "standalone")]
    pub node_id: String,
    /// HTTP address (health, readiness, the admin API).
    #[arg(
        long = "http",
        env = "TERN_HTTP_LISTEN",
        default_value = "127.0.0.1:7480"
    )]
    pub http_listen: String,
    /// Bearer token of the admin API; by default one is made on first run
    /// and kept in <data-dir>/admin-token.
    #[arg(long, env = "TERN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub connect: ConnectLimits,
    #[command(flatten)]
    pub logic: LogicLimits,
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub http: HttpLimits,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Client TCP address.
    #[arg(long, env = "TERN_LISTEN", default_value = "127.0.0.1:7400")]
    pub listen: String,
    /// NATS server URL(s), comma separated.
    #[arg(long = "nats", env = "TERN_NATS_URL")]
    pub nats_url: String,
    /// Unique id of this node; a fresh one is made at each start when not given.
    #[arg(long, env = "TERN_NODE_ID")]
    pub node_id: Option<String>,
    /// HTTP address for `/metrics` and `/healthz` (none when not given).
    #[arg(long, env = "TERN_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub connect: ConnectLimits,
    /// Bounds of the metrics port.
    #[command(flatten)]
    pub http: HttpLimits,
}

#[derive(Debug, Clone, Args)]
pub struct LogicArgs {
    /// NATS server URL(s), comma separated.
    #[arg(long = "nats", env = "TERN_NATS_URL")]
    pub nats_url: String,
    /// `mysql://user:pass@host/db` (any number of logic nodes) or
    /// `sqlite:path?mode=rwc` (one logic node).
    #[arg(long, env = "TERN_DATABASE_URL")]
    pub database_url: String,
    /// `redis://host:port`: shared presence and caches. Without it presence
    /// is in memory and only one logic node may run.
    #[arg(long, env = "TERN_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    #[arg(long, env = "TERN_REDIS_PREFIX", default_value = "tern")]
    pub redis_prefix: String,
    /// How long a group's cached member list lives in Redis.
    #[arg(long, env = "TERN_MEMBER_CACHE_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub member_cache_ttl_secs: u64,
    /// Bearer token of the admin API (`Authorization: Bearer <token>`);
    /// without it the admin API answers 401 to everything. Every logic node
    /// of a cluster takes the same one.
    #[arg(long, env = "TERN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// HTTP address (health, readiness; the admin API).
    #[arg(
        long = "http",
        env = "TERN_HTTP_LISTEN",
        default_value = "127.0.0.1:7480"
    )]
    pub http_listen: String,
    /// Name of this node in logs and NATS monitoring; made up when not given.
    #[arg(long, env = "TERN_NODE_ID")]
    pub node_id: Option<String>,
    /// Time HTTP requests in flight get to finish on shutdown; then their
    /// connections are dropped.
    #[arg(long, env = "TERN_DRAIN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_grace_secs: u64,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub logic: LogicLimits,
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub http: HttpLimits,
}

/// A node id unique to this process start: `<kind>-<hostname>-<random>`.
pub fn fresh_node_id(kind: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "node".into());
    format!("{kind}-{host}-{:08x}", rand::random::<u32>())
}

/// Node ids become NATS subject tokens and Redis key parts.
fn check_node_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!("--node-id {id:?}: use 1-64 characters of a-z, A-Z, 0-9, '-', '_'");
    }
    Ok(())
}

fn check_content(common: &Common, logic: &LogicLimits) -> anyhow::Result<()> {
    // A message must fit in a PUSH frame with its envelope.
    if logic.max_content_len as u64 + 4096 > common.max_frame_len as u64 {
        anyhow::bail!(
            "--max-content-len ({}) must be at least 4096 below --max-frame-len ({})",
            logic.max_content_len,
            common.max_frame_len
        );
    }
    Ok(())
}

fn connect_config(node_id: String, common: &Common, l: &ConnectLimits) -> ConnectConfig {
    ConnectConfig {
        node_id,
        max_connections: l.max_connections as usize,
        max_frame_len: common.max_frame_len as usize,
        handshake_timeout: Duration::from_secs(l.handshake_timeout_secs),
        heartbeat_interval: Duration::from_secs(l.heartbeat_interval_secs),
        write_queue_frames: l.write_queue as usize,
        write_queue_bytes: l.write_queue_bytes as usize,
        request_timeout: Duration::from_secs(l.request_timeout_secs),
        drain_grace: Duration::from_secs(l.drain_grace_secs),
        alive_interval: Duration::from_millis(l.alive_interval_ms),
        max_rooms_per_conn: l.max_rooms_per_connection as usize,
        room_sends_per_sec: l.room_sends_per_second,
        frames_per_sec: l.frames_per_second,
        bytes_per_sec: l.bytes_per_second,
        flood_close_after: l.flood_close_after,
        max_connections_per_ip: l.connections_per_address,
        subjects: Subjects::new(common.subject_prefix.clone()),
        ..ConnectConfig::default()
    }
}

fn logic_config(
    common: &Common,
    l: &LogicLimits,
    push: &PushArgs,
    webhooks: &WebhookArgs,
) -> anyhow::Result<LogicConfig> {
    Ok(LogicConfig {
        token_ttl: Duration::from_secs(l.token_ttl_secs),
        sync_max_limit: l.sync_max_limit,
        sync_default_limit: l.sync_max_limit.min(100),
        max_frame_len: common.max_frame_len as usize,
        max_content_len: l.max_content_len as usize,
        subjects: Subjects::new(common.subject_prefix.clone()),
        send_policy: match l.send_policy {
            Policy::FriendsOnly => SendPolicy::FriendsOnly,
            Policy::Open => SendPolicy::Open,
        },
        max_group_members: l.max_group_members,
        group_receipts_max_members: l.group_receipts_max_members,
        recall_window: Duration::from_secs(l.recall_window_secs),
        node_sweep_interval: Duration::from_millis(l.node_sweep_interval_ms),
        batch_linger: Duration::from_micros(l.batch_linger_us),
        user_sends_per_sec: l.user_sends_per_second,
        login_attempts_per_user_per_min: l.login_attempts_per_user_per_minute,
        auth_attempts_per_addr_per_min: l.auth_attempts_per_address_per_minute,
        auth_lockout_max: Duration::from_secs(l.auth_lockout_max_secs),
        max_devices_per_user: l.max_devices_per_user,
        push: push.config()?,
        before_send: webhooks.before_send()?,
        after_send: webhooks.after_send()?,
        ..LogicConfig::default()
    })
}

impl ServeArgs {
    /// Checks settings that depend on each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_node_id(&self.node_id)?;
        check_content(&self.common, &self.logic)?;
        self.webhooks
            .check_timeout(Duration::from_secs(self.connect.request_timeout_secs))
    }

    pub fn connect_config(&self) -> ConnectConfig {
        connect_config(self.node_id.clone(), &self.common, &self.connect)
    }

    /// The logic settings; fails on unusable push credentials or webhook
    /// settings.
    pub fn logic_config(&self) -> anyhow::Result<LogicConfig> {
        logic_config(&self.common, &self.logic, &self.push, &self.webhooks)
    }

    /// The HTTP port's bounds; it shuts down within the drain grace.
    pub fn http_config(&self) -> HttpConfig {
        self.http
            .config(Duration::from_secs(self.connect.drain_grace_secs))
    }
}

impl ConnectArgs {
    /// The node id to use: the given one (checked) or a fresh one.
    pub fn node_id(&self) -> anyhow::Result<String> {
        match &self.node_id {
            Some(id) => check_node_id(id).map(|()| id.clone()),
            None => Ok(fresh_node_id("connect")),
        }
    }

    pub fn connect_config(&self, node_id: String) -> ConnectConfig {
        connect_config(node_id, &self.common, &self.connect)
    }

    /// The metrics port's bounds; it shuts down within the drain grace.
    pub fn http_config(&self) -> HttpConfig {
        self.http
            .config(Duration::from_secs(self.connect.drain_grace_secs))
    }
}

impl LogicArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(id) = &self.node_id {
            check_node_id(id)?;
        }
        check_content(&self.common, &self.logic)
    }

    /// The logic settings; fails on unusable push credentials or webhook
    /// settings.
    pub fn logic_config(&self) -> anyhow::Result<LogicConfig> {
        logic_config(&self.common, &self.logic, &self.push, &self.webhooks)
    }

    /// The HTTP port's bounds; it shuts down within the drain grace.
    pub fn http_config(&self) -> HttpConfig {
        self.http.config(Duration::from_secs(self.drain_grace_secs))
    }
}

#[cfg(test)]
mod tests;
