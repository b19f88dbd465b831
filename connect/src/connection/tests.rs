//! Connection behaviour against a fake logic on the in-process bus, through an
//! in-memory pipe, with tokio's paused clock for every deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::DuplexStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use tern_public::bus::{Bus, MemoryBus, LOGIC_QUEUE};
use tern_public::proto::bus::{Bind, ConnReply, ConnRequest};
use tern_public::proto::client::{KickReason, Kicked, Reply, Request, SignInRequest};
use tern_public::{Code, Frame, FrameCodec, FrameType};

use crate::{ConnectConfig, Node};

struct Harness {
    node: Node,
    bus: MemoryBus,
    signins: Arc<AtomicUsize>,
    /// Highest number of SENDs the fake logic saw in flight at once.
    max_concurrent_sends: Arc<AtomicUsize>,
    sends_seen: Arc<std::sync::Mutex<Vec<u64>>>,
    /// SYNCs the fake logic received.
    syncs: Arc<AtomicUsize>,
}

/// Starts a fake logic: SIGN_IN with token "good" binds user 1 to the device
/// id in the request; SEND answers after a short delay, recording order;
/// SYNC answers with as many bytes as its payload (a u64) asks for.
async fn harness(cfg: ConnectConfig) -> Harness {
    let bus = MemoryBus::new();
    let mut sub = bus
        .subscribe(&cfg.subjects.logic_rpc(), Some(LOGIC_QUEUE))
        .await
        .unwrap();
    let max_concurrent_sends = Arc::new(AtomicUsize::new(0));
    let sends_seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let signins = Arc::new(AtomicUsize::new(0));
    let syncs = Arc::new(AtomicUsize::new(0));
    let (b, maxc, seen, count, sync_count) = (
        bus.clone(),
        max_concurrent_sends.clone(),
        sends_seen.clone(),
        signins.clone(),
        syncs.clone(),
    );
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let (b, maxc, seen, in_flight, signins, syncs) = (
                b.clone(),
                maxc.clone(),
                seen.clone(),
                in_flight.clone(),
                count.clone(),
                sync_count.clone(),
            );
            tokio::spawn(async move {
                let req = ConnRequest::decode(msg.payload).unwrap();
                let reply = match FrameType::from_u16(req.r#type as u16).unwrap() {
                    FrameType::SignIn => {
                        signins.fetch_add(1, Ordering::SeqCst);
                        let s = SignInRequest::decode(req.payload).unwrap();
                        if s.token == "slow" {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        if s.token == "good" || s.token == "slow" {
                            ConnReply {
                                bind: Some(Bind {
                                    user_id: 1,
                                    device_id: s.device_id,
                                }),
                                ..Default::default()
                            }
                        } else {
                            ConnReply {
                                code: Code::Unauthenticated.as_i32(),
                                ..Default::default()
                            }
                        }
                    }
                    FrameType::Send => {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        maxc.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        let n = u64::from_be_bytes(req.payload[..8].try_into().unwrap());
                        seen.lock().unwrap().push(n);
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        ConnReply {
                            payload: req.payload,
                            ..Default::default()
                        }
                    }
                    FrameType::Sync => {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        let n = u64::from_be_bytes(req.payload[..8].try_into().unwrap());
                        ConnReply {
                            payload: vec![7u8; n as usize].into(),
                            ..Default::default()
                        }
                    }
                    FrameType::Logout => {
                        // Slow enough that a frame sent behind it arrives first.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        ConnReply {
                            then_kick: KickReason::LoggedOut as u32,
                            ..Default::default()
                        }
                    }
                    _ => ConnReply::default(),
                };
                b.publish(msg.reply.as_deref().unwrap(), reply.encode_to_vec().into())
                    .await
                    .unwrap();
            });
        }
    });
    let node = Node::new(cfg, Arc::new(bus.clone()));
    Harness {
        node,
        bus,
        signins,
        max_concurrent_sends,
        sends_seen,
        syncs,
    }
}

type Client = Framed<DuplexStream, FrameCodec>;

fn open(h: &Harness, pipe_buf: usize) -> (Client, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(pipe_buf);
    let node = h.node.clone();
    let task = tokio::spawn(async move { node.serve_connection(server, "test".into()).await });
    (Framed::new(client, FrameCodec::default()), task)
}

async fn send(c: &mut Client, ty: u16, request_id: u64, payload: impl Into<Bytes>) {
    let req = Request {
        request_id,
        payload: payload.into(),
    };
    c.send(Frame::from_message(ty, &req)).await.unwrap();
}

async fn reply(c: &mut Client) -> Reply {
    let f = c.next().await.expect("frame").expect("decodes");
    assert_eq!(
        f.ty,
        FrameType::Reply.as_u16(),
        "expected a REPLY, got type {}",
        f.ty
    );
    Reply::decode(f.value).unwrap()
}

