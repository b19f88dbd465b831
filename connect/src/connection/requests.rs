//! Requests of one connection: HEARTBEAT, ROOM_JOIN and ROOM_LEAVE answered
//! here, sign-in and SEND
//! through the serial lane, everything else forwarded to logic at once.

use std::future::Future;
use std::num::NonZeroU32;

use bytes::Bytes;
use governor::clock::Clock;
use governor::Quota;
use prost::Message as _;
use tokio::task::JoinSet;
use tracing::{debug, info, Instrument};

use tern_public::frame::valid_room_id;
use tern_public::proto::bus::{ConnReply, ConnRequest};
use tern_public::proto::client::{
    HeartbeatReply, KickReason, Reply, Request, RoomSendRequest, RoomTarget,
};
use tern_public::{time::now_ms, Code, Frame, FrameType};

use super::flood::{self, Verdict};
use super::{backpressure, Connection, Done, Identity, Step};
use crate::close::Close;

impl Connection {
    pub(super) fn on_frame(&mut self, frame: Frame) -> Step {
        self.node.metrics.frame_in(frame.ty);
        let request = Request::decode(frame.value.clone());
        match self.budget.admit(frame.value.len()) {
            Verdict::Serve => {}
            Verdict::Refuse(limit, wait) => {
                self.node.metrics.limited(limit);
                let id = request.map(|r| r.request_id).unwrap_or(0);
                self.refuse(id, "too many frames; slow down", wait);
                return Step::Continue;
            }
            Verdict::Close => {
                self.node.metrics.limited("frames_closed");
                return Step::Close(Close::Flooding);
            }
        }
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
            (FrameType::RoomJoin | FrameType::RoomLeave, Some(_)) => self.room(ty, request),
            (FrameType::RoomSend, Some(_)) => {
                // Only members speak in a room; logic does not know who joined.
                let decoded = RoomSendRequest::decode(request.payload.clone());
                let member = decoded
                    .as_ref()
                    .is_ok_and(|r| self.node.rooms.is_member(&r.room_id, self.conn_id));
                if let Err(e) = decoded {
                    self.reply(
                        request.request_id,
                        Code::BadRequest,
                        &format!("payload does not decode: {e}"),
                        Bytes::new(),
                    );
                } else if !member {
                    self.reply(
                        request.request_id,
                        Code::Forbidden,
                        "join the room first",
                        Bytes::new(),
                    );
                } else if let Err(wait) = self.may_send_to_room() {
                    self.node.metrics.limited("room_sends");
                    self.refuse(
                        request.request_id,
                        "too many room messages; slow down",
                        wait,
                    );
                } else {
                    self.forward(ty, request, false);
                }
            }
            (t, _) if t.is_auth() || t == FrameType::Send => {
                // Waiting in the lane, it owes its reply as much as in flight.
                self.hold_reply(t);
                self.serial.push_back((t, request));
                self.start_serial();
            }
            (t @ (FrameType::Logout | FrameType::AccountDelete), Some(_)) => {
                self.ending = true;
                self.forward(t, request, false);
            }
            (t, _) => self.forward(t, request, false),
        }
        Step::Continue
    }

    /// Takes one ROOM_SEND from this connection's budget, or tells how
    /// long until one is left.
    fn may_send_to_room(&mut self) -> Result<(), std::time::Duration> {
        let per_sec = self.node.cfg.room_sends_per_sec.max(1);
        let limiter = self.room_sends.get_or_insert_with(|| {
            let rate = NonZeroU32::new(per_sec).expect("at least 1");
            Box::new(flood::limiter(Quota::per_second(rate)))
        });
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// ROOM_JOIN and ROOM_LEAVE: membership is this node's; joining may
    /// subscribe the node to the room first, so it runs off the read loop.
    fn room(&mut self, ty: FrameType, request: Request) {
        let room_id = match RoomTarget::decode(request.payload) {
            Ok(t) if valid_room_id(&t.room_id) => t.room_id,
            _ => {
                self.reply(
                    request.request_id,
                    Code::BadRequest,
                    "room_id must be 1-64 characters of a-z, A-Z, 0-9, '_', '-'",
                    Bytes::new(),
                );
                return;
            }
        };
        let node = self.node.clone();
        let handle = self.handle.clone();
        let request_id = request.request_id;
        let held = self.hold_reply(ty);
        let join = ty == FrameType::RoomJoin;
        self.asked_to_join |= join;
        self.spawn_request(async move {
            let result = if join {
                node.rooms.join(&room_id, handle).await
            } else {
                node.rooms.leave(&room_id, handle.conn_id);
                Ok(())
            };
            let (code, message) = match result {
                Ok(()) => (Code::Ok, String::new()),
                Err((code, message)) => (code, message),
            };
            Done {
                request_id,
                serial: false,
                ending: false,
                held,
                reply: ConnReply {
                    code: code.as_i32(),
                    message,
                    ..Default::default()
                },
            }
        });
    }

    /// Runs a request off the read loop; its answer comes back as a [`Done`].
    fn spawn_request(&mut self, request: impl Future<Output = Done> + Send + 'static) {
        self.inflight
            .get_or_insert_with(JoinSet::new)
            .spawn(request.in_current_span());
    }

    /// Requests in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.inflight.as_ref().map_or(0, JoinSet::len)
    }

    /// Starts the next SEND/sign-in if none is in flight.
    pub(super) fn start_serial(&mut self) {
        if self.serial_busy {
            return;
        }
        while let Some((ty, request)) = self.serial.pop_front() {
            // forward() holds it again while in flight.
            let held = backpressure::reply_reserve(ty, self.node.cfg.max_frame_len);
            self.release_reply(held);
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

    pub(super) fn forward(&mut self, ty: FrameType, request: Request, serial: bool) {
        let identity = self.identity;
        let msg = ConnRequest {
            node_id: self.node.cfg.node_id.clone(),
            conn_id: self.conn_id,
            user_id: identity.map_or(0, |i| i.user_id),
            device_id: identity.map_or(0, |i| i.device_id),
            r#type: ty.as_u16() as u32,
            payload: request.payload,
            remote_addr: self.peer.clone(),
            heartbeat_interval_secs: if ty.is_auth() {
                self.node.cfg.heartbeat_interval.as_secs() as u32
            } else {
                0
            },
        };
        let node = self.node.clone();
        let request_id = request.request_id;
        let held = self.hold_reply(ty);
        let ending = matches!(ty, FrameType::Logout | FrameType::AccountDelete);
        self.spawn_request(async move {
            let reply = node.logic.call(msg).await;
            Done {
                request_id,
                serial,
                ending,
                held,
                reply,
            }
        });
    }

    pub(super) fn on_done(&mut self, done: Done) -> Step {
        if done.serial {
            self.serial_busy = false;
            self.auth_inflight = false;
        }
        self.release_reply(done.held);
        let code = Code::from_i32(done.reply.code).unwrap_or(Code::Internal);
        if let (Code::Ok, Some(bind), None) = (code, done.reply.bind, self.identity) {
            self.bind(bind.user_id, bind.device_id);
        }
        self.write_reply(Reply {
            request_id: done.request_id,
            code: code.as_i32(),
            message: done.reply.message,
            payload: done.reply.payload,
            retry_after_ms: done.reply.retry_after_ms,
        });
        // The request ended this device's session (LOGOUT, ACCOUNT_DELETE):
        // KICKED follows the reply, then the close.
        let then_kick = i32::try_from(done.reply.then_kick)
            .ok()
            .and_then(|r| KickReason::try_from(r).ok())
            .filter(|r| *r != KickReason::Unspecified);
        if done.ending {
            self.ending = false;
        }
        if let (Code::Ok, Some(reason)) = (code, then_kick) {
            self.handle.kick(reason);
            return Step::Close(Close::Kicked(reason));
        }
        self.start_serial();
        Step::Continue
    }

    pub(super) fn bind(&mut self, user_id: u64, device_id: u64) {
        self.identity = Some(Identity { user_id, device_id });
        let span = tracing::Span::current();
        span.record("user_id", user_id);
        span.record("device_id", device_id);
        if let Some(old) = self
            .node
            .registry
            .bind(user_id, device_id, self.handle.clone())
        {
            info!(
                old_conn = old.conn_id,
                "device signed in again; kicking the older connection"
            );
            old.kick(KickReason::SignedInElsewhere);
        }
        debug!("signed in");
    }
}
