//! tern-logic is the stateless core of tern: accounts and devices, the
//! message store with its per-user lists (write fan-out, one contiguous seq
//! per user), group commit, and the pushes that follow each commit. It
//! serves client commands that connect nodes forward over the bus; it never
//! holds a client connection. Any number of logic nodes can run side by side.

mod actor;
mod admin;
pub mod api;
mod auth;
pub mod cache;
mod config;
mod dispatch;
pub mod domain;
mod error;
mod events;
mod fanout;
mod friends;
mod groups;
pub mod limits;
mod messages;
pub mod metrics;
mod paging;
pub mod peers;
pub mod presence;
mod redis_conn;
mod rooms;
mod rpc;
pub mod store;
mod system;
mod users;
mod wire;

pub use config::{LogicConfig, SendPolicy};
pub use error::LogicError;
pub use redis_conn::RedisConn;
pub use rpc::LogicServer;

use std::sync::Arc;
use std::time::Duration;

use tern_public::bus::Bus;

use crate::cache::{MemberCache, MemoryMembers, RedisMembers};
use crate::limits::{MemoryCounter, RedisCounter, WindowCounter};
use crate::messages::Batcher;
use crate::metrics::LogicMetrics;
use crate::presence::{MemoryPresence, Presence, RedisPresence};
use crate::store::Store;

/// Where presence and caches live: memory for one logic node, Redis when
/// several share them.
#[derive(Clone)]
pub struct Shared {
    pub presence: Arc<dyn Presence>,
    pub members: Arc<dyn MemberCache>,
    /// Rate-limit counters that hold across logic nodes.
    pub counters: Arc<dyn WindowCounter>,
}

impl Shared {
    /// In this process only: right for exactly one logic node.
    pub fn memory() -> Shared {
        Shared {
            presence: Arc::new(MemoryPresence::new()),
            members: Arc::new(MemoryMembers::default()),
            counters: Arc::new(MemoryCounter::default()),
        }
    }

    /// In Redis, shared by every logic node of a cluster.
    pub fn redis(conn: RedisConn, member_ttl: Duration) -> Shared {
        Shared {
            presence: Arc::new(RedisPresence::new(conn.clone())),
            members: Arc::new(RedisMembers::new(conn.clone(), member_ttl)),
            counters: Arc::new(RedisCounter::new(conn)),
        }
    }
}

/// Everything a command handler needs. Handlers are plain async fns over it.
pub struct Logic {
    pub(crate) cfg: LogicConfig,
    pub(crate) store: Store,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) batcher: Batcher,
    pub(crate) fanout: fanout::FanoutTx,
    pub(crate) members: Arc<dyn MemberCache>,
    pub(crate) counters: Arc<dyn WindowCounter>,
    /// Password hashing threads: a login storm cannot take every core.
    pub(crate) hasher: auth::Hasher,
    pub(crate) metrics: LogicMetrics,
}

impl Logic {
    /// Builds the logic state and starts its background tasks (group commit, fan-out).
    pub fn start(cfg: LogicConfig, store: Store, shared: Shared, bus: Arc<dyn Bus>) -> Arc<Logic> {
        let Shared {
            presence,
            members,
            counters,
        } = shared;
        let metrics = LogicMetrics::default();
        let fanout = fanout::start(
            presence.clone(),
            bus.clone(),
            cfg.subjects.clone(),
            metrics.clone(),
        );
        let batcher = Batcher::start(store.clone(), fanout.clone(), &cfg);
        let hasher = auth::Hasher::start(cfg.max_concurrent_hashes);
        Arc::new(Logic {
            cfg,
            store,
            presence,
            bus,
            batcher,
            fanout,
            members,
            counters,
            hasher,
            metrics,
        })
    }

    /// Adds this node's metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Refreshes the metrics that are read, not counted (the DB pool).
    pub fn refresh_metrics(&self) {
        let pool = self.store.pool();
        let idle = pool.num_idle() as i64;
        let m = &self.metrics.db_connections;
        m.get_or_create(&metrics::PoolLabels { state: "idle" })
            .set(idle);
        m.get_or_create(&metrics::PoolLabels { state: "in_use" })
            .set(i64::from(pool.size()) - idle);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Batches and messages this node has committed (group commit at work
    /// when the first is well below the second).
    pub fn committed(&self) -> (u64, u64) {
        self.batcher.committed()
    }
}
