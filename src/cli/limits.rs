//! Settings shared by the subcommands that run servers, grouped by which
//! node uses them: `serve` takes all three groups, `connect` the common and
//! connect groups, `logic` the common and logic groups.

use clap::Args;

/// Settings both kinds of node must agree on.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Largest frame value in bytes, both directions.
    #[arg(long, env = "TERN_MAX_FRAME_LEN", default_value_t = 256 * 1024, value_parser = clap::value_parser!(u32).range(4096..=16 * 1024 * 1024))]
    pub max_frame_len: u32,
    /// Prefix of every bus subject.
    #[arg(long, env = "TERN_SUBJECT_PREFIX", default_value = "tern")]
    pub subject_prefix: String,
    /// Log filter, e.g. `info,tern_connect=debug`.
    #[arg(long, env = "TERN_LOG", default_value = "info")]
    pub log: String,
}

/// Connection and protocol limits of a connect node.
#[derive(Debug, Clone, Args)]
pub struct ConnectLimits {
    /// Open client connections at once; more are answered RATE_LIMITED and
    /// closed, so clients try another node.
    #[arg(long, env = "TERN_MAX_CONNECTIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Heartbeat interval told to clients; 3 silent intervals close a connection.
    #[arg(long, env = "TERN_HEARTBEAT_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_interval_secs: u64,
    /// Time a new connection has to send its first frame.
    #[arg(long, env = "TERN_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub handshake_timeout_secs: u64,
    /// Frames queued per connection before it is closed as a slow consumer.
    #[arg(long, env = "TERN_WRITE_QUEUE", default_value_t = 512, value_parser = clap::value_parser!(u32).range(8..=1_000_000))]
    pub write_queue: u32,
    /// Bytes of output one connection may have pending (replies, pushes,
    /// and the replies its requests in flight may bring). Past it the
    /// connection's requests are not read until it drains; pushes past it
    /// close it as a slow consumer.
    #[arg(long, env = "TERN_WRITE_QUEUE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(4096..=1024 * 1024 * 1024))]
    pub write_queue_bytes: u32,
    /// Time to wait for logic before answering UNAVAILABLE.
    #[arg(long, env = "TERN_REQUEST_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout_secs: u64,
    /// Time a drain may take on shutdown.
    #[arg(long, env = "TERN_DRAIN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_grace_secs: u64,
    /// Rooms one connection may be in at once.
    #[arg(long, env = "TERN_MAX_ROOMS_PER_CONNECTION", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_rooms_per_connection: u32,
    /// ROOM_SENDs one connection may make per second (also the burst).
    #[arg(long, env = "TERN_ROOM_SENDS_PER_SECOND", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub room_sends_per_second: u32,
    /// Frames one connection may send per second (also the burst); more
    /// are answered RATE_LIMITED. 0: no limit.
    #[arg(long, env = "TERN_FRAMES_PER_SECOND", default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub frames_per_second: u32,
    /// Bytes one connection may send per second (the burst also holds one
    /// frame of --max-frame-len); more are answered RATE_LIMITED. 0: no limit.
    #[arg(long, env = "TERN_BYTES_PER_SECOND", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(0..))]
    pub bytes_per_second: u32,
    /// Open connections one client IP may hold on this node; more are
    /// answered RATE_LIMITED and closed. 0: no limit.
    #[arg(long, env = "TERN_CONNECTIONS_PER_ADDRESS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub connections_per_address: u32,
    /// RATE_LIMITED answers within 10 s after which a connection is closed as a flood.
    #[arg(long, env = "TERN_FLOOD_CLOSE_AFTER", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub flood_close_after: u32,
    /// How often the node announces it is alive; logic counts it dead after 3 silent intervals.
    #[arg(long, env = "TERN_ALIVE_INTERVAL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub alive_interval_ms: u64,
}

/// Limits and policies of a logic node.
#[derive(Debug, Clone, Args)]
pub struct LogicLimits {
    /// SENDs one user may make per second, over all devices and logic
    /// nodes; more are answered RATE_LIMITED. 0: no limit.
    #[arg(long, env = "TERN_USER_SENDS_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub user_sends_per_second: u32,
    /// LOGINs one username may get per minute, from anywhere; more are
    /// answered RATE_LIMITED before any password is checked. 0: no limit.
    #[arg(long, env = "TERN_LOGIN_ATTEMPTS_PER_USER_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub login_attempts_per_user_per_minute: u32,
    /// REGISTERs and LOGINs one client IP may make per minute. 0: no limit.
    #[arg(long, env = "TERN_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub auth_attempts_per_address_per_minute: u32,
    /// Longest lockout of a username or address that keeps spending its
    /// sign-in budget: the first lasts a minute, each next one twice the
    /// one before, up to this.
    #[arg(long, env = "TERN_AUTH_LOCKOUT_MAX_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub auth_lockout_max_secs: u64,
    /// Devices one user may have; a LOGIN past it removes the device seen
    /// longest ago (its token stops working).
    #[arg(long, env = "TERN_MAX_DEVICES_PER_USER", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_devices_per_user: u32,
    /// Largest message content in bytes.
    #[arg(long, env = "TERN_MAX_CONTENT_LEN", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_content_len: u32,
    /// Lifetime of a device token.
    #[arg(long, env = "TERN_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub token_ttl_secs: u64,
    /// Largest SYNC page (messages).
    #[arg(long, env = "TERN_SYNC_MAX_LIMIT", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sync_max_limit: u32,
    /// Who may message whom one-to-one and put whom into a group:
    /// friends-only or open. A block always wins.
    #[arg(long, env = "TERN_SEND_POLICY", value_enum, default_value_t = Policy::FriendsOnly)]
    pub send_policy: Policy,
    /// Largest group, owner included.
    #[arg(long, env = "TERN_MAX_GROUP_MEMBERS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub max_group_members: u32,
    /// Largest group whose messages have read counts; above it group
    /// read receipts are off.
    #[arg(long, env = "TERN_GROUP_RECEIPTS_MAX_MEMBERS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub group_receipts_max_members: u32,
    /// How long senders may recall their own messages.
    #[arg(long, env = "TERN_RECALL_WINDOW_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=30 * 24 * 3600))]
    pub recall_window_secs: u64,
    /// How long a batch of SENDs waits for more before it commits, from
    /// its first, on tokio's timer of whole milliseconds (1000 waits 1-2
    /// ms; 1-999 round up). Longer batches share each commit's fsync among
    /// more messages; 0 commits whatever queued during the last commit at
    /// once (lower latency, more CPU per message at moderate rates:
    /// BENCHMARKS.md).
    #[arg(long, env = "TERN_BATCH_LINGER_US", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub batch_linger_us: u64,
    /// How often logic looks for connect nodes whose liveness expired.
    #[arg(long, env = "TERN_NODE_SWEEP_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub node_sweep_interval_ms: u64,
}

/// `--send-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    FriendsOnly,
    Open,
}
