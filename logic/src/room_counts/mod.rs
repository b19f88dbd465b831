//! Room online counts: how many members each room has across connect
//! nodes. Each node reports its local counts with a TTL, so a node that
//! dies drops out on its own. In memory for standalone; Redis in cluster mode.

mod memory;
mod redis;

pub use self::redis::RedisRoomCounts;
pub use memory::MemoryRoomCounts;

use std::time::Duration;

use async_trait::async_trait;

/// Recording or reading room counts failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomCountsError {
    /// Redis did not answer, or refused the command.
    #[error("room counts: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// Room member counts, summed over the connect nodes that report them.
#[async_trait]
pub trait RoomCounts: Send + Sync + 'static {
    /// Records a node's local member counts per room, valid for `ttl`;
    /// a count of 0 removes the node's share of that room.
    async fn record(
        &self,
        node_id: &str,
        counts: &[(String, u32)],
        ttl: Duration,
    ) -> Result<(), RoomCountsError>;

    /// Members of a room across all nodes (counts not expired).
    async fn room_online(&self, room_id: &str) -> Result<u64, RoomCountsError>;

    /// The `limit` rooms with the most members, most first.
    async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>, RoomCountsError>;
}

#[cfg(test)]
mod tests;
