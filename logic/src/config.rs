//! Settings of a logic node.

use std::time::Duration;

use tern_public::bus::Subjects;

use crate::push::config::PushConfig;
use crate::webhooks::BeforeSendConfig;
use tern_public::codec::DEFAULT_MAX_FRAME_LEN;

/// Who may send one-to-one messages to whom, and put whom into a group
/// (the admin API aside). A block, either way, always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPolicy {
    /// Only accepted friends (the default); others get NOT_FRIENDS.
    FriendsOnly,
    /// Anyone may message, or group, anyone not blocked either way.
    Open,
}

/// Settings of a logic node; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct LogicConfig {
    /// How long a device token stays valid.
    pub token_ttl: Duration,
    /// SYNC page size when the client asks for 0.
    pub sync_default_limit: u32,
    /// Largest SYNC page; larger requests are capped.
    pub sync_max_limit: u32,
    /// Frame limit of the connect nodes: SYNC pages are kept under it.
    pub max_frame_len: usize,
    /// Largest message content accepted from a client.
    pub max_content_len: usize,
    /// Most mentions in one message.
    pub max_mentions: usize,
    /// Most messages committed in one transaction.
    pub batch_max: usize,
    /// Most list rows (recipients) in one transaction: a few large group
    /// messages fill a batch as much as many direct ones.
    pub batch_max_rows: usize,
    /// How long a batch waits for company once started.
    pub batch_linger: Duration,
    /// Requests handled at once by this node.
    pub max_concurrent_requests: usize,
    /// Who may message whom one-to-one, and put whom into a group.
    pub send_policy: SendPolicy,
    /// Largest group, owner included.
    pub max_group_members: u32,
    /// Largest group whose messages have read counts (GROUP_READ_COUNTS,
    /// GROUP_READERS); above it group receipts are off.
    pub group_receipts_max_members: u32,
    /// How long a sender may recall its own message.
    pub recall_window: Duration,
    /// Password hashes computed at once.
    pub max_concurrent_hashes: usize,
    /// SENDs one user may make per second across all devices and logic
    /// nodes; more are answered RATE_LIMITED. 0 turns the limit off.
    pub user_sends_per_sec: u32,
    /// LOGINs one username may get per minute, from anywhere; more are
    /// answered RATE_LIMITED before any password is checked. 0: no limit.
    pub login_attempts_per_user_per_min: u32,
    /// REGISTERs and LOGINs one client IP may make per minute. 0: no limit.
    pub auth_attempts_per_addr_per_min: u32,
    /// The window those two are counted in (a minute; tests stretch it),
    /// and the first lockout when one is spent.
    pub auth_window: Duration,
    /// Longest sign-in lockout: each spent budget doubles the previous
    /// lockout (forgotten after four times this without one), up to this.
    pub auth_lockout_max: Duration,
    /// Devices one user may have; a LOGIN past it removes the device seen
    /// longest ago.
    pub max_devices_per_user: u32,
    /// How often this node looks for connect nodes whose liveness expired.
    pub node_sweep_interval: Duration,
    /// Offline push notifications: providers and wording.
    pub push: PushConfig,
    /// The moderation hook each SEND is checked with before it is stored;
    /// none by default.
    pub before_send: Option<BeforeSendConfig>,
    /// The after-send webhook: every stored message and event, in batches.
    pub after_send: Option<crate::webhooks::after_send::AfterSendConfig>,
    pub subjects: Subjects,
}

impl Default for LogicConfig {
    fn default() -> Self {
        LogicConfig {
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            sync_default_limit: 100,
            sync_max_limit: 500,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_content_len: 64 * 1024,
            max_mentions: 100,
            batch_max: 256,
            batch_max_rows: 20_000,
            batch_linger: Duration::from_millis(1),
            max_concurrent_requests: 4096,
            send_policy: SendPolicy::FriendsOnly,
            max_group_members: 2000,
            group_receipts_max_members: 200,
            recall_window: Duration::from_secs(120),
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            user_sends_per_sec: 20,
            login_attempts_per_user_per_min: 10,
            auth_attempts_per_addr_per_min: 60,
            auth_window: Duration::from_secs(60),
            auth_lockout_max: Duration::from_secs(15 * 60),
            max_devices_per_user: 50,
            node_sweep_interval: Duration::from_secs(1),
            push: PushConfig::default(),
            before_send: None,
            after_send: None,
            subjects: Subjects::default(),
        }
    }
}

impl LogicConfig {
    /// How sign-in lockouts grow.
    pub(crate) fn auth_backoff(&self) -> crate::limits::Backoff {
        crate::limits::Backoff {
            first: self.auth_window,
            max: self.auth_lockout_max.max(self.auth_window),
            memory: self.auth_lockout_max.max(self.auth_window) * 4,
        }
    }
}
