//! One client connection: read frames, answer heartbeats, forward commands to
//! logic, write replies and pushes, enforce deadlines.
//!
//! Everything runs in one task per connection: a `select!` over the socket,
//! the outbound queue, finished requests, the close signal and one deadline.
//! Requests run as child tasks in a per-connection `JoinSet`; SEND and the
//! sign-in commands go through a serial lane so the sends of one connection
//! are stored in the order they were sent. Reading pauses while too many
//! requests are in flight, or while the output is over its byte bound
//! (`backpressure`).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use tern_public::proto::bus::ConnReply;
use tern_public::proto::client::{KickReason, Request};
use tern_public::{Code, FrameError, FrameType};

use crate::close::{linger, Close};
use crate::node::NodeState;
use crate::registry::ConnHandle;

/// Output gathered before a write goes out: more frames wait for the next one.
const WRITE_CHUNK: usize = 64 * 1024;
/// Frames gathered into one write syscall at most.
const MAX_FRAMES_PER_WRITE: usize = 64;

/// Who the connection belongs to once signed in.
#[derive(Debug, Clone, Copy)]
struct Identity {
    user_id: u64,
    device_id: u64,
}

/// A forwarded request that logic answered (or failed to).
struct Done {
    request_id: u64,
    serial: bool,
    /// A LOGOUT or ACCOUNT_DELETE (see `Connection::ending`).
    ending: bool,
    /// Output bytes the request held until its reply (`backpressure`).
    held: usize,
    reply: ConnReply,
}

/// Serves one connection until it closes. Generic over the stream so tests
/// can drive it through an in-memory pipe under paused time. Not an async
/// fn: a layer of its own would keep a second copy of its arguments in
/// every connection's task.
pub(crate) fn serve<S>(
    node: Arc<NodeState>,
    stream: S,
    conn_id: u64,
    peer: String,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let span = tracing::info_span!(
        "conn",
        node = %node.cfg.node_id,
        conn_id,
        peer = %peer,
        user_id = tracing::field::Empty,
        device_id = tracing::field::Empty,
    );
    node.metrics.accepted.inc();
    node.metrics.connections.inc();
    Connection::new(node, conn_id, peer)
        .run(stream)
        .instrument(span)
}

struct Connection {
    node: Arc<NodeState>,
    conn_id: u64,
    peer: String,
    identity: Option<Identity>,
    /// Also where this connection takes the frames others queue for it.
    handle: ConnHandle,
    /// Made at the first request and dropped once none is in flight.
    inflight: Option<JoinSet<Done>>,
    serial: VecDeque<(FrameType, Request)>,
    serial_busy: bool,
    /// A REGISTER/LOGIN/SIGN_IN is with logic: if the connection closes
    /// meanwhile, logic may still mark the device online here.
    auth_inflight: bool,
    /// A ROOM_JOIN was taken: the close must take the connection out of
    /// the rooms. Most connections never join one, and never touch them.
    asked_to_join: bool,
    /// A LOGOUT or ACCOUNT_DELETE is with logic: nothing more is read
    /// until it is answered, so no request behind it runs as the device it
    /// signs out (on success the connection closes after the reply).
    ending: bool,
    accepted_at: Instant,
    /// What goes out with the next write; no allocation while empty.
    out: BytesMut,
    /// Made at the first ROOM_SEND: most connections never send to a room.
    room_sends: Option<Box<flood::Limiter>>,
    /// Frames and bytes this connection may still send.
    budget: flood::Budget,
    /// Output bytes promised to the requests read and not answered yet.
    reserved: usize,
    /// Reading is paused because the output is over its byte bound.
    output_paused: bool,
}

enum Step {
    Continue,
    Close(Close),
}

impl Connection {
    fn new(node: Arc<NodeState>, conn_id: u64, peer: String) -> Connection {
        let handle = ConnHandle::bounded(
            conn_id,
            node.cfg.write_queue_frames,
            node.cfg.write_queue_bytes,
        );
        let budget = flood::Budget::new(&node.cfg);
        Connection {
            node,
            conn_id,
            peer,
            identity: None,
            handle,
            inflight: None,
            serial: VecDeque::new(),
            serial_busy: false,
            ending: false,
            auth_inflight: false,
            asked_to_join: false,
            accepted_at: Instant::now(),
            out: BytesMut::new(),
            room_sends: None,
            budget,
            reserved: 0,
            output_paused: false,
        }
    }

