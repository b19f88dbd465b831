//! Time and capacity limits over real TCP: the handshake timeout, the
//! heartbeat deadline and the connection limit, each without disturbing the
//! clients that behave.

mod common;

use std::time::Duration;

use tokio::time::Instant;

use common::*;
use tern_client::proto::SyncRequest;
use tern_client::Code;
use tern_connect::ConnectConfig;
use tern_public::FrameType;

fn code(r: &tern_client::proto::Reply) -> Option<Code> {
    Code::from_i32(r.code)
}

#[tokio::test]
async fn silence_past_the_handshake_timeout_and_the_heartbeat_deadline_closes() {
    let connect = ConnectConfig {
        handshake_timeout: Duration::from_millis(500),
        heartbeat_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start_with(connect, open_logic()).await;

    // Never says anything: closed after the handshake timeout.
    let start = Instant::now();
    let mut silent = Raw::connect(server.addr()).await;
    silent.closed().await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(450),
        "closed too early: {waited:?}"
    );

    // Signs in, then goes quiet: closed after 3 heartbeat intervals, while a
    // device that heartbeats stays connected throughout.
    // Taken before the sign-in, so the measured wait can only be longer
    // than the server's.
    let signed_in = Instant::now();
    let mut quiet = register(server.addr(), "quiet").await;
    let talker = register(server.addr(), "talker").await;
    let beats = talker.client.clone();
    let beating = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(400));
        loop {
            tick.tick().await;
            beats
                .heartbeat()
                .await
                .expect("heartbeating client stays connected");
        }
    });
    match quiet.next_event().await {
        tern_client::Event::Closed => {}
        other => panic!("expected a close, got {other:?}"),
    }
    let waited = signed_in.elapsed();
    assert!(
        waited >= Duration::from_millis(2900),
        "heartbeat deadline fired early: {waited:?}"
    );
    assert!(
        !beating.is_finished(),
        "the heartbeating client was dropped"
    );
    // After the deadline the heartbeating client still gets messages.
    let mut talker = talker;
    let other = register(server.addr(), "other").await;
    other
        .client
        .send_text(talker.user_id, "still there?", "1")
        .await
        .unwrap();
    assert_eq!(text(&talker.next_push().await), "still there?");
    beating.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_connection_limit_holds_new_clients_until_a_slot_frees() {
    let connect = ConnectConfig {
        max_connections: 2,
        ..Default::default()
    };
    let server = start_with(connect, open_logic()).await;
    let mut first = Raw::connect(server.addr()).await;
    let mut second = Raw::connect(server.addr()).await;
    for raw in [&mut first, &mut second] {
        raw.request(FrameType::Heartbeat.as_u16(), 1, SyncRequest::default())
            .await;
        assert_eq!(code(&raw.reply().await), Some(Code::Ok));
    }
    // The third connects (kernel backlog) but is not served while two are open.
    let mut third = Raw::connect(server.addr()).await;
    third
        .request(FrameType::Heartbeat.as_u16(), 1, SyncRequest::default())
        .await;
    let early =
        tokio::time::timeout(Duration::from_millis(500), tokio_stream_next(&mut third)).await;
    assert!(early.is_err(), "third connection served beyond the limit");
    drop(first);
    assert_eq!(
        code(&third.reply().await),
        Some(Code::Ok),
        "served once a slot freed"
    );
    server.stop().await;
}

async fn tokio_stream_next(raw: &mut Raw) -> Option<tern_public::Frame> {
    futures::StreamExt::next(&mut raw.framed)
        .await
        .and_then(Result::ok)
}
