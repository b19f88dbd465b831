//! Time limits over real TCP: the handshake timeout and the heartbeat
//! deadline, without disturbing the clients that behave. (The connection
//! limits are in abuse.rs.)

use std::time::Duration;

use tokio::time::Instant;

use crate::common::*;
use tern_connect::ConnectConfig;

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

/// A SYNC asking for more than the page cap gets the cap and `has_more`;
/// the rest comes on the next page.
#[tokio::test]
async fn a_sync_page_is_capped() {
    let logic = tern_logic::LogicConfig {
        sync_max_limit: 5,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    for i in 0..8 {
        alice
            .client
            .send_text(bob.user_id, "hi", &format!("m{i}"))
            .await
            .unwrap();
    }
    let first = bob.client.sync(0, 10_000).await.unwrap();
    assert_eq!((first.messages.len(), first.has_more), (5, true));
    let rest = bob.client.sync(5, 10_000).await.unwrap();
    assert_eq!((rest.messages.len(), rest.has_more), (3, false));
    server.stop().await;
}
