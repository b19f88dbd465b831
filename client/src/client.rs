//! The connection: a writer shared by callers, a reader task that matches
//! replies to requests and forwards everything else as events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

use tern_public::proto::client::{
    AckRequest, AuthReply, ConvType, DeviceInfo, HeartbeatReply, Kicked, LoginRequest, Message,
    RegisterRequest, Reply, Request, RoomMessage, RoomSendRequest, RoomTarget, SendReply,
    SendRequest, Session, SignInReply, SignInRequest, SyncReply, SyncRequest,
};
use tern_public::{Code, Frame, FrameCodec, FrameType};

use crate::ClientError;

/// Events buffered for the app before the reader stops reading the socket.
const EVENT_QUEUE: usize = 1024;

/// Something the server sent that is not the answer to a request.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new entry of the user's list.
    Push(Message),
    RoomPush(RoomMessage),
    /// The server is about to close the connection.
    Kicked(Kicked),
    /// A reply that matches no pending request (e.g. request_id 0 for a frame
    /// the server could not parse).
    Unmatched(Reply),
    /// The connection is closed; no more events follow.
    Closed,
}

/// Requests waiting for their reply; `None` once the connection is closed,
/// so later requests fail at once instead of waiting for a timeout.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

/// A signed-in or not-yet-signed-in connection to a tern server.
pub struct Client {
    writer: tokio::sync::Mutex<FramedWrite<OwnedWriteHalf, FrameCodec>>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
    reader: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Connects; returns the client and the receiver of its events.
    pub async fn connect(
        addr: impl ToSocketAddrs,
    ) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let reader = tokio::spawn(read_loop(rd, pending.clone(), events_tx));
        let client = Client {
            writer: tokio::sync::Mutex::new(FramedWrite::new(wr, FrameCodec::default())),
            pending,
            next_id: AtomicU64::new(1),
            timeout: Duration::from_secs(30),
            reader,
        };
        Ok((client, events))
    }

    /// Sets how long a request waits for its reply (default 30 s).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends one request and decodes its reply payload; a non-OK code is
    /// [`ClientError::Server`].
    pub async fn request<R: prost::Message + Default>(
        &self,
        ty: FrameType,
        body: &impl prost::Message,
    ) -> Result<R, ClientError> {
        let reply = self
            .raw_request(ty.as_u16(), body.encode_to_vec().into())
            .await?;
        if reply.code != Code::Ok.as_i32() {
            return Err(ClientError::Server {
                code: reply.code,
                message: reply.message,
            });
        }
        Ok(R::decode(reply.payload)?)
    }

    /// Sends a frame of any type with `payload` in a Request and returns the
    /// raw Reply, whatever its code.
    pub async fn raw_request(&self, ty: u16, payload: Bytes) -> Result<Reply, ClientError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().expect("pending lock poisoned").as_mut() {
            Some(p) => p.insert(request_id, tx),
            None => return Err(ClientError::Closed),
        };
        let frame = Frame::from_message(
            ty,
            &Request {
                request_id,
                payload,
            },
        );
        let sent = self.writer.lock().await.send(frame).await;
        if let Err(e) = sent {
            self.forget(request_id);
            return Err(e.into());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                self.forget(request_id);
                Err(ClientError::Timeout)
            }
        }
    }

    fn forget(&self, request_id: u64) {
        if let Some(p) = self.pending.lock().expect("pending lock poisoned").as_mut() {
            p.remove(&request_id);
        }
    }

    pub async fn register(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
    ) -> Result<AuthReply, ClientError> {
        let req = RegisterRequest {
            username: username.into(),
            password: password.into(),
            nickname: nickname.into(),
            device: Some(default_device()),
        };
        self.request(FrameType::Register, &req).await
    }

    /// Logs in; `device_id` reuses a device of this user (its token is replaced).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_id: Option<u64>,
    ) -> Result<AuthReply, ClientError> {
        let req = LoginRequest {
            username: username.into(),
            password: password.into(),
            device: Some(default_device()),
            device_id: device_id.unwrap_or(0),
        };
        self.request(FrameType::Login, &req).await
    }

    /// Resumes a device with the token from an earlier register or login.
    pub async fn sign_in(
        &self,
        user_id: u64,
        device_id: u64,
        token: &str,
    ) -> Result<Session, ClientError> {
        let req = SignInRequest {
            user_id,
            device_id,
            token: token.into(),
        };
        let reply: SignInReply = self.request(FrameType::SignIn, &req).await?;
        reply.session.ok_or(ClientError::Closed)
    }

    pub async fn heartbeat(&self) -> Result<i64, ClientError> {
        let r: HeartbeatReply = self
            .request(FrameType::Heartbeat, &tern_public::proto::client::Empty {})
            .await?;
        Ok(r.server_time_ms)
    }

    pub async fn send(&self, req: &SendRequest) -> Result<SendReply, ClientError> {
        self.request(FrameType::Send, req).await
    }

    /// Sends a text message to a user.
    pub async fn send_text(
        &self,
        to_user: u64,
        text: &str,
        client_msg_id: &str,
    ) -> Result<SendReply, ClientError> {
        let req = SendRequest {
            conv_type: ConvType::User as i32,
            conv_id: to_user,
            content_type: 1,
            content: Bytes::copy_from_slice(text.as_bytes()),
            client_msg_id: client_msg_id.into(),
            mentions: vec![],
        };
        self.send(&req).await
    }

    pub async fn sync(&self, after_seq: u64, limit: u32) -> Result<SyncReply, ClientError> {
        self.request(FrameType::Sync, &SyncRequest { after_seq, limit })
            .await
    }

    /// Syncs page by page until the server has nothing more after `after_seq`.
    pub async fn sync_all(&self, mut after_seq: u64) -> Result<Vec<Message>, ClientError> {
        let mut all = Vec::new();
        loop {
            let page = self.sync(after_seq, 0).await?;
            if let Some(last) = page.messages.last() {
                after_seq = last.seq;
            }
            all.extend(page.messages);
            if !page.has_more {
                return Ok(all);
            }
        }
    }

    pub async fn ack(&self, seq: u64) -> Result<(), ClientError> {
        let _: tern_public::proto::client::Empty =
            self.request(FrameType::Ack, &AckRequest { seq }).await?;
        Ok(())
    }

    /// Joins a live room: ROOM_PUSH frames of the room then arrive as
    /// [`Event::RoomPush`] until [`Client::room_leave`] or the connection closes.
    pub async fn room_join(&self, room_id: &str) -> Result<(), ClientError> {
        let req = RoomTarget {
            room_id: room_id.into(),
        };
        let _: tern_public::proto::client::Empty = self.request(FrameType::RoomJoin, &req).await?;
        Ok(())
    }

    /// Leaves a live room; leaving a room this connection is not in is not an error.
    pub async fn room_leave(&self, room_id: &str) -> Result<(), ClientError> {
        let req = RoomTarget {
            room_id: room_id.into(),
        };
        let _: tern_public::proto::client::Empty = self.request(FrameType::RoomLeave, &req).await?;
        Ok(())
    }

    /// Sends a live message to every other connection in a room this
    /// connection has joined; nothing is stored.
    pub async fn room_send(
        &self,
        room_id: &str,
        content_type: u32,
        content: impl Into<Bytes>,
    ) -> Result<(), ClientError> {
        let req = RoomSendRequest {
            room_id: room_id.into(),
            content_type,
            content: content.into(),
        };
        let _: tern_public::proto::client::Empty = self.request(FrameType::RoomSend, &req).await?;
        Ok(())
    }

    /// Sends a HEARTBEAT every `interval` until the client is dropped or the
    /// connection fails.
    pub fn spawn_heartbeat(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let client = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(client) = client.upgrade() else {
                    return;
                };
                if client.heartbeat().await.is_err() {
                    return;
                }
            }
        })
    }
}

