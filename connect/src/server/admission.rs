//! Who gets served: each accepted socket takes a place under the node's
//! `max_connections` and a slot of its client address, or is told which
//! limit refused it (one RATE_LIMITED reply, request_id 0) and closed, so
//! the client can go elsewhere instead of hanging in the listen backlog.
//! The TLS handshake, when TLS is on, comes first either way.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use tern_public::addr::budget_key;
use tern_public::proto::client::Reply;
use tern_public::{Code, Frame, FrameType};

use super::{per_ip, Node};
use crate::close::{linger, Close};
use crate::config::ConnectConfig;
use crate::node::NodeState;

/// Refused connections being answered at once, at most: a refusal holds a
/// socket for a moment (handshake, one reply); past this many, a refused
/// socket is just closed.
const MAX_REFUSING: usize = 1024;

/// How often a full node says so in the log at most.
const LOG_FULL_EVERY: Duration = Duration::from_secs(10);

/// What an accepted socket holds of the node's limits while it is served:
/// its place under `max_connections` and its address's slot.
pub(super) type Admission = Result<(OwnedSemaphorePermit, per_ip::Slot), Refusal>;

/// Which connection limit turned a client away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
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

    /// How the refused connection is closed.
    pub(super) fn close(self) -> Close {
        match self {
            Refusal::NodeFull => Close::NodeFull,
            Refusal::PerAddress => Close::TooManyFromAddress,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::NodeFull => "this node is full; try another",
            Refusal::PerAddress => "too many connections from this address",
        }
    }
}

/// The accept loop's side of the limits.
pub(super) struct Gate {
    open: Arc<Semaphore>,
    /// Open connections per client address.
    per_ip: Arc<per_ip::PerIp>,
    refusing: Arc<Semaphore>,
    full_logged_at: Option<Instant>,
}

impl Gate {
    pub(super) fn new(cfg: &ConnectConfig) -> Gate {
        Gate {
            open: Arc::new(Semaphore::new(cfg.max_connections)),
            per_ip: Arc::default(),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            full_logged_at: None,
        }
    }

    /// Admits a client from `ip`, or says which limit refuses it (counted).
    pub(super) fn admit(&mut self, node: &NodeState, ip: IpAddr) -> Admission {
        let admission = match self.open.clone().try_acquire_owned() {
            Err(_) => {
                let now = Instant::now();
                if self
                    .full_logged_at
                    .is_none_or(|t| now.duration_since(t) > LOG_FULL_EVERY)
                {
                    self.full_logged_at = Some(now);
                    warn!(
                        limit = node.cfg.max_connections,
                        "node at its connection limit; refusing new clients"
                    );
                }
                Err(Refusal::NodeFull)
            }
            Ok(permit) => self
                .per_ip
                .take(budget_key(ip), node.cfg.max_connections_per_ip)
                .map(|slot| (permit, slot))
                .ok_or(Refusal::PerAddress),
        };
        if let Err(refusal) = admission {
            node.metrics.limited(refusal.label());
        }
        admission
    }

    /// A turn to answer a refused client, if not too many are being answered.
    pub(super) fn refusal_turn(&self) -> Option<OwnedSemaphorePermit> {
        self.refusing.clone().try_acquire_owned().ok()
    }
}

impl Node {
    /// Runs the TLS handshake when TLS is on (bounded by the handshake
    /// timeout, like a plain client's first frame), then serves the
    /// connection with what it holds of the node's limits, or tells it
    /// which limit refused it.
    ///
    /// Each stage is boxed: a task is one allocation as large as its
    /// largest state, and the handshake's state (or a TLS connection's,
    /// for a plain one) would otherwise stay with every connection for all
    /// its life.
    /// It owns its node, and is an async block rather than an async fn
    /// (which would keep its arguments twice): this is the task of every
    /// connection, and all of it stays for the connection's life.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold its arguments twice"
    )]
    pub(super) fn serve_socket(
        self,
        socket: TcpStream,
        peer: String,
        admission: Admission,
    ) -> impl Future<Output = ()> + Send {
        async move {
            let Some(tls) = self.state.cfg.tls.clone() else {
                return Box::pin(self.settle(socket, peer, admission)).await;
            };
            // In a block of its own, so neither the handshake nor the stream
            // it yields (moved into the box) keeps room in this task.
            let served = {
                let handshake = Box::pin(tokio::time::timeout(
                    self.state.cfg.handshake_timeout,
                    tls.acceptor().accept(socket),
                ));
                match handshake.await {
                    Ok(Ok(stream)) => Box::pin(self.settle(stream, peer, admission)),
                    Ok(Err(e)) => return self.tls_failed(&peer, &e.to_string()),
                    Err(_) => return self.tls_failed(&peer, "timed out"),
                }
            };
            served.await
        }
    }

    /// An async block rather than an async fn, which would keep a second
    /// copy of its arguments for the connection's whole life.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold its arguments twice"
    )]
    pub(super) fn settle<S>(
        &self,
        stream: S,
        peer: String,
        admission: Admission,
    ) -> impl Future<Output = ()> + Send + '_
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        async move {
            match admission {
                Ok(held) => {
                    self.serve_connection(stream, peer).await;
                    drop(held);
                }
                Err(refusal) => self.refuse(stream, refusal).await,
            }
        }
    }

    /// Tells a client over a connection limit why, then closes.
    async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, refusal: Refusal) {
        let close = refusal.close();
        self.count_close(close);
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
        let written = tokio::time::timeout(self.state.cfg.write_timeout, write).await;
        if matches!(written, Ok(Ok(()))) && close.client_told_why() {
            linger(&mut stream).await;
        }
    }

    fn tls_failed(&self, peer: &str, why: &str) {
        debug!(peer, error = why, "TLS handshake failed");
        self.count_close(Close::TlsHandshake);
    }

    /// Counts a connection closed before it was served.
    pub(super) fn count_close(&self, close: Close) {
        self.state.metrics.closed(close);
    }
}
