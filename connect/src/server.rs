//! The connect node: accept loop with a connection limit, node lifecycle
//! announcements, and drain on shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use tern_public::bus::Bus;
use tern_public::proto::bus::NodeState as Lifecycle;
use tern_public::proto::client::KickReason;

use crate::config::ConnectConfig;
use crate::node::NodeState;
use crate::{connection, deliver};

/// A connect node. Build it with [`Node::new`], then [`Node::run`] it on a
/// bound listener until the shutdown future resolves.
#[derive(Clone)]
pub struct Node {
    state: Arc<NodeState>,
}

impl Node {
    /// A node with settings `cfg`, meeting logic on `bus`; it serves
    /// nothing until [`Node::run`].
    pub fn new(cfg: ConnectConfig, bus: Arc<dyn Bus>) -> Node {
        Node {
            state: Arc::new(NodeState::new(cfg, bus)),
        }
    }

    /// Adds this node's metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.state.metrics.register(registry);
    }

    /// Room messages this node has received from the bus, all rooms.
    pub fn room_messages_received(&self) -> u64 {
        self.state.rooms.received()
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> &NodeState {
        &self.state
    }

    /// Serves clients from `listener` until `shutdown` resolves, then drains:
    /// stops accepting, sends KICKED(draining) to every client, waits for
    /// connections to flush and close (at most the drain grace), and announces
    /// the node down. Returns once every task of the node has ended.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let node_subject = state.cfg.subjects.node(&state.cfg.node_id);
        let deliveries = state
            .bus
            .subscribe(&node_subject, None)
            .await
            .map_err(|e| std::io::Error::other(format!("subscribe {node_subject}: {e}")))?;
        let broadcast_subject = state.cfg.subjects.broadcast();
        let broadcasts = state
            .bus
            .subscribe(&broadcast_subject, None)
            .await
            .map_err(|e| std::io::Error::other(format!("subscribe {broadcast_subject}: {e}")))?;
        // Connections are tracked apart from the node's background tasks:
        // the drain waits for them (bounded by the grace) before stopping
        // the tasks that still serve them.
        let connections = TaskTracker::new();
        let tasks = &state.tasks;
        tasks.spawn(deliver::node_messages(state.clone(), deliveries));
        tasks.spawn(deliver::broadcasts(state.clone(), broadcasts));
        tasks.spawn(announce_alive(state.clone()));
        self.announce(Lifecycle::Up).await;
        info!(node = %state.cfg.node_id, addr = ?listener.local_addr().ok(), "connect node serving");

        let mut gate = Gate::new(&state.cfg);
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
            match gate.admit(&state, peer.ip()) {
                Ok(held) => {
                    connections.spawn(node.serve_socket(socket, peer.to_string(), Ok(held)));
                }
                Err(refusal) => match gate.refusal_turn() {
                    Some(turn) => {
                        connections.spawn(async move {
                            node.serve_socket(socket, peer.to_string(), Err(refusal))
                                .await;
                            drop(turn);
                        });
                    }
                    None => {
                        node.count_close(refusal.close());
                        drop(socket);
                    }
                },
            }
        }
        drop(listener);
        self.drain(connections).await;
        state.stop.cancel();
        state.tasks.close();
        state.tasks.wait().await;
        Ok(())
    }

    /// Serves one already-accepted connection (any byte stream) to its end.
    pub(crate) fn serve_connection<S>(
        &self,
        stream: S,
        peer: String,
    ) -> impl Future<Output = ()> + Send + use<S>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let conn_id = self.state.next_conn_id();
        connection::serve(self.state.clone(), stream, conn_id, peer)
    }

    /// Tells logic this node's lifecycle state.
    async fn announce(&self, lifecycle: Lifecycle) {
        let connections = self.state.registry.connection_count();
        self.state.logic.announce(lifecycle, connections).await;
    }

    async fn drain(&self, connections: TaskTracker) {
        let state = &self.state;
        state.start_draining();
        self.announce(Lifecycle::Draining).await;
        let conns = state.registry.all();
        info!(connections = conns.len(), "draining");
        for c in &conns {
            c.kick(KickReason::Draining);
        }
        connections.close();
        if tokio::time::timeout(state.cfg.drain_grace, connections.wait())
            .await
            .is_err()
        {
            warn!(
                left = state.registry.connection_count(),
                "drain grace elapsed; dropping remaining connections"
            );
        }
        self.announce(Lifecycle::Down).await;
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
