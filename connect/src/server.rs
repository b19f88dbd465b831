//! The connect node: accept loop with a connection limit, node lifecycle
//! announcements, and drain on shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use tern_public::bus::{Bus, Subjects};
use tern_public::proto::bus::{
    logic_event, ConnReply, ConnRequest, DeviceOffline, LogicEvent, NodeEvent, NodeState,
};
use tern_public::proto::client::KickReason;
use tern_public::Code;

use crate::config::ConnectConfig;
use crate::metrics::ConnectMetrics;
use crate::rooms::Rooms;
use crate::{connection, deliver, registry::Registry};

/// State shared by the node's tasks.
pub(crate) struct Shared {
    pub cfg: ConnectConfig,
    pub bus: Arc<dyn Bus>,
    pub registry: Registry,
    pub rooms: Rooms,
    pub metrics: ConnectMetrics,
    next_conn_id: AtomicU64,
    /// Set when the drain starts; a connection registering after the drain
    /// took its snapshot kicks itself.
    draining: AtomicBool,
    /// Open connections per client address.
    per_ip: Arc<per_ip::PerIp>,
    /// The clock of every connection's rate limiters: one per node, since
    /// making one runs CPUID (a hypervisor trap in a VM).
    pub clock: governor::clock::DefaultClock,
}

impl Shared {
    fn subjects(&self) -> &Subjects {
        &self.cfg.subjects
    }

    /// Forwards one client request to logic; bus failures become UNAVAILABLE.
    pub(crate) async fn call_logic(&self, req: ConnRequest) -> ConnReply {
        let payload = Bytes::from(req.encode_to_vec());
        let subject = self.subjects().logic_rpc();
        let started = std::time::Instant::now();
        let reply = self
            .bus
            .request(&subject, payload, self.cfg.request_timeout)
            .await;
        self.metrics
            .bus_request_seconds
            .observe(started.elapsed().as_secs_f64());
        match reply {
            Ok(bytes) => ConnReply::decode(bytes).unwrap_or_else(|e| {
                error!(error = %e, "undecodable reply from logic");
                ConnReply {
                    code: Code::Internal.as_i32(),
                    message: "internal error".into(),
                    ..Default::default()
                }
            }),
            Err(e) => {
                warn!(error = %e, "logic unavailable");
                ConnReply {
                    code: Code::Unavailable.as_i32(),
                    message: "service unavailable, retry".into(),
                    ..Default::default()
                }
            }
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) async fn device_offline(&self, conn_id: u64, user_id: u64, device_id: u64) {
        let event = logic_event::Event::DeviceOffline(DeviceOffline {
            node_id: self.cfg.node_id.clone(),
            conn_id,
            user_id,
            device_id,
        });
        self.publish_event(event).await;
    }

    async fn announce(&self, state: NodeState) {
        let event = logic_event::Event::Node(NodeEvent {
            node_id: self.cfg.node_id.clone(),
            state: state as i32,
            connections: self.registry.connection_count() as u32,
            alive_interval_ms: self.cfg.alive_interval.as_millis().min(u32::MAX as u128) as u32,
        });
        self.publish_event(event).await;
    }

    pub(crate) async fn publish_event(&self, event: logic_event::Event) {
        let msg = LogicEvent { event: Some(event) };
        let subject = self.subjects().logic_events();
        if let Err(e) = self.bus.publish(&subject, msg.encode_to_vec().into()).await {
            warn!(error = %e, "could not publish event to logic");
        }
    }
}

/// A connect node. Build it with [`Node::new`], then [`Node::run`] it on a
/// bound listener until the shutdown future resolves.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

impl Node {
    pub fn new(cfg: ConnectConfig, bus: Arc<dyn Bus>) -> Node {
        Node {
            shared: Arc::new(Shared {
                cfg,
                bus,
                registry: Registry::default(),
                rooms: Rooms::default(),
                metrics: ConnectMetrics::default(),
                // A random start per process: a node restarted under the same
                // id never reuses a conn_id that stale presence or kicks still name.
                next_conn_id: AtomicU64::new((u64::from(rand::random::<u32>()) << 32) | 1),
                draining: AtomicBool::new(false),
                per_ip: Arc::default(),
                clock: governor::clock::DefaultClock::default(),
            }),
        }
    }

