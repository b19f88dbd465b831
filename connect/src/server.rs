//! The connect node: accept loop with a connection limit, node lifecycle
//! announcements, and drain on shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use tern_public::bus::{Bus, Subjects};
use tern_public::proto::bus::{
    logic_event, ConnReply, ConnRequest, DeviceOffline, LogicEvent, NodeEvent, NodeState,
    RoomCount, RoomCounts,
};
use tern_public::proto::client::{KickReason, Reply};
use tern_public::{Code, Frame, FrameType};

use crate::config::ConnectConfig;
use crate::metrics::{CloseLabels, ConnectMetrics};
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

        let limit = Arc::new(Semaphore::new(shared.cfg.max_connections));
        // Refusals hold a socket for a moment (TLS handshake, one reply);
        // past this many at once, a refused socket is just closed.
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let mut full_logged_at: Option<std::time::Instant> = None;
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
            // A full node answers at once, so the client tries another
            // node instead of hanging in the listen backlog.
            let admission = match limit.clone().try_acquire_owned() {
                Err(_) => {
                    let now = std::time::Instant::now();
                    if full_logged_at.is_none_or(|t| now.duration_since(t) > LOG_FULL_EVERY) {
                        full_logged_at = Some(now);
                        warn!(
                            limit = shared.cfg.max_connections,
                            "node at its connection limit; refusing new clients"
                        );
                    }
                    Err(Refusal::NodeFull)
                }
                Ok(permit) => shared
                    .per_ip
                    .take(peer.ip(), shared.cfg.max_connections_per_ip)
                    .map(|slot| (permit, slot))
                    .ok_or(Refusal::PerAddress),
            };
            let refusal = match admission {
                Ok(held) => {
                    let node = self.clone();
                    tracker.spawn(async move {
                        node.serve_socket(socket, peer.to_string(), Ok(held)).await;
                    });
                    continue;
                }
                Err(refusal) => refusal,
            };
            shared.metrics.limited(refusal.label());
            match refusing.clone().try_acquire_owned() {
                Ok(turn) => {
                    let node = self.clone();
                    tracker.spawn(async move {
                        node.serve_socket(socket, peer.to_string(), Err(refusal))
                            .await;
                        drop(turn);
                    });
                }
                Err(_) => {
                    let labels = CloseLabels {
                        reason: refusal.close_reason(),
                    };
                    shared.metrics.closed.get_or_create(&labels).inc();
                    drop(socket);
                }
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

    /// Runs the TLS handshake when TLS is on (bounded by the handshake
    /// timeout, like a plain client's first frame), then serves the
    /// connection with what it holds of the node's limits, or tells it
    /// which limit refused it.
    async fn serve_socket(&self, socket: TcpStream, peer: String, admission: Admission) {
        let Some(tls) = self.shared.cfg.tls.clone() else {
            return self.admit(socket, peer, admission).await;
        };
        let handshake = tls.acceptor().accept(socket);
        match tokio::time::timeout(self.shared.cfg.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => self.admit(stream, peer, admission).await,
            Ok(Err(e)) => self.tls_failed(&peer, &e.to_string()),
            Err(_) => self.tls_failed(&peer, "timed out"),
        }
    }

    async fn admit<S>(&self, stream: S, peer: String, admission: Admission)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        match admission {
            Ok(held) => {
                self.serve_connection(stream, peer).await;
                drop(held);
            }
            Err(refusal) => self.refuse(stream, refusal).await,
        }
    }

    /// Tells a client over a connection limit why, then closes.
    async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, refusal: Refusal) {
        let labels = CloseLabels {
            reason: refusal.close_reason(),
        };
        self.shared.metrics.closed.get_or_create(&labels).inc();
        let reply = Reply {
            request_id: 0,
            code: Code::RateLimited.as_i32(),
            message: refusal.message().into(),
            payload: Bytes::new(),
            retry_after_ms: 0,
        };
        let frame = Frame::from_message(FrameType::Reply.as_u16(), &reply).to_bytes();
        let write = async {
            stream.write_all(&frame).await?;
            stream.shutdown().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(self.shared.cfg.write_timeout, write).await {
            connection::linger(&mut stream).await;
        }
    }

    fn tls_failed(&self, peer: &str, why: &str) {
        debug!(peer, error = why, "TLS handshake failed");
        let labels = CloseLabels {
            reason: "tls_handshake",
        };
        self.shared.metrics.closed.get_or_create(&labels).inc();
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

/// Refused connections being answered at once, at most.
const MAX_REFUSING: usize = 1024;

/// How often a full node says so in the log at most.
const LOG_FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What an accepted socket holds of the node's limits while it is served:
/// its place under `max_connections` and its address's slot.
type Admission = Result<(OwnedSemaphorePermit, per_ip::Slot), Refusal>;

/// Which connection limit turned a client away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NodeFull,
    PerAddress,
}

impl Refusal {
    /// The `limit` label of `tern_rate_limited_total`.
    fn label(self) -> &'static str {
        match self {
            Refusal::NodeFull => "connections",
            Refusal::PerAddress => "connections_per_ip",
        }
    }

    /// The `reason` label of `tern_connections_closed_total`.
    fn close_reason(self) -> &'static str {
        match self {
            Refusal::NodeFull => "node full",
            Refusal::PerAddress => "too many from address",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::NodeFull => "this node is full; try another",
            Refusal::PerAddress => "too many connections from this address",
        }
    }
}

async fn announce_alive(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.alive_interval);
    tick.tick().await;
    let mut reported = HashSet::new();
    loop {
        tick.tick().await;
        shared.announce(NodeState::Alive).await;
        reported = report_rooms(&shared, reported).await;
    }
}

/// Rooms per RoomCounts event: well under the bus message limit.
const ROOM_COUNTS_CHUNK: usize = 2000;

/// Reports the local member count of every room, and 0 for rooms that
/// emptied since the last report; returns the rooms reported non-zero.
async fn report_rooms(shared: &Shared, before: HashSet<String>) -> HashSet<String> {
    let counts = shared.rooms.counts();
    let now: HashSet<String> = counts.iter().map(|(r, _)| r.clone()).collect();
    let mut rooms: Vec<RoomCount> = counts
        .into_iter()
        .map(|(room_id, n)| RoomCount {
            room_id,
            online: n.min(u32::MAX as usize) as u32,
        })
        .collect();
    rooms.extend(before.difference(&now).map(|r| RoomCount {
        room_id: r.clone(),
        online: 0,
    }));
    let ttl_ms = (shared.cfg.alive_interval * 3)
        .as_millis()
        .min(u32::MAX as u128) as u32;
    for chunk in rooms.chunks(ROOM_COUNTS_CHUNK) {
        shared
            .publish_event(logic_event::Event::RoomCounts(RoomCounts {
                node_id: shared.cfg.node_id.clone(),
                rooms: chunk.to_vec(),
                ttl_ms,
            }))
            .await;
    }
    now
}

mod per_ip;
#[cfg(test)]
mod tests;