async fn sign_in(c: &mut Client, device_id: u64) {
    let body = SignInRequest {
        user_id: 1,
        device_id,
        token: "good".into(),
    };
    send(c, FrameType::SignIn.as_u16(), 1, body.encode_to_vec()).await;
    assert_eq!(reply(c).await.code, 0);
}

/// Reads until the server closes; returns when that happened.
async fn closed_at(c: &mut Client) -> Instant {
    while let Some(Ok(_)) = c.next().await {}
    Instant::now()
}

#[tokio::test(start_paused = true)]
async fn heartbeat_deadline_is_three_intervals_of_silence() {
    let cfg = ConnectConfig {
        heartbeat_interval: Duration::from_secs(30),
        ..Default::default()
    };
    let h = harness(cfg).await;
    let (mut c, _t) = open(&h, 64 * 1024);
    sign_in(&mut c, 5).await;

    // Any frame keeps the connection: 89 s of silence, then a heartbeat.
    tokio::time::sleep(Duration::from_secs(89)).await;
    send(&mut c, FrameType::Heartbeat.as_u16(), 2, Bytes::new()).await;
    let r = reply(&mut c).await;
    assert_eq!((r.request_id, r.code), (2, 0));
    let last_frame = Instant::now();

    let at = closed_at(&mut c).await;
    assert_eq!(
        at - last_frame,
        Duration::from_secs(90),
        "closed after exactly 3 intervals"
    );
    assert_eq!(h.node.state().registry.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn silent_connection_is_closed_at_the_handshake_timeout() {
    let h = harness(ConnectConfig::default()).await;
    let start = Instant::now();
    let (mut c, _t) = open(&h, 1024);
    let at = closed_at(&mut c).await;
    assert_eq!(at - start, Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn sends_of_one_connection_reach_logic_one_at_a_time_in_order() {
    let h = harness(ConnectConfig::default()).await;
    let (mut c, _t) = open(&h, 64 * 1024);
    sign_in(&mut c, 5).await;
    for i in 0..20u64 {
        send(
            &mut c,
            FrameType::Send.as_u16(),
            100 + i,
            i.to_be_bytes().to_vec(),
        )
        .await;
    }
    for i in 0..20u64 {
        let r = reply(&mut c).await;
        assert_eq!(r.request_id, 100 + i, "replies in send order");
        assert_eq!(r.code, 0);
    }
    assert_eq!(*h.sends_seen.lock().unwrap(), (0..20).collect::<Vec<_>>());
    assert_eq!(h.max_concurrent_sends.load(Ordering::SeqCst), 1);
}

/// LOGOUT ends the session after its reply: KICKED follows the OK, the
/// connection closes, and a request sent behind it never reaches logic as
/// the signed-out device.
#[tokio::test(start_paused = true)]
async fn logout_is_answered_then_kicked_and_nothing_behind_it_runs() {
    let h = harness(ConnectConfig::default()).await;
    let (mut c, _t) = open(&h, 64 * 1024);
    sign_in(&mut c, 5).await;
    send(&mut c, FrameType::Logout.as_u16(), 2, Bytes::new()).await;
    send(
        &mut c,
        FrameType::Sync.as_u16(),
        3,
        8u64.to_be_bytes().to_vec(),
    )
    .await;
    let r = reply(&mut c).await;
    assert_eq!((r.request_id, r.code), (2, 0));
    let f = c.next().await.expect("a frame").expect("decodes");
    assert_eq!(f.ty, FrameType::Kicked.as_u16());
    let k = Kicked::decode(f.value).unwrap();
    assert_eq!(k.reason, KickReason::LoggedOut as i32);
    closed_at(&mut c).await;
    assert_eq!(
        h.syncs.load(Ordering::SeqCst),
        0,
        "nothing ran after LOGOUT"
    );
}

#[tokio::test(start_paused = true)]
async fn logic_unreachable_answers_unavailable_after_the_request_timeout() {
    let cfg = ConnectConfig {
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    // No fake logic at all: nobody subscribes to the rpc subject.
    let node = Node::new(cfg, Arc::new(MemoryBus::new()));
    let (client, server) = tokio::io::duplex(4096);
    tokio::spawn(async move { node.serve_connection(server, "t".into()).await });
    let mut c = Framed::new(client, FrameCodec::default());
    let body = SignInRequest {
        user_id: 1,
        device_id: 1,
        token: "good".into(),
    };
    send(&mut c, FrameType::SignIn.as_u16(), 9, body.encode_to_vec()).await;
    let r = reply(&mut c).await;
    assert_eq!((r.request_id, r.code), (9, Code::Unavailable.as_i32()));
}

#[tokio::test(start_paused = true)]
async fn slow_consumer_is_closed_and_unbound_without_waiting_for_the_write_timeout() {
    let cfg = ConnectConfig {
        write_queue_frames: 8,
        write_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let h = harness(cfg).await;
    let (mut c, task) = open(&h, 4096);
    sign_in(&mut c, 5).await;
    let start = Instant::now();
    // The client stops reading; logic keeps pushing 1 KiB frames (the way the
    // node's delivery task does) until the queue is full.
    let frame = Frame::new(FrameType::Push.as_u16(), vec![0u8; 1024]).to_bytes();
    let handle = h.node_registry_device(5).expect("bound");
    let mut outcome = crate::registry::Push::Queued;
    for _ in 0..64 {
        outcome = handle.push(frame.clone());
        if outcome != crate::registry::Push::Queued {
            break;
        }
    }
    assert_eq!(outcome, crate::registry::Push::SlowConsumer);
    task.await.unwrap();
    assert!(
        Instant::now() - start < Duration::from_secs(60),
        "closed before the write timeout"
    );
    assert!(h.node_registry_device(5).is_none(), "device unbound");
    drop(c);
}

#[tokio::test(start_paused = true)]
async fn second_sign_in_of_a_device_kicks_the_first_connection() {
    let h = harness(ConnectConfig::default()).await;
    let (mut first, first_task) = open(&h, 64 * 1024);
    sign_in(&mut first, 5).await;
    let (mut second, _t) = open(&h, 64 * 1024);
    sign_in(&mut second, 5).await;

    let f = first.next().await.unwrap().unwrap();
    assert_eq!(f.ty, FrameType::Kicked.as_u16());
    assert_eq!(Kicked::decode(f.value).unwrap().reason, 1);
    assert!(first.next().await.is_none(), "closed after KICKED");
    first_task.await.unwrap();
    // The old connection's close must not unbind the new one.
    assert!(h.node_registry_device(5).is_some());
    send(&mut second, FrameType::Heartbeat.as_u16(), 3, Bytes::new()).await;
    assert_eq!(reply(&mut second).await.code, 0);
}

mod backpressure;

impl Harness {
    fn node_registry_device(&self, device_id: u64) -> Option<crate::registry::ConnHandle> {
        self.node.state().registry.device(device_id)
    }
}

#[tokio::test(start_paused = true)]
async fn a_sign_in_queued_behind_a_successful_one_is_refused() {
    let h = harness(ConnectConfig::default()).await;
    let (mut c, _t) = open(&h, 64 * 1024);
    let body = |device_id| {
        SignInRequest {
            user_id: 1,
            device_id,
            token: "good".into(),
        }
        .encode_to_vec()
    };
    send(&mut c, FrameType::SignIn.as_u16(), 1, body(5)).await;
    send(&mut c, FrameType::SignIn.as_u16(), 2, body(6)).await;
    let first = reply(&mut c).await;
    let second = reply(&mut c).await;
    assert_eq!((first.request_id, first.code), (1, 0));
    assert_eq!(
        (second.request_id, second.code),
        (2, Code::BadRequest.as_i32())
    );
    assert_eq!(
        h.signins.load(Ordering::SeqCst),
        1,
        "logic never saw the second sign-in"
    );
    assert!(h.node_registry_device(5).is_some());
    assert!(h.node_registry_device(6).is_none());
}

#[tokio::test(start_paused = true)]
async fn leaving_during_sign_in_still_reports_the_device_offline() {
    use tern_public::proto::bus::{logic_event, LogicEvent};
    let cfg = ConnectConfig::default();
    let h = harness(cfg.clone()).await;
    let mut events = h
        .bus
        .subscribe(&cfg.subjects.logic_events(), None)
        .await
        .unwrap();
    let (mut c, task) = open(&h, 64 * 1024);
    let body = SignInRequest {
        user_id: 1,
        device_id: 9,
        token: "slow".into(),
    };
    send(&mut c, FrameType::SignIn.as_u16(), 1, body.encode_to_vec()).await;
    tokio::task::yield_now().await;
    drop(c); // gone before logic answers
    task.await.unwrap();
    let msg = events.next().await.expect("an event");
    match LogicEvent::decode(msg.payload).unwrap().event {
        Some(logic_event::Event::DeviceOffline(d)) => assert_eq!((d.user_id, d.device_id), (1, 9)),
        other => panic!("expected DeviceOffline, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeats_alone_cannot_keep_an_unauthenticated_connection() {
    let h = harness(ConnectConfig::default()).await; // handshake timeout 10 s
    let start = Instant::now();
    let (mut c, _t) = open(&h, 64 * 1024);
    let mut id = 0;
    let at = loop {
        id += 1;
        send(&mut c, FrameType::Heartbeat.as_u16(), id, Bytes::new()).await;
        assert_eq!(reply(&mut c).await.code, 0);
        // Wait 4 s for the next heartbeat, noticing a close meanwhile (4 s,
        // so no heartbeat falls on the 30 s cap itself).
        let next = tokio::time::timeout(Duration::from_secs(4), c.next()).await;
        if let Ok(None | Some(Err(_))) = next {
            break Instant::now();
        }
    };
    assert_eq!(
        at - start,
        Duration::from_secs(30),
        "closed at 3 handshake timeouts after accept"
    );
}
