//! The state of one connect node that its connections and background tasks
//! share: settings, the link to logic, the registry of connections, the
//! rooms, the metrics, and the node's one stop signal with the tracker of
//! its background tasks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tern_public::bus::Bus;

use crate::config::ConnectConfig;
use crate::logic_link::LogicLink;
use crate::metrics::ConnectMetrics;
use crate::registry::Registry;
use crate::rooms::Rooms;

/// State shared by a connect node's connections and tasks.
pub(crate) struct NodeState {
    pub cfg: ConnectConfig,
    pub logic: LogicLink,
    pub bus: Arc<dyn Bus>,
    pub registry: Registry,
    pub rooms: Rooms,
    pub metrics: ConnectMetrics,
    /// Background tasks (room subscriptions, re-announces, the node's
    /// consumers): shutdown waits for every one.
    pub tasks: TaskTracker,
    /// Cancelled once the drain is over: every background task ends.
    pub stop: CancellationToken,
    next_conn_id: AtomicU64,
    /// Set when the drain starts; a connection registering after the drain
    /// took its snapshot kicks itself.
    draining: AtomicBool,
}

impl NodeState {
    pub(crate) fn new(cfg: ConnectConfig, bus: Arc<dyn Bus>) -> NodeState {
        let metrics = ConnectMetrics::default();
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        NodeState {
            logic: LogicLink::new(&cfg, bus.clone(), metrics.bus_request_seconds.clone()),
            rooms: Rooms::new(
                bus.clone(),
                cfg.subjects.clone(),
                cfg.node_id.clone(),
                cfg.max_rooms_per_conn,
                tasks.clone(),
                stop.clone(),
            ),
            cfg,
            bus,
            registry: Registry::default(),
            metrics,
            tasks,
            stop,
            // A random start per process: a node restarted under the same
            // id never reuses a conn_id that stale presence or kicks still name.
            next_conn_id: AtomicU64::new((u64::from(rand::random::<u32>()) << 32) | 1),
            draining: AtomicBool::new(false),
        }
    }

    /// A connection id never used before by this node.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Marks the drain begun: connections registering from now on kick
    /// themselves.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}
