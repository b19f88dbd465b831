//! What only a cluster has: bus message size limits, long NATS outages
//! against node liveness, logic nodes that must not run side by side, and
//! readiness over HTTP. Real MariaDB, Redis and NATS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use tern_client::proto::{ConvType, GroupCreateRequest, GroupInfo, SendRequest};
use tern_connect::ConnectConfig;
use tern_logic::LogicConfig;
use tern_public::FrameType;

/// Status and body of a plain HTTP/1.1 GET.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, None).await
}

/// Status and body of a plain HTTP/1.1 request with the admin token when
/// it has a JSON body.
async fn http(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = json.unwrap_or("");
    let auth = if json.is_some() {
        format!("Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: tern\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_group_message_reaches_every_member_through_bus_size_limits() {
    let services = Services::start().await;
    let server = services.cluster().await;
    // 40 members over both nodes, 60 KiB each: one PUSH frame per member is
    // ~1.2 MiB per node, over NATS's 1 MiB message limit.
    let mut members = Vec::new();
    for i in 0..40 {
        members.push(register(server.addr(), &format!("member{i:02}")).await);
    }
    let owner = register(server.addr(), "owner").await;
    let ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    let group: GroupInfo = owner
        .client
        .request(
            FrameType::GroupCreate,
            &GroupCreateRequest {
                name: "big".into(),
                member_ids: ids,
                ..Default::default()
            },
        )
        .await
        .expect("group create");
    for m in &mut members {
        m.next_push().await; // GROUP_CREATED
    }
    let content = vec![b'x'; 60 * 1024];
    owner
        .client
        .send(&SendRequest {
            conv_type: ConvType::Group as i32,
            conv_id: group.group_id,
            content_type: 1,
            content: Bytes::from(content.clone()),
            client_msg_id: "big".into(),
            mentions: vec![],
        })
        .await
        .expect("send");
    for m in &mut members {
        let got = m.next_push().await;
        assert_eq!(got.content.len(), content.len());
        assert_eq!(got.seq, 2);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_resume_after_a_nats_outage_longer_than_node_liveness() {
    let mut services = Services::start().await;
    let alive = Duration::from_millis(200);
    let server = services
        .cluster_with(
            ConnectConfig {
                alive_interval: alive,
                ..Default::default()
            },
            LogicConfig {
                node_sweep_interval: Duration::from_millis(50),
                ..open_logic()
            },
        )
        .await;
    let alice = register(server.addrs()[0], "alice").await;
    let mut bob = register(server.addrs()[1], "bob").await;
    assert_eq!(services.presence_of(bob.user_id).await, 1);

    // NATS away for 5 liveness intervals: logic sweeps both connect nodes
    // as dead although their clients are still connected.
    services.nats.kill();
    let down_at = Instant::now();
    while services.presence_of(bob.user_id).await > 0 {
        assert!(down_at.elapsed() < WAIT, "presence was never swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    services.nats.restart();

    // When the node's next ALIVE arrives, logic does not know it any more
    // and asks it to re-announce its devices: bob's presence comes back
    // without bob doing anything.
    let back_at = Instant::now();
    while services.presence_of(bob.user_id).await == 0 {
        assert!(back_at.elapsed() < WAIT, "presence was never restored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alice
        .client
        .send_text(bob.user_id, "after the outage", "m1")
        .await
        .expect("send after NATS is back");
    assert_eq!(text(&bob.next_push().await), "after the outage");
    server.stop().await;
}

#[tokio::test]
async fn a_logic_node_that_cannot_share_state_refuses_to_join() {
    let services = Services::start().await;
    let (node, _) = services.logic_node(open_logic()).await;
    let running = tokio::spawn(node.run(std::future::pending()));

    let backends = tern::cluster::LogicBackends::open(
        &services.database_url,
        None, // presence in memory
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tern::cluster::LogicNode::start(
        open_logic(),
        backends,
        services.bus("lonely").await,
        http,
        None,
    )
    .await;
    let err = refused.err().expect("refused").to_string();
    assert!(err.contains("in-memory presence"), "{err}");
    running.abort();
}

#[tokio::test]
async fn readiness_follows_redis() {
    let mut services = Services::start().await;
    let server = services.cluster().await;
    let http = server.http[0];
    assert_eq!(http_get(http, "/healthz").await.0, 200);
    let (status, body) = http_get(http, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    services.redis.kill();
    let (status, body) = http_get(http, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"presence\":false"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn room_online_counts_add_up_across_connect_nodes() {
    use tern_logic::room_counts::{RedisRoomCounts, RoomCounts};
    use tern_logic::RedisConn;

    let services = Services::start().await;
    let server = services
        .cluster_with(
            ConnectConfig {
                alive_interval: Duration::from_millis(200),
                ..Default::default()
            },
            open_logic(),
        )
        .await;
    let presence = RedisRoomCounts::new(
        RedisConn::connect(&services.redis.url(), "tern")
            .await
            .unwrap(),
    );
    let join = |d: &Device, room: &str| {
        let client = d.client.clone();
        let room_id = room.to_owned();
        async move {
            client
                .request::<tern_client::proto::Empty>(
                    FrameType::RoomJoin,
                    &tern_client::proto::RoomTarget { room_id },
                )
                .await
                .expect("join")
        }
    };
    let a = register(server.addrs()[0], "alice").await;
    let b = register(server.addrs()[0], "bob").await;
    let c = register(server.addrs()[1], "carol").await;
    for d in [&a, &b, &c] {
        join(d, "lobby").await;
    }
    join(&c, "kitchen").await;

    // Nodes report with every ALIVE (200 ms here); wait for the sum.
    let until = |want: u64| {
        let presence = &presence;
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let n = presence.room_online("lobby").await.unwrap();
                if n == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "lobby online stuck at {n}, want {want}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    until(3).await;
    assert_eq!(
        presence.top_rooms(5).await.unwrap(),
        [("lobby".to_owned(), 3), ("kitchen".to_owned(), 1)]
    );
    drop(b); // closing the connection leaves its rooms
    until(2).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rest_room_push_reaches_members_on_both_nodes_and_nobody_else() {
    let services = Services::start().await;
    let server = services.cluster().await;
    let join = |d: &Device| {
        let client = d.client.clone();
        async move {
            client
                .request::<tern_client::proto::Empty>(
                    FrameType::RoomJoin,
                    &tern_client::proto::RoomTarget {
                        room_id: "stage".into(),
                    },
                )
                .await
                .expect("join")
        }
    };
    let mut a = register(server.addrs()[0], "alice").await;
    let mut b = register(server.addrs()[1], "bob").await;
    let outsider = register(server.addrs()[1], "olga").await;
    join(&a).await;
    join(&b).await;

    let (status, body) = http(
        server.http[1],
        "POST",
        "/api/v1/rooms/stage/messages",
        Some(r#"{"content":"from the admin"}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    for d in [&mut a, &mut b] {
        match d.next_event().await {
            tern_client::Event::RoomPush(m) => {
                assert_eq!((m.room_id.as_str(), m.sender_id), ("stage", 0));
                assert_eq!(&m.content[..], b"from the admin");
            }
            other => panic!("expected the room push, got {other:?}"),
        }
    }
    // The outsider's node served the room (bob) but not to her.
    let mut outsider = outsider;
    assert!(
        matches!(
            outsider.events.try_recv(),
            Err(_) | Ok(tern_client::Event::Unmatched(_))
        ),
        "a non-member got the room push"
    );
    server.stop().await;
}