    /// Adds this node's metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
    }

    /// Open connections right now.
    pub fn connection_count(&self) -> usize {
        self.shared.registry.connection_count()
    }

    #[cfg(test)]
    pub(crate) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Room messages this node has received from the bus, all rooms.
    pub fn room_messages_received(&self) -> u64 {
        self.shared
            .rooms
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Rooms with local members and how many each has.
    pub fn room_counts(&self) -> Vec<(String, usize)> {
        self.shared.rooms.counts()
    }

    /// Signed-in devices right now.
    pub fn device_count(&self) -> usize {
        self.shared.registry.device_count()
    }

    /// Serves clients from `listener` until `shutdown` resolves, then drains:
    /// stops accepting, sends KICKED(draining) to every client, waits for
    /// connections to flush and close (at most the drain grace), and announces
    /// the node down.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let node_subject = shared.subjects().node(&shared.cfg.node_id);
        let deliveries = shared
            .bus
            .subscribe(&node_subject, None)
            .await
            .map_err(|e| std::io::Error::other(format!("subscribe {node_subject}: {e}")))?;
        let broadcast_subject = shared.subjects().broadcast();
        let broadcasts = shared
            .bus
            .subscribe(&broadcast_subject, None)
            .await
            .map_err(|e| std::io::Error::other(format!("subscribe {broadcast_subject}: {e}")))?;
        let tracker = TaskTracker::new();
        let delivery_task = tokio::spawn(deliver::run(shared.clone(), deliveries));
        let broadcast_task = tokio::spawn(deliver::broadcasts(shared.clone(), broadcasts));
        let alive_task = tokio::spawn(announce_alive(shared.clone()));
        shared.announce(NodeState::Up).await;
        info!(node = %shared.cfg.node_id, addr = ?listener.local_addr().ok(), "connect node serving");

        let mut gate = Gate::new(&shared.cfg);
        tokio::pin!(shutdown);
        loop {
            let (socket, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        error!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = socket.set_nodelay(true);
            let node = self.clone();
            match gate.admit(&shared, peer.ip()) {
                Ok(held) => {
                    tracker.spawn(async move {
                        node.serve_socket(socket, peer.to_string(), Ok(held)).await;
                    });
                }
                Err(refusal) => match gate.refusal_turn() {
                    Some(turn) => {
                        tracker.spawn(async move {
                            node.serve_socket(socket, peer.to_string(), Err(refusal))
                                .await;
                            drop(turn);
                        });
                    }
                    None => {
                        node.count_close(refusal.close_reason());
                        drop(socket);
                    }
                },
            }
        }
        drop(listener);
        self.drain(tracker).await;
        alive_task.abort();
        delivery_task.abort();
        broadcast_task.abort();
        Ok(())
    }

    /// Serves one already-accepted connection (any byte stream) to its end.
    pub async fn serve_connection<S>(&self, stream: S, peer: String)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let conn_id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        connection::serve(self.shared.clone(), stream, conn_id, peer).await;
    }

    async fn drain(&self, tracker: TaskTracker) {
        let shared = &self.shared;
        shared.draining.store(true, Ordering::SeqCst);
        shared.announce(NodeState::Draining).await;
        let conns = shared.registry.all();
        info!(connections = conns.len(), "draining");
        for c in &conns {
            c.kick(KickReason::Draining);
        }
        tracker.close();
        if tokio::time::timeout(shared.cfg.drain_grace, tracker.wait())
            .await
            .is_err()
        {
            warn!(
                left = shared.registry.connection_count(),
                "drain grace elapsed; dropping remaining connections"
            );
        }
        shared.announce(NodeState::Down).await;
        debug!("node down");
    }
}

mod admission;
mod announce;
mod per_ip;
#[cfg(test)]
mod tests;

use admission::Gate;
use announce::announce_alive;
