//! The group member cache in front of the store (DESIGN.md "Presence and
//! caches"). Memory in standalone; Redis in cluster mode, where every logic
//! node must see the others' invalidations. Also the Redis generation that
//! keeps each node's send standing cache (`store::standing`) exact.
//!
//! There is no token cache: a token is checked once per connection, at
//! SIGN_IN, which reads the device row anyway (ack_seq, last seen), so a
//! cache would save no query and add a revocation path to get wrong.
//!
//! A cache failure never fails a request: a read falls back to the store,
//! and a failed invalidation is logged (the entry expires by its TTL).

mod memory;
mod redis;
mod standing;

pub use self::redis::RedisMembers;
pub use memory::MemoryMembers;
pub use standing::RedisGeneration;

use std::sync::Arc;

use async_trait::async_trait;

/// A cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis did not answer, or refused the command.
    #[error("cache: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// What a member-cache lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Hit(Arc<Vec<u64>>),
    /// Not cached; hand this epoch back to [`MemberCache::put`] with the
    /// list loaded from the store.
    Miss(u64),
}

/// Group member ids. A load that started before an invalidation must not
/// store what it read (it could put the old list back): each invalidation
/// advances an epoch, and a put with an older epoch is ignored.
#[async_trait]
pub trait MemberCache: Send + Sync + 'static {
    async fn get(&self, group_id: u64) -> Result<Lookup, CacheError>;
    async fn put(
        &self,
        group_id: u64,
        epoch: u64,
        members: Arc<Vec<u64>>,
    ) -> Result<(), CacheError>;
    /// Drops the group's list; called right after every membership change commits.
    async fn invalidate(&self, group_id: u64) -> Result<(), CacheError>;
}
