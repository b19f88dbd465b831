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
