//! Shared helpers for the end-to-end tests: servers in either shape
//! ([`server`]), signed-in test users, raw connections.

pub mod bench;
pub mod groups;
pub mod http;
pub mod procs;
pub mod proxy;
mod resilient;
// Carries `in_both_shapes!` up to the suites (see tests/it/main.rs).
#[macro_use]
mod server;
pub mod tls;

pub use resilient::{check_list, Resilient};
pub use server::{Server, Services, Shape, ADMIN_TOKEN};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use tern_client::proto::{AuthReply, Message, Reply, Request};
use tern_client::{Client, Event};
use tern_connect::ConnectConfig;
use tern_logic::LogicConfig;
use tern_public::{Frame, FrameCodec, FrameType};

/// Longest any single awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub const PASSWORD: &str = "correct horse battery";

/// Logic settings for delivery tests: anyone may message anyone, as fast
/// as they like, so these suites test delivery, not the friends-only policy
/// or the send rate (which have their own tests).
pub fn open_logic() -> LogicConfig {
    LogicConfig {
        send_policy: tern_logic::SendPolicy::Open,
        user_sends_per_sec: 0,
        login_attempts_per_user_per_min: 0,
        auth_attempts_per_addr_per_min: 0,
        ..Default::default()
    }
}

/// Connect settings for delivery tests: no per-connection frame budget nor
/// per-address connection limit (every test client is 127.0.0.1), so
/// tests and benches that send fast measure delivery, not the limiter
/// (which has its own tests with the budgets on).
pub fn open_connect() -> ConnectConfig {
    ConnectConfig {
        frames_per_sec: 0,
        bytes_per_sec: 0,
        max_connections_per_ip: 0,
        ..Default::default()
    }
}

/// A standalone server with the delivery-test settings.
pub async fn start() -> Server {
    Shape::Standalone.start().await
}

/// A standalone server with the given settings.
pub async fn start_with(connect: ConnectConfig, logic: LogicConfig) -> Server {
    Shape::Standalone.start_with(connect, logic).await
}

/// One signed-in device of a user.
pub struct Device {
    pub client: Arc<Client>,
    pub events: mpsc::Receiver<Event>,
    pub user_id: u64,
    pub device_id: u64,
    pub token: String,
}

impl Device {
    /// The next PUSH; fails the test if none arrives in time or the connection closes.
    pub async fn next_push(&mut self) -> Message {
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(Event::Push(m))) => return m,
                Ok(Some(Event::Unmatched(_))) => continue,
                Ok(other) => panic!("expected a PUSH, got {other:?}"),
                Err(_) => panic!("no PUSH within {WAIT:?}"),
            }
        }
    }

    /// The next event whatever it is.
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .unwrap_or(Event::Closed)
    }
}

pub async fn register(addr: SocketAddr, username: &str) -> Device {
    let (client, events) = Client::connect(addr).await.expect("connect");
    let auth = client
        .register(username, PASSWORD, username)
        .await
        .expect("register");
    device(client, events, auth)
}

/// Logs in as an existing user from a new connection (a new device).
pub async fn login(addr: SocketAddr, username: &str) -> Device {
    let (client, events) = Client::connect(addr).await.expect("connect");
    let auth = client.login(username, PASSWORD, None).await.expect("login");
    device(client, events, auth)
}

/// What a device keeps to resume later.
#[derive(Debug, Clone)]
pub struct Creds {
    pub user_id: u64,
    pub device_id: u64,
    pub token: String,
}

impl Device {
    pub fn creds(&self) -> Creds {
        Creds {
            user_id: self.user_id,
            device_id: self.device_id,
            token: self.token.clone(),
        }
    }
}

/// Resumes a device with its token on a new connection.
pub async fn sign_in(addr: SocketAddr, d: &Creds) -> (Device, tern_client::proto::Session) {
    let (client, events) = Client::connect(addr).await.expect("connect");
    let session = client
        .sign_in(d.user_id, d.device_id, &d.token)
        .await
        .expect("sign in");
    let dev = Device {
        client: Arc::new(client),
        events,
        user_id: d.user_id,
        device_id: d.device_id,
        token: d.token.clone(),
    };
    (dev, session.session)
}

/// The device an AuthReply made of a connection.
pub fn device(client: Client, events: mpsc::Receiver<Event>, auth: AuthReply) -> Device {
    Device {
        client: Arc::new(client),
        events,
        user_id: auth.user_id,
        device_id: auth.device_id,
        token: auth.token,
    }
}

/// A raw framed connection for protocol-level tests.
pub struct Raw {
    pub framed: Framed<TcpStream, FrameCodec>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw {
            framed: Framed::new(stream, FrameCodec::new(16 * 1024 * 1024)),
        }
    }

    pub async fn request(&mut self, ty: u16, request_id: u64, payload: impl prost::Message) {
        let req = Request {
            request_id,
            payload: payload.encode_to_vec().into(),
        };
        self.framed
            .send(Frame::from_message(ty, &req))
            .await
            .expect("send frame");
    }

    pub async fn send_frame(&mut self, ty: u16, value: impl Into<Bytes>) {
        self.framed
            .send(Frame::new(ty, value))
            .await
            .expect("send frame");
    }

    /// The next frame, or None once the server closed the connection.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        match tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("a frame or close in time")
        {
            Some(Ok(f)) => Some(f),
            Some(Err(_)) | None => None,
        }
    }

    pub async fn reply(&mut self) -> Reply {
        let f = self.next_frame().await.expect("a frame, not a close");
        assert_eq!(
            f.ty,
            FrameType::Reply.as_u16(),
            "expected REPLY, got type {}",
            f.ty
        );
        Reply::decode(f.value).expect("Reply decodes")
    }

    /// Waits for the server to close the connection, skipping frames.
    pub async fn closed(&mut self) {
        while self.next_frame().await.is_some() {}
    }
}

/// The content types of a device's whole list, in seq order.
pub async fn list_kinds(d: &Device) -> Vec<u32> {
    let list = d.client.sync_all(0).await.expect("sync");
    list.iter().map(|m| m.content_type).collect()
}

/// Text content of a message.
pub fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.content).into_owned()
}

/// Two fresh users exchange a message: the server is still serving.
pub async fn assert_still_serving(addr: SocketAddr, tag: &str) {
    let a = register(addr, &format!("ok-a-{tag}")).await;
    let mut b = register(addr, &format!("ok-b-{tag}")).await;
    let sent = a
        .client
        .send_text(b.user_id, "still here", "1")
        .await
        .expect("send");
    let got = b.next_push().await;
    assert_eq!((got.seq, &got.id[..]), (1, &sent.message_id[..]));
}

/// Makes two users friends: a requests, b accepts. Both users' devices get
/// FRIEND_REQUESTED then FRIEND_ACCEPTED, which this consumes and checks.
pub async fn befriend(a: &mut Device, b: &mut Device) {
    use tern_client::proto::SystemContentType;
    a.client
        .friend_request(b.user_id, "hi")
        .await
        .expect("friend request");
    b.client
        .friend_accept(a.user_id)
        .await
        .expect("friend accept");
    for d in [a, b] {
        let kinds = [
            d.next_push().await.content_type,
            d.next_push().await.content_type,
        ];
        assert_eq!(
            kinds,
            [
                SystemContentType::FriendRequested as u32,
                SystemContentType::FriendAccepted as u32
            ]
        );
    }
}
