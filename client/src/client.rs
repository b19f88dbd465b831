//! The connection: a writer shared by callers, a reader task that matches
//! replies to requests and forwards everything else as events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

use tern_public::proto::client::{Kicked, Message, Reply, Request, RoomMessage};
use tern_public::{Code, Frame, FrameCodec, FrameType};

use crate::{ClientError, TlsConfig};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Events buffered for the app before the reader stops reading the socket.
const EVENT_QUEUE: usize = 1024;

/// Something the server sent that is not the answer to a request.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new entry of the user's list.
    Push(Message),
    /// A live room message or broadcast; not stored, not in the list.
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
    writer: tokio::sync::Mutex<FramedWrite<Writer, FrameCodec>>,
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
    /// Connects over plain TCP; returns the client and the receiver of its
    /// events. A slice of addresses is tried in order until one answers.
    pub async fn connect(
        addr: impl ToSocketAddrs,
    ) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        Ok(Client::over(Box::new(rd), Box::new(wr)))
    }

    /// Connects over TLS, checking the server's certificate as `tls` says.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        tls: &TlsConfig,
    ) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let (rd, wr) = tokio::io::split(stream);
        Ok(Client::over(Box::new(rd), Box::new(wr)))
    }

    /// Connects over TLS when `tls` is given, plain TCP otherwise.
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        tls: Option<&TlsConfig>,
    ) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
        match tls {
            Some(tls) => Client::connect_tls(addr, tls).await,
            None => Client::connect(addr).await,
        }
    }

    fn over(rd: Reader, wr: Writer) -> (Client, mpsc::Receiver<Event>) {
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
        (client, events)
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
                retry_after: (reply.retry_after_ms > 0)
                    .then(|| Duration::from_millis(u64::from(reply.retry_after_ms))),
                payload: reply.payload,
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

async fn read_loop(rd: Reader, pending: Pending, events: mpsc::Sender<Event>) {
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