    /// Not an async fn but an async block: an async fn keeps its
    /// arguments apart from the locals they move into, and the connection
    /// would be in every task twice.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold its arguments twice"
    )]
    fn run<S>(mut self, stream: S) -> impl Future<Output = ()> + Send
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        async move {
            let (rd, mut wr) = tokio::io::split(stream);
            let mut frames = reader::FrameReader::new(rd, self.node.cfg.max_frame_len);
            self.node.registry.add(self.handle.clone());
            if self.node.is_draining() {
                // Accepted just as the drain began, after its snapshot.
                self.handle.kick(KickReason::Draining);
            }
            debug!("connection opened");

            let deadline = tokio::time::sleep_until(self.next_deadline());
            tokio::pin!(deadline);
            let handle = self.handle.clone();

            let why = loop {
                let can_read = self.output_has_room()
                    && !self.ending
                    && self.in_flight() + self.serial.len() < self.node.cfg.max_inflight;
                let was_bound = self.identity.is_some();
                let step = tokio::select! {
                    close = handle.signal().wait() => Step::Close(close),
                    frame = handle.next_frame() => {
                        self.take_queued(&frame);
                        Step::Continue
                    }
                    Some(done) = next_done(&mut self.inflight) => match done {
                        Ok(done) => {
                            if self.in_flight() == 0 {
                                self.inflight = None;
                            }
                            self.on_done(done)
                        }
                        // A request task can only end early by panicking; answer nothing more.
                        Err(e) => { warn!(error = %e, "request task failed"); Step::Close(Close::InternalError) }
                    },
                    frame = frames.next(), if can_read => match frame {
                        Some(Ok(frame)) => {
                            deadline.as_mut().reset(self.next_deadline());
                            self.on_frame(frame)
                        }
                        Some(Err(FrameError::TooLarge { len, max })) => {
                            info!(len, max, "frame too large; closing");
                            self.reply(0, Code::TooLarge, &format!("frame of {len} bytes exceeds {max}"), Bytes::new());
                            Step::Close(Close::FrameTooLarge)
                        }
                        Some(Err(FrameError::Io(e))) => { debug!(error = %e, "read failed"); Step::Close(Close::ReadError) }
                        None => Step::Close(Close::ClientClosed),
                    },
                    () = &mut deadline => Step::Close(if self.identity.is_some() { Close::HeartbeatTimeout } else { Close::HandshakeTimeout }),
                };
                if !was_bound && self.identity.is_some() {
                    // Signed in: from now on the heartbeat deadline applies.
                    deadline.as_mut().reset(self.next_deadline());
                }
                if let Err(e) = self.flush(&mut wr).await {
                    break e;
                }
                if let Step::Close(close) = step {
                    break close;
                }
            };

            // Boxed: the close runs once, and its futures (the last flush,
            // the linger's buffer, the calls to logic) would otherwise take
            // room in every connection's task for all its life.
            Box::pin(self.close(why, frames.get_mut(), &mut wr)).await;
        }
    }

    async fn close<R, W>(mut self, why: Close, rd: &mut R, wr: &mut W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // Best effort: what is still queued (e.g. KICKED) goes out before the
        // close, unless the peer is the reason nothing goes out.
        if why.flushes_queue() {
            while let Some(frame) = self.handle.take() {
                self.take_queued(&frame);
            }
            let _ = self.flush(wr).await;
        }
        let _ = tokio::time::timeout(self.node.cfg.write_timeout, wr.shutdown()).await;
        if why.client_told_why() {
            linger(rd).await;
        }
        self.closed(why).await;
    }

    /// When the connection closes unless another frame arrives. Signed in:
    /// three heartbeat intervals of silence. Before sign-in: the handshake
    /// timeout after the last frame, and never later than three handshake
    /// timeouts after accept, so heartbeats alone cannot hold a slot.
    fn next_deadline(&self) -> Instant {
        let cfg = &self.node.cfg;
        let now = Instant::now();
        if self.identity.is_some() {
            now + cfg.heartbeat_interval * 3
        } else {
            (now + cfg.handshake_timeout).min(self.accepted_at + cfg.handshake_timeout * 3)
        }
    }

    async fn closed(mut self, why: Close) {
        self.end_pause();
        let m = &self.node.metrics;
        m.connections.dec();
        m.closed(why);
        // No frame is taken from now on: a ROOM_JOIN still on its way sees
        // the connection closed and does not add it after the leave below.
        self.handle.close_queue();
        self.node.registry.remove(self.conn_id);
        if self.asked_to_join {
            self.node.rooms.leave_all(self.conn_id);
        }
        let reason = why.label();
        match self.identity {
            Some(id) => {
                info!(reason, "connection closed");
                if self.node.registry.unbind(id.device_id, self.conn_id) {
                    self.node
                        .logic
                        .device_offline(self.conn_id, id.user_id, id.device_id)
                        .await;
                }
            }
            None => debug!(reason, "connection closed before sign-in"),
        }
        if self.auth_inflight {
            self.settle_inflight_sign_in().await;
        }
    }

    /// The client left while logic was signing it in: wait for the answer
    /// (bounded by the request timeout) and, if logic marked the device
    /// online at this connection, tell it the device is offline again.
    async fn settle_inflight_sign_in(&mut self) {
        let wait = self.node.cfg.request_timeout;
        let Some(inflight) = self.inflight.as_mut() else {
            return;
        };
        while let Ok(Some(done)) = tokio::time::timeout(wait, inflight.join_next()).await {
            let Ok(done) = done else { continue };
            if let (Some(bind), true) = (done.reply.bind, done.serial) {
                self.node
                    .logic
                    .device_offline(self.conn_id, bind.user_id, bind.device_id)
                    .await;
            }
        }
    }
}

/// The next request to finish; `None` when none is in flight.
async fn next_done(inflight: &mut Option<JoinSet<Done>>) -> Option<Result<Done, JoinError>> {
    inflight.as_mut()?.join_next().await
}

mod backpressure;
mod flood;
mod output;
mod reader;
mod requests;

#[cfg(test)]
mod tests;
