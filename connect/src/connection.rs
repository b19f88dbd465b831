//! One client connection: read frames, answer heartbeats, forward commands to
//! logic, write replies and pushes, enforce deadlines.
//!
//! Everything runs in one task per connection: a `select!` over the socket,
//! the outbound queue, finished requests, the close signal and one deadline.
//! Requests run as child tasks in a per-connection `JoinSet`; SEND and the
//! sign-in commands go through a serial lane so the sends of one connection
//! are stored in the order they were sent.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn, Instrument};

use tern_public::proto::bus::{ConnReply, ConnRequest};
use tern_public::proto::client::{HeartbeatReply, KickReason, Reply, Request};
use tern_public::{time::now_ms, Code, Frame, FrameCodec, FrameError, FrameType};

use crate::registry::{CloseReason, CloseSignal, ConnHandle};
use crate::server::Shared;

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
    reply: ConnReply,
}

/// Serves one connection until it closes. Generic over the stream so tests
/// can drive it through an in-memory pipe under paused time.
pub(crate) async fn serve<S>(shared: Arc<Shared>, stream: S, conn_id: u64, peer: String)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let span = tracing::info_span!(
        "conn",
        node = %shared.cfg.node_id,
        conn_id,
        peer = %peer,
        user_id = tracing::field::Empty,
        device_id = tracing::field::Empty,
    );
    Connection::new(shared, conn_id, peer)
        .run(stream)
        .instrument(span)
        .await
}

struct Connection {
    shared: Arc<Shared>,
    conn_id: u64,
    peer: String,
    identity: Option<Identity>,
    handle: ConnHandle,
    rx: mpsc::Receiver<Bytes>,
    signal: Arc<CloseSignal>,
    inflight: JoinSet<Done>,
    serial: VecDeque<(FrameType, Request)>,
    serial_busy: bool,
    /// A REGISTER/LOGIN/SIGN_IN is with logic: if the connection closes
    /// meanwhile, logic may still mark the device online here.
    auth_inflight: bool,
    accepted_at: Instant,
    out: BytesMut,
}

enum Step {
    Continue,
    Close(&'static str),
}

impl Connection {
    fn new(shared: Arc<Shared>, conn_id: u64, peer: String) -> Connection {
        let (tx, rx) = mpsc::channel(shared.cfg.write_queue_frames);
        let signal = Arc::new(CloseSignal::default());
        let handle = ConnHandle::new(conn_id, tx, signal.clone());
        Connection {
            shared,
            conn_id,
            peer,
            identity: None,
            handle,
            rx,
            signal,
            inflight: JoinSet::new(),
            serial: VecDeque::new(),
            serial_busy: false,
            auth_inflight: false,
            accepted_at: Instant::now(),
            out: BytesMut::new(),
        }
    }

    async fn run<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, mut wr) = tokio::io::split(stream);
        let codec = FrameCodec::new(self.shared.cfg.max_frame_len);
        let mut frames = FramedRead::with_capacity(rd, codec, INITIAL_READ_BUF);
        self.shared.registry.add(self.handle.clone());
        if self.shared.is_draining() {
            // Accepted just as the drain began, after its snapshot.
            self.handle.kick(KickReason::Draining);
        }
        debug!("connection opened");

        let deadline = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(deadline);
        let signal = self.signal.clone();

