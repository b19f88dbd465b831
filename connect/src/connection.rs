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
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use governor::DefaultDirectRateLimiter;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn, Instrument};

use tern_public::proto::bus::ConnReply;
use tern_public::proto::client::{KickReason, Request};
use tern_public::{Code, FrameCodec, FrameError, FrameType};

use crate::close::{linger, Close};
use crate::node::NodeState;
use crate::registry::{CloseSignal, ConnHandle, QueuedBytes};

/// Read buffer of a fresh connection: enough for the small frames of normal traffic.
const INITIAL_READ_BUF: usize = 512;
/// A read or write buffer grown past this is released once empty.
const SHRINK_ABOVE: usize = 64 * 1024;
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
    /// Output bytes the request held until its reply (`backpressure`).
    held: usize,
    reply: ConnReply,
}

/// Serves one connection until it closes. Generic over the stream so tests
/// can drive it through an in-memory pipe under paused time.
pub(crate) async fn serve<S>(node: Arc<NodeState>, stream: S, conn_id: u64, peer: String)
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
        .await
}

struct Connection {
    node: Arc<NodeState>,
    conn_id: u64,
    peer: String,
    identity: Option<Identity>,
    handle: ConnHandle,
    rx: mpsc::Receiver<Bytes>,
    /// Bytes of the frames in `rx`.
    queued: Arc<QueuedBytes>,
    signal: Arc<CloseSignal>,
    inflight: JoinSet<Done>,
    serial: VecDeque<(FrameType, Request)>,
    serial_busy: bool,
    /// A REGISTER/LOGIN/SIGN_IN is with logic: if the connection closes
    /// meanwhile, logic may still mark the device online here.
    auth_inflight: bool,
    /// A ROOM_JOIN was taken: the close must take the connection out of
    /// the rooms. Most connections never join one, and never touch them.
    asked_to_join: bool,
    accepted_at: Instant,
    out: BytesMut,
    /// Made at the first ROOM_SEND: most connections never send to a room.
    room_sends: Option<Box<DefaultDirectRateLimiter>>,
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
        let (tx, rx) = mpsc::channel(node.cfg.write_queue_frames);
        let signal = Arc::new(CloseSignal::default());
        let queued = Arc::new(QueuedBytes::new(node.cfg.write_queue_bytes));
        let handle = ConnHandle::bounded(conn_id, tx, signal.clone(), queued.clone());
        let budget = flood::Budget::new(&node.cfg, &node.clock);
        Connection {
            node,
            conn_id,
            peer,
            identity: None,
            handle,
            rx,
            queued,
            signal,
            inflight: JoinSet::new(),
            serial: VecDeque::new(),
            serial_busy: false,
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

    async fn run<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, mut wr) = tokio::io::split(stream);
        let codec = FrameCodec::new(self.node.cfg.max_frame_len);
        let mut frames = FramedRead::with_capacity(rd, codec, INITIAL_READ_BUF);
        self.node.registry.add(self.handle.clone());
        if self.node.is_draining() {
            // Accepted just as the drain began, after its snapshot.
            self.handle.kick(KickReason::Draining);
        }
        debug!("connection opened");

        let deadline = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(deadline);
        let signal = self.signal.clone();

        let why = loop {
            let can_read = self.output_has_room()
                && self.inflight.len() + self.serial.len() < self.node.cfg.max_inflight;
            let was_bound = self.identity.is_some();
            let step = tokio::select! {
                close = signal.wait() => Step::Close(close),
                Some(frame) = self.rx.recv() => {
                    self.take_queued(frame);
                    Step::Continue
                }
                Some(done) = self.inflight.join_next() => match done {
                    Ok(done) => self.on_done(done),
                    // A request task can only end early by panicking; answer nothing more.
                    Err(e) => { warn!(error = %e, "request task failed"); Step::Close(Close::InternalError) }
                },
                frame = frames.next(), if can_read => match frame {
                    Some(Ok(frame)) => {
                        deadline.as_mut().reset(self.next_deadline());
                        shrink_if_large(frames.read_buffer_mut());
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

        // Best effort: what is still queued (e.g. KICKED) goes out before the
        // close, unless the peer is the reason nothing goes out.
        if why.flushes_queue() {
            while let Ok(frame) = self.rx.try_recv() {
                self.take_queued(frame);
            }
            let _ = self.flush(&mut wr).await;
        }
        let _ = tokio::time::timeout(self.node.cfg.write_timeout, wr.shutdown()).await;
        if why.client_told_why() {
            linger(frames.get_mut()).await;
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
        self.rx.close();
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
        while let Ok(Some(done)) = tokio::time::timeout(wait, self.inflight.join_next()).await {
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

mod backpressure;
mod flood;
mod output;
mod requests;

use output::shrink_if_large;
#[cfg(test)]
mod tests;
