//! Presence: which connection (node, conn) serves each online device
//! (DESIGN.md "Presence and caches"). In memory for standalone; Redis in
//! cluster mode. Whether a node is alive is `liveness`'s; how many
//! members a room has is `room_counts`'s.

mod memory;
mod redis;

pub use self::redis::RedisPresence;
pub use memory::MemoryPresence;

use async_trait::async_trait;

/// Where a device is connected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub node_id: String,
    pub conn_id: u64,
}

/// One online device of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineDevice {
    pub user_id: u64,
    pub device_id: u64,
    pub at: Location,
}

/// Who is online, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnlineStats {
    /// (node id, signed-in connections), by node id.
    pub nodes: Vec<(String, u64)>,
    pub users: u64,
}

/// Presence failed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// Redis did not answer, or refused the command.
    #[error("presence: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// The presence registry.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Records that `device_id` is served by `at`; returns the location it
    /// replaces when that was another connection.
    async fn online(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<Option<Location>, PresenceError>;

    /// Compare-and-delete: forgets the device only if `at` still serves it,
    /// so a stale connection's close never removes the newer one.
    async fn offline(
        &self,
        user_id: u64,
        device_id: u64,
        at: &Location,
    ) -> Result<bool, PresenceError>;

    /// Every online device of the given users, in one round trip.
    async fn locate(&self, user_ids: &[u64]) -> Result<Vec<OnlineDevice>, PresenceError>;

    /// Forgets every device served by a node that went down; returns how many.
    async fn node_down(&self, node_id: &str) -> Result<usize, PresenceError>;

    /// Restores a device's entry only if it has none (a newer sign-in
    /// elsewhere wins); returns whether it did.
    async fn restore(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<bool, PresenceError>;

    /// Signed-in connections per connect node, and distinct users online.
    /// Reads every entry: for admin views, not for hot paths.
    async fn online_stats(&self) -> Result<OnlineStats, PresenceError>;

    /// Whether the registry answers (readiness checks).
    async fn ping(&self) -> Result<(), PresenceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