fn default_device() -> DeviceInfo {
    DeviceInfo {
        platform: std::env::consts::OS.into(),
        model: "tern-client".into(),
        os_version: String::new(),
        app_version: env!("CARGO_PKG_VERSION").into(),
    }
}

async fn read_loop(rd: OwnedReadHalf, pending: Pending, events: mpsc::Sender<Event>) {
    let mut frames = FramedRead::new(rd, FrameCodec::default());
    while let Some(Ok(frame)) = frames.next().await {
        let event = match FrameType::from_u16(frame.ty) {
            Some(FrameType::Reply) => {
                let Ok(reply) = Reply::decode(frame.value) else {
                    continue;
                };
                let waiter = pending
                    .lock()
                    .expect("pending lock poisoned")
                    .as_mut()
                    .and_then(|p| p.remove(&reply.request_id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(reply);
                        continue;
                    }
                    None => Event::Unmatched(reply),
                }
            }
            Some(FrameType::Push) => match Message::decode(frame.value) {
                Ok(m) => Event::Push(m),
                Err(_) => continue,
            },
            Some(FrameType::RoomPush) => match RoomMessage::decode(frame.value) {
                Ok(m) => Event::RoomPush(m),
                Err(_) => continue,
            },
            Some(FrameType::Kicked) => match Kicked::decode(frame.value) {
                Ok(k) => Event::Kicked(k),
                Err(_) => continue,
            },
            _ => continue,
        };
        if events.send(event).await.is_err() {
            // The app dropped its receiver: keep answering requests anyway.
            continue;
        }
    }
    // Fail every waiting request at once instead of letting each time out.
    pending.lock().expect("pending lock poisoned").take();
    let _ = events.send(Event::Closed).await;
}
