//! tern-logic is the stateless core of tern: accounts and devices, the
//! message store with its per-user lists (write fan-out, one contiguous seq
//! per user), group commit, and the pushes that follow each commit. It
//! serves client commands that connect nodes forward over the bus; it never
//! holds a client connection. Any number of logic nodes can run side by side.

mod auth;
mod cache;
mod config;
mod error;
mod events;
mod fanout;
mod friends;
mod groups;
mod messages;
mod paging;
pub mod presence;
mod rpc;
pub mod store;
mod system;
mod users;

pub use config::{LogicConfig, SendPolicy};
pub use error::LogicError;
pub use rpc::LogicServer;

use std::sync::Arc;

use tern_public::bus::Bus;

use crate::messages::Batcher;
use crate::presence::Presence;
use crate::store::Store;

/// Everything a command handler needs. Handlers are plain async fns over it.
pub struct Logic {
    pub(crate) cfg: LogicConfig,
    pub(crate) store: Store,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) batcher: Batcher,
    pub(crate) fanout: fanout::FanoutTx,
    pub(crate) members: cache::MemberCache,
    /// Password hashing threads: a login storm cannot take every core.
    pub(crate) hasher: auth::Hasher,
}

impl Logic {
    /// Builds the logic state and starts its background tasks (group commit, fan-out).
    pub fn start(
        cfg: LogicConfig,
        store: Store,
        presence: Arc<dyn Presence>,
        bus: Arc<dyn Bus>,
    ) -> Arc<Logic> {
        let fanout = fanout::start(presence.clone(), bus.clone(), cfg.subjects.clone());
        let batcher = Batcher::start(store.clone(), fanout.clone(), &cfg);
        let hasher = auth::Hasher::start(cfg.max_concurrent_hashes);
        Arc::new(Logic {
            cfg,
            store,
            presence,
            bus,
            batcher,
            fanout,
            members: cache::MemberCache::default(),
            hasher,
        })
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
