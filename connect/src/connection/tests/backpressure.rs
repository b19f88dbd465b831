//! The output byte bound: a client that asks and never reads stops being
//! read; one that reads gets every answer, however large.

use super::*;
use crate::registry::Push;

fn sync_asking(bytes: u64) -> Vec<u8> {
    bytes.to_be_bytes().to_vec()
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_read_stops_being_read_until_it_drains() {
    let cfg = ConnectConfig {
        max_frame_len: 64 * 1024,
        write_queue_bytes: 256 * 1024,
        write_timeout: Duration::from_secs(600),
        heartbeat_interval: Duration::from_secs(600),
        ..Default::default()
    };
    let h = harness(cfg).await;
    // A pipe that holds little: the server's writes block at once.
    let (mut c, _t) = open(&h, 4096);
    sign_in(&mut c, 5).await;
    for i in 0..20u64 {
        send(
            &mut c,
            FrameType::Sync.as_u16(),
            100 + i,
            sync_asking(60_000),
        )
        .await;
    }
    // Paused time advances only once every task is idle: the connection
    // has read all it will read.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let metrics = &h.node.state().metrics;
    assert_eq!(
        h.syncs.load(Ordering::SeqCst),
        4,
        "4 pages of 64 KiB fill the 256 KiB bound; the rest wait unread"
    );
    assert_eq!(metrics.output_paused.get(), 1);

    // The client reads: every SYNC is answered, in full.
    for _ in 0..20 {
        let r = reply(&mut c).await;
        assert_eq!((r.code, r.payload.len()), (0, 60_000));
    }
    assert_eq!(h.syncs.load(Ordering::SeqCst), 20);
    send(&mut c, FrameType::Heartbeat.as_u16(), 1, Bytes::new()).await;
    assert_eq!(reply(&mut c).await.code, 0);
    assert_eq!(metrics.output_paused.get(), 0, "reading again");
    assert!(metrics.output_pauses.get() >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_reply_larger_than_the_whole_bound_still_goes_out() {
    let cfg = ConnectConfig {
        write_queue_bytes: 4096,
        ..Default::default()
    };
    let h = harness(cfg).await;
    let (mut c, _t) = open(&h, 4096);
    sign_in(&mut c, 5).await;
    for i in 0..3u64 {
        send(
            &mut c,
            FrameType::Sync.as_u16(),
            10 + i,
            sync_asking(100_000),
        )
        .await;
    }
    for i in 0..3u64 {
        let r = reply(&mut c).await;
        assert_eq!((r.request_id, r.payload.len()), (10 + i, 100_000));
    }
}

#[tokio::test(start_paused = true)]
async fn pushes_past_the_byte_bound_close_a_slow_consumer() {
    let cfg = ConnectConfig {
        write_queue_frames: 100_000,
        write_queue_bytes: 64 * 1024,
        write_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    let h = harness(cfg).await;
    let (mut c, task) = open(&h, 4096);
    sign_in(&mut c, 5).await;
    let handle = h.node_registry_device(5).expect("bound");
    let frame = Frame::new(FrameType::Push.as_u16(), vec![0u8; 4096]).to_bytes();
    let mut pushed = 0;
    let outcome = loop {
        match handle.push(frame.clone()) {
            Push::Queued => pushed += 1,
            other => break other,
        }
        // Bounded: far more than the bound and the pipe hold.
        assert!(pushed < 1000, "pushes never refused");
    };
    assert_eq!(outcome, Push::SlowConsumer);
    assert!(pushed <= 64 * 1024 / 4102 + 1, "{pushed} frames queued");
    task.await.unwrap();
    assert!(h.node_registry_device(5).is_none(), "closed and unbound");
    drop(c);
}
