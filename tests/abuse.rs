//! Abuse control over real TCP: a client over its frame budget is answered
//! RATE_LIMITED and, when it keeps on, closed as a flood, while a
//! well-behaved pair on the same node keeps chatting.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::SinkExt;
use prost::Message as _;

use common::http::call;
use common::*;
use tern_client::proto::{Empty, Reply, Request};
use tern_client::Code;
use tern_connect::ConnectConfig;
use tern_public::{Frame, FrameType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_refused_then_closed_while_others_keep_chatting() {
    let connect = ConnectConfig {
        frames_per_sec: 100,
        flood_close_after: 50,
        ..Default::default()
    };
    let server = start_with(connect, open_logic()).await;
    let addr = server.addr();
    let alice = register(addr, "alice").await;
    let mut bob = register(addr, "bob").await;

    // The flooder writes 5,000 heartbeats without waiting, then reads what
    // came back until the server closes the connection.
    let flooder = tokio::spawn(async move {
        let mut raw = Raw::connect(addr).await;
        for request_id in 1..=5000u64 {
            let req = Request {
                request_id,
                payload: Empty {}.encode_to_vec().into(),
            };
            let frame = Frame::from_message(FrameType::Heartbeat.as_u16(), &req);
            if raw.framed.feed(frame).await.is_err() {
                break;
            }
        }
        let _ = raw.framed.flush().await;
        let mut codes: BTreeMap<i32, u32> = BTreeMap::new();
        while let Some(f) = raw.next_frame().await {
            if let Ok(reply) = Reply::decode(f.value) {
                *codes.entry(reply.code).or_default() += 1;
            }
        }
        codes
    });

    // Meanwhile alice and bob chat: every message arrives.
    let mut latencies = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        alice
            .client
            .send_text(bob.user_id, &format!("m{i}"), &format!("m{i}"))
            .await
            .expect("send while another client floods");
        assert_eq!(text(&bob.next_push().await), format!("m{i}"));
        latencies.push(t.elapsed());
    }
    let codes = tokio::time::timeout(WAIT, flooder)
        .await
        .expect("the flooder is closed in time")
        .unwrap();
    latencies.sort();
    println!(
        "send->push beside a flood: median {:?}, max {:?}; flooder got {codes:?}",
        latencies[latencies.len() / 2],
        latencies.last().copied().unwrap_or(Duration::ZERO)
    );
    let ok = codes.get(&Code::Ok.as_i32()).copied().unwrap_or(0);
    let limited = codes.get(&Code::RateLimited.as_i32()).copied().unwrap_or(0);
    assert!(ok >= 100, "the burst is served: {codes:?}");
    assert!(limited >= 1, "frames over budget are answered: {codes:?}");
    assert!(
        ok + limited < 5000,
        "the flooder was closed before its last frame: {codes:?}"
    );

    let (_, _, metrics) = call(server.http[0], "GET", "/metrics", None).await;
    for line in [
        r#"tern_connections_closed_total{reason="flooding"} 1"#,
        r#"tern_rate_limited_total{limit="frames_closed"} 1"#,
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    assert!(
        metrics.contains(r#"tern_rate_limited_total{limit="frames"}"#),
        "{metrics}"
    );
    server.stop().await;
}

/// One user's SENDs are budgeted over all of their devices, even when the
/// devices sit on different connect nodes and their sends reach different
/// logic nodes (the count is in Redis); other users are not touched.
async fn a_users_sends_past_the_rate_are_refused_on_every_node(shape: Shape) {
    let logic = tern_logic::LogicConfig {
        send_policy: tern_logic::SendPolicy::Open,
        user_sends_per_sec: 5,
        ..Default::default()
    };
    let server = shape.start_with(open_connect(), logic).await;
    let phone = register(server.addr(), "ann").await;
    let laptop = login(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let carol = register(server.addr(), "carol").await;

    let mut codes: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..20 {
        let device = if i % 2 == 0 { &phone } else { &laptop };
        let key = match device
            .client
            .send_text(bob.user_id, "hi", &format!("a{i}"))
            .await
        {
            Ok(_) => "OK".to_owned(),
            Err(e) => e
                .code()
                .map_or_else(|| e.to_string(), |c| c.name().to_owned()),
        };
        *codes.entry(key).or_default() += 1;
    }
    // 20 sends take well under a second, so they span at most two windows
    // of 5.
    let ok = codes.get("OK").copied().unwrap_or(0);
    assert!((5..=10).contains(&ok), "{codes:?}");
    assert_eq!(
        codes.get("RATE_LIMITED").copied(),
        Some(20 - ok),
        "{codes:?}"
    );
    let stored = bob.client.sync_all(0).await.unwrap();
    assert_eq!(stored.len() as u32, ok, "only accepted sends are stored");

    for i in 0..3 {
        carol
            .client
            .send_text(bob.user_id, "me too", &format!("c{i}"))
            .await
            .expect("another user keeps their own budget");
    }
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] a_users_sends_past_the_rate_are_refused_on_every_node,
}
