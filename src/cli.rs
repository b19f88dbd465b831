//! Command-line configuration. Every setting is a flag with a `TERN_…`
//! environment variable and a default that makes `tern serve` work as is.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use tern_connect::ConnectConfig;
use tern_logic::{LogicConfig, SendPolicy};
use tern_public::bus::Subjects;

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
    /// Load generator against a running server (loopback only).
    Bench(crate::bench::BenchArgs),
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
    /// Log filter, e.g. `info,tern_connect=debug`.
    #[arg(long, env = "TERN_LOG", default_value = "info")]
    pub log: String,
    #[command(flatten)]
    pub limits: Limits,
}

/// Connection and protocol limits.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Open client connections at once.
    #[arg(long, env = "TERN_MAX_CONNECTIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Largest frame value in bytes, both directions.
    #[arg(long, env = "TERN_MAX_FRAME_LEN", default_value_t = 256 * 1024, value_parser = clap::value_parser!(u32).range(4096..=16 * 1024 * 1024))]
    pub max_frame_len: u32,
    /// Largest message content in bytes.
    #[arg(long, env = "TERN_MAX_CONTENT_LEN", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_content_len: u32,
    /// Heartbeat interval told to clients; 3 silent intervals close a connection.
    #[arg(long, env = "TERN_HEARTBEAT_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_interval_secs: u64,
    /// Time a new connection has to send its first frame.
    #[arg(long, env = "TERN_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub handshake_timeout_secs: u64,
    /// Frames queued per connection before it is closed as a slow consumer.
    #[arg(long, env = "TERN_WRITE_QUEUE", default_value_t = 512, value_parser = clap::value_parser!(u32).range(8..=1_000_000))]
    pub write_queue: u32,
    /// Time to wait for logic before answering UNAVAILABLE.
    #[arg(long, env = "TERN_REQUEST_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout_secs: u64,
    /// Time a drain may take on shutdown.
    #[arg(long, env = "TERN_DRAIN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_grace_secs: u64,
    /// Lifetime of a device token.
    #[arg(long, env = "TERN_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub token_ttl_secs: u64,
    /// Largest SYNC page (messages).
    #[arg(long, env = "TERN_SYNC_MAX_LIMIT", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sync_max_limit: u32,
    /// Who may message whom one-to-one: friends_only or open. A block always wins.
    #[arg(long, env = "TERN_SEND_POLICY", value_enum, default_value_t = Policy::FriendsOnly)]
    pub send_policy: Policy,
    /// Largest group, owner included.
    #[arg(long, env = "TERN_MAX_GROUP_MEMBERS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub max_group_members: u32,
    /// How long senders may recall their own messages.
    #[arg(long, env = "TERN_RECALL_WINDOW_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=30 * 24 * 3600))]
    pub recall_window_secs: u64,
    /// Prefix of every bus subject.
    #[arg(long, env = "TERN_SUBJECT_PREFIX", default_value = "tern")]
    pub subject_prefix: String,
}

/// `--send-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    FriendsOnly,
    Open,
}

impl ServeArgs {
    /// Checks settings that depend on each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        // A message must fit in a PUSH frame with its envelope.
        if l.max_content_len as u64 + 4096 > l.max_frame_len as u64 {
            anyhow::bail!(
                "--max-content-len ({}) must be at least 4096 below --max-frame-len ({})",
                l.max_content_len,
                l.max_frame_len
            );
        }
        Ok(())
    }

    pub fn connect_config(&self) -> ConnectConfig {
        let l = &self.limits;
        ConnectConfig {
            node_id: self.node_id.clone(),
            max_connections: l.max_connections as usize,
            max_frame_len: l.max_frame_len as usize,
            handshake_timeout: Duration::from_secs(l.handshake_timeout_secs),
            heartbeat_interval: Duration::from_secs(l.heartbeat_interval_secs),
            write_queue_frames: l.write_queue as usize,
            request_timeout: Duration::from_secs(l.request_timeout_secs),
            drain_grace: Duration::from_secs(l.drain_grace_secs),
            subjects: Subjects::new(l.subject_prefix.clone()),
            ..ConnectConfig::default()
        }
    }

    pub fn logic_config(&self) -> LogicConfig {
        let l = &self.limits;
        LogicConfig {
            token_ttl: Duration::from_secs(l.token_ttl_secs),
            sync_max_limit: l.sync_max_limit,
            sync_default_limit: l.sync_max_limit.min(100),
            max_frame_len: l.max_frame_len as usize,
            max_content_len: l.max_content_len as usize,
            subjects: Subjects::new(l.subject_prefix.clone()),
            send_policy: match l.send_policy {
                Policy::FriendsOnly => SendPolicy::FriendsOnly,
                Policy::Open => SendPolicy::Open,
            },
            max_group_members: l.max_group_members,
            recall_window: Duration::from_secs(l.recall_window_secs),
            ..LogicConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["tern"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen, "127.0.0.1:7400");
        assert_eq!(cli.serve.data_dir, PathBuf::from("./data"));
        cli.serve.validate().unwrap();
        let c = cli.serve.connect_config();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.max_frame_len, 256 * 1024);
    }

    #[test]
    fn flags_reach_the_configs_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from([
            "tern",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval-secs",
            "5",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve")
        };
        assert_eq!(
            args.connect_config().heartbeat_interval,
            Duration::from_secs(5)
        );
        assert!(Cli::try_parse_from(["tern", "--heartbeat-interval-secs", "0"]).is_err());
        let cli = Cli::try_parse_from([
            "tern",
            "--max-frame-len",
            "8192",
            "--max-content-len",
            "8000",
        ])
        .unwrap();
        assert!(cli.serve.validate().is_err());
    }
}
