use std::time::Duration;

use bytes::Bytes;

use super::*;

async fn answer_one(sub: &mut Subscription, bus: &MemoryBus, prefix: &str) {
    let msg = sub.next().await.expect("request");
    let mut answer = prefix.as_bytes().to_vec();
    answer.extend_from_slice(&msg.payload);
    bus.publish(msg.reply.as_deref().expect("reply subject"), answer.into())
        .await
        .unwrap();
}

#[tokio::test]
async fn request_reply_round_trip() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe("svc", Some("q")).await.unwrap();
    let b = bus.clone();
    let server = tokio::spawn(async move { answer_one(&mut sub, &b, "re:").await });
    let reply = bus
        .request("svc", Bytes::from_static(b"ping"), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(&reply[..], b"re:ping");
    server.await.unwrap();
}

#[tokio::test]
async fn request_without_subscriber_is_no_responders() {
    let bus = MemoryBus::new();
    let err = bus
        .request("nobody", Bytes::new(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err, BusError::NoResponders("nobody".into()));
}

#[tokio::test(start_paused = true)]
async fn request_times_out_when_nobody_answers() {
    let bus = MemoryBus::new();
    let _sub = bus.subscribe("svc", None).await.unwrap();
    let err = bus
        .request("svc", Bytes::new(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err, BusError::Timeout);
    assert_eq!(bus.registered().1, 0, "inbox leaked");
}

#[tokio::test]
async fn queue_group_delivers_each_message_once_and_spreads_load() {
    let bus = MemoryBus::new();
    let mut a = bus.subscribe("work", Some("g")).await.unwrap();
    let mut b = bus.subscribe("work", Some("g")).await.unwrap();
    let mut watcher = bus.subscribe("work", None).await.unwrap();
    for i in 0..100u8 {
        bus.publish("work", Bytes::from(vec![i])).await.unwrap();
    }
    let drain = |s: &mut Subscription| {
        let mut n = 0;
        while let Some(Some(_)) =
            futures::FutureExt::now_or_never(tokio::task::unconstrained(s.next()))
        {
            n += 1;
        }
        n
    };
    let (na, nb, nw) = (drain(&mut a), drain(&mut b), drain(&mut watcher));
    assert_eq!(na + nb, 100, "each message to exactly one group member");
    assert!(na > 0 && nb > 0, "load spread over the group: {na}/{nb}");
    assert_eq!(nw, 100, "plain subscribers get every message");
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let bus = MemoryBus::new();
    let sub = bus.subscribe("s", None).await.unwrap();
    drop(sub);
    assert_eq!(bus.registered().0, 0, "subscription left behind");
    let err = bus
        .request("s", Bytes::new(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::NoResponders(_)));
}

#[tokio::test]
async fn a_drained_subscription_yields_what_it_was_given_then_ends() {
    let bus = MemoryBus::new();
    let mut a = bus.subscribe("work", Some("g")).await.unwrap();
    let mut b = bus.subscribe("work", Some("g")).await.unwrap();
    for i in 0..10u8 {
        bus.publish("work", Bytes::from(vec![i])).await.unwrap();
    }
    a.drain().await.unwrap();
    for i in 10..20u8 {
        bus.publish("work", Bytes::from(vec![i])).await.unwrap();
    }
    let mut from_a = Vec::new();
    while let Some(m) = a.next().await {
        from_a.push(m.payload[0]);
    }
    assert_eq!(
        from_a.len(),
        5,
        "a keeps its share of the first ten: {from_a:?}"
    );
    assert!(
        from_a.iter().all(|&i| i < 10),
        "nothing new after the drain"
    );
    let mut from_b = 0;
    while let Some(Some(_)) = futures::FutureExt::now_or_never(b.next()) {
        from_b += 1;
    }
    assert_eq!(
        from_b, 15,
        "the rest of the group takes every later message"
    );
}

#[test]
fn subjects_follow_the_design() {
    let s = Subjects::default();
    assert_eq!(s.logic_rpc(), "tern.logic.rpc");
    assert_eq!(s.logic_events(), "tern.logic.events");
    assert_eq!(s.node("n1"), "tern.node.n1");
    assert_eq!(s.room("r"), "tern.room.r");
    assert_eq!(s.broadcast(), "tern.broadcast");
    assert_eq!(Subjects::new("x").logic_rpc(), "x.logic.rpc");
}

#[test]
fn a_transport_error_keeps_its_cause() {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    let err = BusError::from(TransportError::new("NATS publish", refused));
    assert_eq!(err.to_string(), "bus transport: NATS publish: refused");
    let cause = std::error::Error::source(&err).expect("a cause");
    let io = cause
        .downcast_ref::<std::io::Error>()
        .expect("the io error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(err.clone(), err, "a clone is the same failure");
}
