//! Node liveness: which connect nodes announced themselves lately
//! (DESIGN.md "Bus": nodes announce themselves while alive). A node whose
//! liveness expired is down, and the presence it left is cleared by the
//! sweeper (`events`). In memory for standalone; Redis in cluster mode.

mod memory;
mod redis;

pub use self::redis::RedisLiveness;
pub use memory::MemoryLiveness;

pub(crate) use self::redis::watched_key;

use std::time::Duration;

use async_trait::async_trait;

/// Recording or reading liveness failed.
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// Redis did not answer, or refused the command.
    #[error("node liveness: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// The liveness of connect nodes, as their announcements keep it.
#[async_trait]
pub trait NodeLiveness: Send + Sync + 'static {
    /// Records that a connect node is alive for the next `ttl`; returns
    /// true when the node was not watched (new, or swept as dead).
    async fn node_alive(&self, node_id: &str, ttl: Duration) -> Result<bool, LivenessError>;

    /// Connect nodes that announced themselves and whose liveness has expired.
    async fn expired_nodes(&self) -> Result<Vec<String>, LivenessError>;

    /// Stops tracking a node's liveness (it stopped, or its devices were cleared).
    async fn forget_node(&self, node_id: &str) -> Result<(), LivenessError>;
}
