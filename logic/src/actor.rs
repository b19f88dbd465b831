//! Who acts: a signed-in device of a user, or the admin API acting as a
//! user or as the system. Every command takes its identity from here, never
//! from a payload, and the few rules that differ for the admin (no rate
//! limit, no recall window) ask [`Actor::is_admin`] instead of a sentinel.

/// The client connection a command arrived on, as its connect node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub node_id: String,
    pub conn_id: u64,
    /// What the connection was told at sign-in (echoed into the session).
    pub heartbeat_interval_secs: u32,
    /// The client's `ip:port`.
    pub remote_addr: String,
}

/// Who performs a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in device, on its connection.
    Device {
        user_id: u64,
        device_id: u64,
        conn: Connection,
    },
    /// The admin API acting as this user: what it does is that user's own
    /// action (the same checks and events), from no device.
    AdminAs(u64),
    /// The admin API acting as the server itself (sender id
    /// [`SYSTEM_USER`]).
    System,
}

/// The user id of the server itself: no user has it.
pub const SYSTEM_USER: u64 = 0;

impl Actor {
    /// The user acting; [`SYSTEM_USER`] for the system.
    pub fn user_id(&self) -> u64 {
        match self {
            Actor::Device { user_id, .. } => *user_id,
            Actor::AdminAs(user_id) => *user_id,
            Actor::System => SYSTEM_USER,
        }
    }

    /// The device acting; 0 when the admin API acts.
    pub fn device_id(&self) -> u64 {
        match self {
            Actor::Device { device_id, .. } => *device_id,
            Actor::AdminAs(_) | Actor::System => 0,
        }
    }

    /// Whether the admin API acts (no client connection).
    pub fn is_admin(&self) -> bool {
        !matches!(self, Actor::Device { .. })
    }

    /// The client connection, when a device acts.
    pub fn connection(&self) -> Option<&Connection> {
        match self {
            Actor::Device { conn, .. } => Some(conn),
            Actor::AdminAs(_) | Actor::System => None,
        }
    }
}
