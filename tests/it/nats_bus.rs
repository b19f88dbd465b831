//! The NATS implementation of the bus against a real nats-server.

use std::time::Duration;

use bytes::Bytes;
use tern_public::bus::{Bus, BusError, NatsBus, NatsOptions};

const WAIT: Duration = Duration::from_secs(20);

async fn bus(url: &str, name: &str) -> NatsBus {
    NatsBus::connect(NatsOptions {
        url: url.into(),
        name: name.into(),
        op_timeout: Duration::from_secs(2),
    })
    .await
    .expect("connect to NATS")
}

/// Answers every request on `subject` with `answer`.
async fn responder(bus: NatsBus, subject: &str, queue: Option<&str>, answer: &'static str) {
    let mut sub = bus.subscribe(subject, queue).await.unwrap();
    let b = bus.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(to) = m.reply {
                let _ = b.publish(&to, Bytes::from_static(answer.as_bytes())).await;
            }
        }
    });
}

#[tokio::test]
async fn queue_group_spreads_requests_and_no_responders_fails_fast() {
    let nats = tern_testkit::nats_server();
    let a = bus(&nats.url(), "a").await;
    let b = bus(&nats.url(), "b").await;
    let client = bus(&nats.url(), "client").await;

    let err = client
        .request("t.rpc", Bytes::from_static(b"x"), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BusError::NoResponders(_)),
        "nobody listens yet: {err:?}"
    );

    responder(a, "t.rpc", Some("logic"), "a").await;
    responder(b, "t.rpc", Some("logic"), "b").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let r = client.request("t.rpc", Bytes::new(), WAIT).await.unwrap();
        seen.insert(r);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "both queue members answered some requests");
}

#[tokio::test]
async fn plain_subscribers_all_get_a_publish() {
    let nats = tern_testkit::nats_server();
    let a = bus(&nats.url(), "a").await;
    let b = bus(&nats.url(), "b").await;
    let mut s1 = a.subscribe("t.node.x", None).await.unwrap();
    let mut s2 = b.subscribe("t.node.x", None).await.unwrap();
    a.publish("t.node.x", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    for s in [&mut s1, &mut s2] {
        let m = tokio::time::timeout(WAIT, s.next()).await.unwrap().unwrap();
        assert_eq!(&m.payload[..], b"hello");
        assert_eq!(m.subject, "t.node.x");
    }
}

#[tokio::test]
async fn requests_fail_during_an_outage_and_subscriptions_survive_a_restart() {
    let mut nats = tern_testkit::nats_server();
    let server = bus(&nats.url(), "server").await;
    let client = bus(&nats.url(), "client").await;
    responder(server, "t.rpc", Some("logic"), "ok").await;
    assert_eq!(
        client.request("t.rpc", Bytes::new(), WAIT).await.unwrap(),
        "ok"
    );

    nats.kill();
    let started = std::time::Instant::now();
    let err = client
        .request("t.rpc", Bytes::new(), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an outage fails the request, it does not hang: {err:?}"
    );

    nats.restart();
    // Both sides reconnect on their own; the responder's queue subscription
    // comes back with them. Each attempt is bounded; the loop is too.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match client
            .request("t.rpc", Bytes::new(), Duration::from_millis(500))
            .await
        {
            Ok(r) => {
                assert_eq!(r, "ok");
                break;
            }
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no answer after NATS came back: {e:?}"),
        }
    }
}

/// A queue member that drains keeps serving what NATS already gave it, and
/// later messages go to the rest of the group: a stopping logic node loses
/// no request.
#[tokio::test]
async fn a_drained_queue_member_yields_its_buffered_messages_then_ends() {
    let nats = tern_testkit::nats_server();
    let a = bus(&nats.url(), "a").await;
    let b = bus(&nats.url(), "b").await;
    let publisher = bus(&nats.url(), "publisher").await;
    let mut sa = a.subscribe("t.work", Some("g")).await.unwrap();
    let mut sb = b.subscribe("t.work", Some("g")).await.unwrap();
    let mut watcher = publisher.subscribe("t.work", None).await.unwrap();
    for i in 0..100u8 {
        publisher
            .publish("t.work", Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    // Once the watcher has all of them, the server has routed every one.
    for _ in 0..100 {
        tokio::time::timeout(WAIT, watcher.next()).await.unwrap();
    }
    sa.drain().await.unwrap();
    for i in 100..150u8 {
        publisher
            .publish("t.work", Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    let mut from_a = Vec::new();
    while let Some(m) = tokio::time::timeout(WAIT, sa.next())
        .await
        .expect("a drained subscription ends")
    {
        from_a.push(m.payload[0]);
    }
    assert!(
        from_a.iter().all(|&i| i < 100),
        "nothing new after the drain"
    );
    let mut from_b = Vec::new();
    while from_a.len() + from_b.len() < 150 {
        let m = tokio::time::timeout(WAIT, sb.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 150 delivered", from_a.len() + from_b.len()))
            .unwrap();
        from_b.push(m.payload[0]);
    }
    let mut all: Vec<u8> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..150).collect::<Vec<u8>>(), "each message once");
    assert!(!from_a.is_empty(), "a had a share before it drained");
}
