//! Room membership against a bus whose subscribe to one room never
//! answers: closes, many at once, and the node's drain must not wait on it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

use tern_public::bus::{Bus, BusError, MemoryBus, Subscription, LOGIC_QUEUE};
use tern_public::proto::bus::{Bind, ConnReply, ConnRequest};
use tern_public::proto::client::{Reply, Request, RoomTarget, SignInRequest};
use tern_public::{Frame, FrameCodec, FrameType};

use crate::{ConnectConfig, Node};

/// The in-process bus, except that subscribing to `stalled` never returns.
struct StallingBus {
    inner: MemoryBus,
    stalled: String,
}

#[async_trait]
impl Bus for StallingBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish(subject, payload).await
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        self.inner.request(subject, payload, timeout).await
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        if subject == self.stalled {
            std::future::pending::<()>().await;
        }
        self.inner.subscribe(subject, queue_group).await
    }
}

/// A logic that signs in every SIGN_IN as user 1 on the device it names.
async fn fake_logic(bus: &MemoryBus, cfg: &ConnectConfig) {
    let mut sub = bus
        .subscribe(&cfg.subjects.logic_rpc(), Some(LOGIC_QUEUE))
        .await
        .unwrap();
    let bus = bus.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let req = ConnRequest::decode(msg.payload).unwrap();
            let device_id = SignInRequest::decode(req.payload).unwrap().device_id;
            let reply = ConnReply {
                bind: Some(Bind {
                    user_id: 1,
                    device_id,
                }),
                ..Default::default()
            };
            let to = msg.reply.unwrap();
            bus.publish(&to, reply.encode_to_vec().into())
                .await
                .unwrap();
        }
    });
}

type Client<T = DuplexStream> = Framed<T, FrameCodec>;

async fn send<T: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<T>,
    ty: FrameType,
    request_id: u64,
    payload: Vec<u8>,
) {
    let req = Request {
        request_id,
        payload: payload.into(),
    };
    c.send(Frame::from_message(ty.as_u16(), &req))
        .await
        .unwrap();
}

async fn reply<T: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<T>) -> Reply {
    let f = tokio::time::timeout(WAIT, c.next())
        .await
        .expect("a reply in time")
        .expect("a frame")
        .expect("decodes");
    assert_eq!(f.ty, FrameType::Reply.as_u16());
    Reply::decode(f.value).unwrap()
}

async fn sign_in<T: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<T>, device_id: u64) {
    let body = SignInRequest {
        user_id: 1,
        device_id,
        token: "t".into(),
    };
    send(c, FrameType::SignIn, 1, body.encode_to_vec()).await;
    assert_eq!(reply(c).await.code, 0);
}

async fn ask<T: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<T>, ty: FrameType, room_id: &str) {
    let body = RoomTarget {
        room_id: room_id.into(),
    };
    send(c, ty, 2, body.encode_to_vec()).await;
}

/// A client served by `node` through an in-memory pipe, and the task
/// serving it: the task ends when the connection's close is complete.
fn open(node: &Node) -> (Client, JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let node = node.clone();
    let task = tokio::spawn(async move { node.serve_connection(server, "test".into()).await });
    (Framed::new(client, FrameCodec::default()), task)
}

/// How long anything here may take: far less than any timeout of the node.
const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn closes_and_the_drain_do_not_wait_on_a_stalled_room_subscribe() {
    let cfg = ConnectConfig {
        // The drain would end at this grace anyway; it must end long before.
        drain_grace: Duration::from_secs(60),
        ..Default::default()
    };
    let memory = MemoryBus::new();
    fake_logic(&memory, &cfg).await;
    let bus = StallingBus {
        inner: memory,
        stalled: cfg.subjects.room("stalled"),
    };
    let node = Node::new(cfg, Arc::new(bus));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(node.clone().run(listener, async {
        let _ = stopped.await;
    }));

    // Members of a room that subscribes fine, signed-in clients in no
    // room, and clients that never signed in.
    let mut others = Vec::new();
    for device_id in 10..40 {
        let (mut c, task) = open(&node);
        if device_id < 30 {
            sign_in(&mut c, device_id).await;
        }
        if device_id < 20 {
            ask(&mut c, FrameType::RoomJoin, "open").await;
            assert_eq!(reply(&mut c).await.code, 0, "a room that subscribes");
        }
        others.push((c, task));
    }
    // The first member's join subscribes, and the subscribe never returns;
    // a second member waits on it. The first is served by the node's
    // accept loop, so the drain has it to kick.
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut first: Client<TcpStream> = Framed::new(stream, FrameCodec::default());
    sign_in(&mut first, 1).await;
    ask(&mut first, FrameType::RoomJoin, "stalled").await;
    let (mut second, second_task) = open(&node);
    sign_in(&mut second, 2).await;
    ask(&mut second, FrameType::RoomJoin, "stalled").await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A member of the stalled room closes on its own.
    drop(second);
    let closed = tokio::time::timeout(WAIT, second_task).await;
    closed
        .expect("a member of the stalled room closed")
        .unwrap();
    // Thirty close at once.
    let (clients, tasks): (Vec<_>, Vec<_>) = others.into_iter().unzip();
    drop(clients);
    let closed = tokio::time::timeout(WAIT, futures::future::join_all(tasks)).await;
    assert!(
        closed.is_ok(),
        "thirty closes waited on the stalled subscribe"
    );
    // Joins and leaves of other rooms go on too.
    let (mut late, _task) = open(&node);
    sign_in(&mut late, 3).await;
    ask(&mut late, FrameType::RoomJoin, "another").await;
    assert_eq!(reply(&mut late).await.code, 0, "joined another room");
    ask(&mut late, FrameType::RoomLeave, "another").await;
    assert_eq!(reply(&mut late).await.code, 0, "left it");

    // The drain kicks the first, still joining the stalled room.
    stop.send(()).unwrap();
    let drained = tokio::time::timeout(WAIT, run).await;
    drained
        .expect("the drain ended before its grace")
        .unwrap()
        .unwrap();
    let kicked = first.next().await.expect("a frame").expect("decodes");
    assert_eq!(kicked.ty, FrameType::Kicked.as_u16());
}

/// The in-process bus, except that every subscription has already ended,
/// as one the bus gave up on.
struct EndingBus(MemoryBus);

#[async_trait]
impl Bus for EndingBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.0.publish(subject, payload).await
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        self.0.request(subject, payload, timeout).await
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let mut sub = self.0.subscribe(subject, queue_group).await?;
        sub.drain().await?;
        Ok(sub)
    }
}

#[tokio::test]
async fn members_of_a_room_whose_subscription_ended_are_members_no_more() {
    use crate::registry::ConnHandle;
    use crate::rooms::Rooms;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    let tasks = TaskTracker::new();
    let bus: Arc<dyn Bus> = Arc::new(EndingBus(MemoryBus::new()));
    let cfg = ConnectConfig::default();
    let rooms = Rooms::new(
        bus,
        cfg.subjects.clone(),
        "n1".into(),
        8,
        tasks.clone(),
        CancellationToken::new(),
    );
    let conn = ConnHandle::new(7, 8);
    rooms.join("r", conn).await.expect("joined");
    // The room's task sees the subscription end and ends itself.
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("the room's task ended");
    assert!(
        !rooms.is_member("r", 7),
        "a member of a room that hears nothing is told to join again"
    );
}