        let why = loop {
            let can_read = self.inflight.len() + self.serial.len() < self.shared.cfg.max_inflight;
            let was_bound = self.identity.is_some();
            let step = tokio::select! {
                reason = signal.wait() => match reason {
                    CloseReason::SlowConsumer => Step::Close("slow consumer"),
                    _ => Step::Close("kicked"),
                },
                Some(frame) = self.rx.recv() => {
                    self.out.extend_from_slice(&frame);
                    Step::Continue
                }
                Some(done) = self.inflight.join_next() => match done {
                    Ok(done) => self.on_done(done),
                    // A request task can only end early by panicking; answer nothing more.
                    Err(e) => { warn!(error = %e, "request task failed"); Step::Close("internal error") }
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
                        Step::Close("frame too large")
                    }
                    Some(Err(FrameError::Io(e))) => { debug!(error = %e, "read failed"); Step::Close("read error") }
                    None => Step::Close("client closed"),
                },
                () = &mut deadline => Step::Close(if self.identity.is_some() { "heartbeat timeout" } else { "handshake timeout" }),
            };
            if !was_bound && self.identity.is_some() {
                // Signed in: from now on the heartbeat deadline applies.
                deadline.as_mut().reset(self.next_deadline());
            }
            if let Err(e) = self.flush(&mut wr).await {
                break e;
            }
            if let Step::Close(why) = step {
                break why;
            }
        };

        // Best effort: what is still queued (e.g. KICKED) goes out before the
        // close, unless the peer is the reason nothing goes out.
        if !matches!(why, "slow consumer" | "write timeout" | "write error") {
            while let Ok(frame) = self.rx.try_recv() {
                self.out.extend_from_slice(&frame);
            }
            let _ = self.flush(&mut wr).await;
        }
        let _ = tokio::time::timeout(self.shared.cfg.write_timeout, wr.shutdown()).await;
        self.closed(why).await;
    }

    /// When the connection closes unless another frame arrives. Signed in:
    /// three heartbeat intervals of silence. Before sign-in: the handshake
    /// timeout after the last frame, and never later than three handshake
    /// timeouts after accept, so heartbeats alone cannot hold a slot.
    fn next_deadline(&self) -> Instant {
        let cfg = &self.shared.cfg;
        let now = Instant::now();
        if self.identity.is_some() {
            now + cfg.heartbeat_interval * 3
        } else {
            (now + cfg.handshake_timeout).min(self.accepted_at + cfg.handshake_timeout * 3)
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Step {
        let request = Request::decode(frame.value.clone());
        let Some(ty) = FrameType::from_u16(frame.ty).filter(|t| t.is_request()) else {
            let id = request.map(|r| r.request_id).unwrap_or(0);
            self.reply(
                id,
                Code::BadRequest,
                &format!("unknown frame type {}", frame.ty),
                Bytes::new(),
            );
            return Step::Continue;
        };
        let Ok(request) = request else {
            self.reply(
                0,
                Code::BadRequest,
                "frame value is not a Request",
                Bytes::new(),
            );
            return Step::Continue;
        };
        match (ty, self.identity) {
            (FrameType::Heartbeat, _) => {
                let body = HeartbeatReply {
                    server_time_ms: now_ms(),
                };
                self.reply(
                    request.request_id,
                    Code::Ok,
                    "",
                    body.encode_to_vec().into(),
                );
            }
            (t, None) if !t.is_auth() => {
                self.reply(
                    request.request_id,
                    Code::Unauthenticated,
                    "sign in first",
                    Bytes::new(),
                );
            }
            (t, Some(_)) if t.is_auth() => {
                self.reply(
                    request.request_id,
                    Code::BadRequest,
                    "already signed in",
                    Bytes::new(),
                );
            }
            (t, _) if t.is_auth() || t == FrameType::Send => {
                self.serial.push_back((t, request));
                self.start_serial();
            }
            (t, _) => self.forward(t, request, false),
        }
        Step::Continue
    }

    /// Starts the next SEND/sign-in if none is in flight.
    fn start_serial(&mut self) {
        if self.serial_busy {
            return;
        }
        while let Some((ty, request)) = self.serial.pop_front() {
            if ty.is_auth() && self.identity.is_some() {
                // Queued behind the sign-in that has since succeeded.
                self.reply(
                    request.request_id,
                    Code::BadRequest,
                    "already signed in",
                    Bytes::new(),
                );
                continue;
            }
            self.serial_busy = true;
            self.auth_inflight = ty.is_auth();
            self.forward(ty, request, true);
            return;
        }
    }

    fn forward(&mut self, ty: FrameType, request: Request, serial: bool) {
        let identity = self.identity;
        let msg = ConnRequest {
            node_id: self.shared.cfg.node_id.clone(),
            conn_id: self.conn_id,
            user_id: identity.map_or(0, |i| i.user_id),
            device_id: identity.map_or(0, |i| i.device_id),
            r#type: ty.as_u16() as u32,
            payload: request.payload,
            remote_addr: self.peer.clone(),
            heartbeat_interval_secs: if ty.is_auth() {
                self.shared.cfg.heartbeat_interval.as_secs() as u32
            } else {
                0
            },
        };
        let shared = self.shared.clone();
        let request_id = request.request_id;
        self.inflight.spawn(
            async move {
                let reply = shared.call_logic(msg).await;
                Done {
                    request_id,
                    serial,
                    reply,
                }
            }
            .in_current_span(),
        );
    }

    fn on_done(&mut self, done: Done) -> Step {
        if done.serial {
            self.serial_busy = false;
            self.auth_inflight = false;
        }
        let code = Code::from_i32(done.reply.code).unwrap_or(Code::Internal);
        if let (Code::Ok, Some(bind), None) = (code, done.reply.bind, self.identity) {
            self.bind(bind.user_id, bind.device_id);
        }
        self.reply(
            done.request_id,
            code,
            &done.reply.message,
            done.reply.payload,
        );
        self.start_serial();
        Step::Continue
    }

    fn bind(&mut self, user_id: u64, device_id: u64) {
        self.identity = Some(Identity { user_id, device_id });
        let span = tracing::Span::current();
        span.record("user_id", user_id);
        span.record("device_id", device_id);
        if let Some(old) = self.shared.registry.bind(device_id, self.handle.clone()) {
            info!(
                old_conn = old.conn_id,
                "device signed in again; kicking the older connection"
            );
            old.kick(KickReason::SignedInElsewhere);
        }
        debug!("signed in");
    }

    /// Appends a REPLY frame to the output buffer.
    fn reply(&mut self, request_id: u64, code: Code, message: &str, payload: Bytes) {
        let reply = Reply {
            request_id,
            code: code.as_i32(),
            message: message.to_owned(),
            payload,
        };
        let frame = Frame::from_message(FrameType::Reply.as_u16(), &reply);
        if frame.value.len() > self.shared.cfg.max_frame_len {
            // Logic keeps replies under the limit; if one is not, the client
            // still gets exactly one answer.
            warn!(len = frame.value.len(), "reply over the frame limit");
            return self.reply(request_id, Code::Internal, "reply too large", Bytes::new());
        }
        self.out.extend_from_slice(&frame.to_bytes());
    }

    /// Writes everything pending (the output buffer and whatever is queued)
    /// in as few syscalls as possible.
    async fn flush<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) -> Result<(), &'static str> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut n = 0;
        while n < MAX_FRAMES_PER_WRITE && self.out.len() < SHRINK_ABOVE {
            match self.rx.try_recv() {
                Ok(frame) => self.out.extend_from_slice(&frame),
                Err(_) => break,
            }
            n += 1;
        }
        let write = async {
            wr.write_all(&self.out).await?;
            wr.flush().await
        };
        let write = tokio::time::timeout(self.shared.cfg.write_timeout, write);
        tokio::pin!(write);
        let mut kicked = false;
        let result = loop {
            tokio::select! {
                r = &mut write => break r,
                // A slow consumer is cut off at once, even mid-write; a kick lets
                // the write finish so the client never sees a torn frame.
                reason = self.signal.wait(), if !kicked => match reason {
                    CloseReason::SlowConsumer => return Err("slow consumer"),
                    _ => kicked = true,
                },
            }
        };
        if kicked {
            self.signal.rearm();
        }
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "write failed");
                return Err("write error");
            }
            Err(_) => return Err("write timeout"),
        }
        self.out.clear();
        if self.out.capacity() > SHRINK_ABOVE {
            self.out = BytesMut::new();
        }
        Ok(())
    }

    async fn closed(mut self, why: &'static str) {
        self.shared.registry.remove(self.conn_id);
        match self.identity {
            Some(id) => {
                info!(reason = why, "connection closed");
                if self.shared.registry.unbind(id.device_id, self.conn_id) {
                    self.shared
                        .device_offline(self.conn_id, id.user_id, id.device_id)
                        .await;
                }
            }
            None => debug!(reason = why, "connection closed before sign-in"),
        }
        if self.auth_inflight {
            self.settle_inflight_sign_in().await;
        }
    }

    /// The client left while logic was signing it in: wait for the answer
    /// (bounded by the request timeout) and, if logic marked the device
    /// online at this connection, tell it the device is offline again.
    async fn settle_inflight_sign_in(&mut self) {
        let wait = self.shared.cfg.request_timeout;
        while let Ok(Some(done)) = tokio::time::timeout(wait, self.inflight.join_next()).await {
            let Ok(done) = done else { continue };
            if let (Some(bind), true) = (done.reply.bind, done.serial) {
                self.shared
                    .device_offline(self.conn_id, bind.user_id, bind.device_id)
                    .await;
            }
        }
    }
}

/// Releases a read buffer that grew for a large frame once it is drained.
fn shrink_if_large(buf: &mut BytesMut) {
    if buf.capacity() > SHRINK_ABOVE && buf.len() < INITIAL_READ_BUF {
        let mut small = BytesMut::with_capacity(INITIAL_READ_BUF);
        small.extend_from_slice(buf);
        *buf = small;
    }
}

#[cfg(test)]
mod tests;
