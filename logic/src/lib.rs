//! tern-logic is the stateless core of tern: accounts and devices, the
//! message store with its per-user lists (write fan-out, one contiguous seq
//! per user), group commit, and the pushes that follow each commit. It
//! serves client commands that connect nodes forward over the bus; it never
//! holds a client connection. Any number of logic nodes can run side by side.

mod actor;
mod admin;
pub mod api;
mod auth;
pub(crate) mod cache;
mod config;
mod conversations;
mod dispatch;
pub mod domain;
mod error;
mod events;
mod fanout;
mod friends;
mod groups;
pub(crate) mod limits;
pub(crate) mod liveness;
mod messages;
pub(crate) mod metrics;
mod paging;
pub mod peers;
pub(crate) mod presence;
pub mod push;
mod redis_conn;
mod retry;
pub mod room_counts;
mod rooms;
mod rpc;
pub mod store;
mod system;
mod tasks;
mod users;
pub mod webhooks;
mod wire;

pub use cache::RedisGeneration;
pub use config::{LogicConfig, SendPolicy};
pub use error::LogicError;
pub use redis_conn::RedisConn;
pub use rpc::LogicServer;
pub use webhooks::{BeforeSendConfig, FailPolicy};

use std::sync::Arc;
use std::time::Duration;

use tern_public::bus::Bus;

use crate::cache::{MemberCache, MemoryMembers, RedisMembers};
use crate::limits::{MemoryCounter, RedisCounter, WindowCounter};
use crate::liveness::{MemoryLiveness, NodeLiveness, RedisLiveness};
use crate::messages::Batcher;
use crate::metrics::LogicMetrics;
use crate::presence::{MemoryPresence, Presence, RedisPresence};
use crate::room_counts::{MemoryRoomCounts, RedisRoomCounts, RoomCounts};
use crate::store::Store;
use crate::tasks::Stage;

/// The state logic keeps beside the store: short-lived, rebuilt from what
/// connect nodes announce, and shared by every logic node of a cluster.
/// In memory for one logic node, in Redis when several share it.
#[derive(Clone)]
pub struct LiveState {
    /// Which connection serves each online device.
    pub(crate) presence: Arc<dyn Presence>,
    /// Which connect nodes announced themselves lately.
    pub(crate) liveness: Arc<dyn NodeLiveness>,
    /// Room member counts across connect nodes.
    pub(crate) room_counts: Arc<dyn RoomCounts>,
    /// Group member lists in front of the store.
    pub(crate) members: Arc<dyn MemberCache>,
    /// Rate-limit counters that hold across logic nodes.
    pub(crate) counters: Arc<dyn WindowCounter>,
}

impl LiveState {
    /// In this process only: right for exactly one logic node.
    pub fn memory() -> LiveState {
        LiveState {
            presence: Arc::new(MemoryPresence::new()),
            liveness: Arc::new(MemoryLiveness::new()),
            room_counts: Arc::new(MemoryRoomCounts::new()),
            members: Arc::new(MemoryMembers::default()),
            counters: Arc::new(MemoryCounter::default()),
        }
    }

    /// In Redis, shared by every logic node of a cluster.
    pub fn redis(conn: RedisConn, member_ttl: Duration) -> LiveState {
        LiveState {
            presence: Arc::new(RedisPresence::new(conn.clone())),
            liveness: Arc::new(RedisLiveness::new(conn.clone())),
            room_counts: Arc::new(RedisRoomCounts::new(conn.clone())),
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
    pub(crate) liveness: Arc<dyn NodeLiveness>,
    pub(crate) room_counts: Arc<dyn RoomCounts>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) batcher: Batcher,
    pub(crate) fanout: fanout::FanoutTx,
    pub(crate) members: Arc<dyn MemberCache>,
    pub(crate) counters: Arc<dyn WindowCounter>,
    /// Password hashing threads: a login storm cannot take every core.
    pub(crate) hasher: auth::Hasher,
    pub(crate) metrics: LogicMetrics,
    /// The moderation hook SEND asks before storing, when configured.
    pub(crate) before_send: Option<webhooks::BeforeSend>,
    /// Group commit; stopped first, so what it commits still reaches fan-out.
    committing: Stage,
    /// Fan-out; stopped once nothing commits any more.
    pushing: Stage,
    /// Offline push planning and sending; stopped last (what it leaves in
    /// the outbox, any node sends later).
    notifying: Stage,
}

impl Logic {
    /// Builds the logic state and starts its background tasks (group
    /// commit, fan-out); [`Logic::shutdown`] stops them.
    pub fn start(cfg: LogicConfig, store: Store, live: LiveState, bus: Arc<dyn Bus>) -> Arc<Logic> {
        let LiveState {
            presence,
            liveness,
            room_counts,
            members,
            counters,
        } = live;
        let metrics = LogicMetrics::default();
        let (committing, pushing) = (Stage::default(), Stage::default());
        let providers = match push::Providers::from_config(&cfg.push) {
            Ok(p) => p,
            Err(e) => {
                // The command line checks the settings before it starts.
                tracing::error!(error = %e, "push providers unusable; push is off");
                push::Providers::default()
            }
        };
        let wake = (!providers.is_empty()).then(|| Arc::new(push::Wake::default()));
        let fanout = fanout::start(
            presence.clone(),
            bus.clone(),
            cfg.subjects.clone(),
            metrics.clone(),
            wake.clone(),
            &pushing,
        );
        let batcher = Batcher::start(store.clone(), fanout.clone(), &cfg, &committing);
        let hasher = auth::Hasher::start(cfg.max_concurrent_hashes);
        let before_send = cfg.before_send.clone().map(webhooks::BeforeSend::start);
        let logic = Arc::new(Logic {
            cfg,
            store,
            presence,
            liveness,
            room_counts,
            bus,
            batcher,
            fanout,
            members,
            counters,
            hasher,
            metrics,
            before_send,
            committing,
            pushing,
            notifying: Stage::default(),
        });
        if let Some(wake) = wake {
            push::start(&logic, wake, providers, &logic.notifying);
        }
        if let Some(cfg) = logic.cfg.after_send.clone() {
            webhooks::after_send::start(&logic, cfg, &logic.notifying);
        }
        logic
    }

    /// Stops the background tasks and waits for them: group commit commits
    /// and answers every send it holds (later sends fail), then fan-out
    /// pushes what it has queued, for a bounded time. Call it once nothing
    /// serves requests any more (bus and HTTP stopped).
    pub async fn shutdown(&self) {
        self.committing.stop().await;
        self.pushing.stop().await;
        self.notifying.stop().await;
    }

    /// Adds this node's metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
        self.store
            .health()
            .register(registry.sub_registry_with_prefix("tern"));
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
