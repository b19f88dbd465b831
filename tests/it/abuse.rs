//! Abuse control over real TCP: a client over its frame budget is answered
//! RATE_LIMITED and, when it keeps on, closed as a flood, while a
//! well-behaved pair on the same node keeps chatting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use prost::Message as _;

use crate::common::http::call;
use crate::common::*;
use tern_client::proto::{Empty, Reply, Request};
use tern_connect::ConnectConfig;
use tern_public::{Code, Frame, FrameType};

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

    // The flooder writes 5,000 heartbeats without waiting for answers while
    // a reader counts the replies, until the server closes the connection.
    // Its frames past the close are still unread by the server then; the
    // server must not reset the connection over them, or the replies it
    // wrote last would be lost on the way.
    let flooder = tokio::spawn(async move {
        let (mut tx, mut rx) = Raw::connect(addr).await.framed.split();
        let reader = tokio::spawn(async move {
            let mut codes: BTreeMap<i32, u32> = BTreeMap::new();
            while let Some(Ok(f)) = rx.next().await {
                if let Ok(reply) = Reply::decode(f.value) {
                    *codes.entry(reply.code).or_default() += 1;
                }
            }
            codes
        });
        let mut written = 0;
        for request_id in 1..=5000u64 {
            let req = Request {
                request_id,
                payload: Empty {}.encode_to_vec().into(),
            };
            let frame = Frame::from_message(FrameType::Heartbeat.as_u16(), &req);
            if tx.send(frame).await.is_err() {
                break;
            }
            written += 1;
        }
        (written, reader.await.unwrap())
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
    let (written, codes) = tokio::time::timeout(WAIT, flooder)
        .await
        .expect("the flooder is closed in time")
        .unwrap();
    latencies.sort();
    println!(
        "send->push beside a flood: median {:?}, max {:?}; the flooder wrote {written} frames, read {codes:?}",
        latencies[latencies.len() / 2],
        latencies.last().copied().unwrap_or(Duration::ZERO)
    );
    let answered: u32 = codes.values().sum();
    assert!(
        answered < 5000,
        "the flooder was closed before its last frame was answered: {codes:?}"
    );
    assert_eq!(
        codes.get(&Code::RateLimited.as_i32()),
        Some(&50),
        "the flooder read every refusal written before the close: {codes:?}"
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

/// LOGIN attempts are budgeted per username and REGISTER/LOGIN attempts
/// per client address, before any password is checked; a device that
/// signs in with its token is not touched.
#[tokio::test]
async fn sign_in_attempts_past_the_budgets_are_refused() {
    let logic = tern_logic::LogicConfig {
        login_attempts_per_user_per_min: 3,
        auth_attempts_per_addr_per_min: 8,
        // A day-long window: the test cannot straddle two.
        auth_window: Duration::from_secs(86_400),
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let addr = server.addr();
    let ann = register(addr, "ann").await; // address: 1
    let (client, _events) = tern_client::Client::connect(addr).await.unwrap();
    let code = |r: Result<tern_client::proto::AuthReply, tern_client::ClientError>| match r {
        Ok(_) => "OK".to_owned(),
        Err(e) => e
            .code()
            .map_or_else(|| e.to_string(), |c| c.name().to_owned()),
    };
    for _ in 0..3 {
        let r = client.login("ann", "not the password", None).await;
        assert_eq!(code(r), "UNAUTHENTICATED"); // address: 2, 3, 4
    }
    // The username's budget is spent: even the right password waits, and
    // the refusal says how long (the first lockout is one window).
    let refused = client.login("ann", PASSWORD, None).await.unwrap_err();
    assert_eq!(refused.code(), Some(tern_client::Code::RateLimited)); // 5
    let wait = refused
        .retry_after()
        .expect("a RATE_LIMITED reply says when");
    assert!(
        wait > Duration::from_secs(86_000) && wait <= Duration::from_secs(86_400),
        "{wait:?}"
    );
    assert!(refused.to_string().contains("try again in"), "{refused}");
    // Another username from the same address still gets an answer.
    assert_eq!(
        code(client.login("nobody", PASSWORD, None).await),
        "UNAUTHENTICATED"
    ); // 6
    for name in ["carol1", "carol2"] {
        let (c, _events) = tern_client::Client::connect(addr).await.unwrap();
        assert_eq!(code(c.register(name, PASSWORD, name).await), "OK"); // 7, 8
    }
    let (c, _events) = tern_client::Client::connect(addr).await.unwrap();
    assert_eq!(
        code(c.register("carol3", PASSWORD, "carol3").await),
        "RATE_LIMITED"
    ); // 9
       // A device with a token signs in without a password: not an attempt.
    let (resumed, session) = sign_in(addr, &ann.creds()).await;
    assert_eq!(session.user_id, ann.user_id);
    drop(resumed);
    server.stop().await;
}

/// Each time a username's budget is spent again, the lockout doubles: a
/// guesser gets a few attempts per lockout, and the lockouts grow.
#[tokio::test]
async fn sign_in_lockouts_grow_with_each_spent_budget() {
    let logic = tern_logic::LogicConfig {
        login_attempts_per_user_per_min: 1,
        auth_window: Duration::from_millis(300),
        auth_lockout_max: Duration::from_secs(60),
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let addr = server.addr();
    register(addr, "ann").await;
    let (client, _events) = tern_client::Client::connect(addr).await.unwrap();
    let mut lockouts = Vec::new();
    for _ in 0..3 {
        // One attempt a window is within the budget; wrong passwords until
        // one is refused (a window may end between two attempts, each of
        // which costs a password hash).
        let mut refused = None;
        for _ in 0..10 {
            let err = client.login("ann", "wrong", None).await.unwrap_err();
            match err.code() {
                Some(tern_client::Code::Unauthenticated) => continue,
                Some(tern_client::Code::RateLimited) => {
                    refused = Some(err);
                    break;
                }
                _ => panic!("unexpected answer: {err}"),
            }
        }
        let refused = refused.expect("ten attempts spend a budget of one a window");
        let wait = refused.retry_after().expect("the refusal says when");
        lockouts.push(wait);
        // The wait the server named is the event this test waits for (and
        // a little more: the server's clock ticks in whole milliseconds).
        tokio::time::sleep(wait + Duration::from_millis(10)).await;
    }
    println!("lockouts: {lockouts:?}");
    let ms: Vec<u128> = lockouts.iter().map(|d| d.as_millis()).collect();
    assert!(
        (250..=300).contains(&ms[0])
            && (550..=600).contains(&ms[1])
            && (1150..=1200).contains(&ms[2]),
        "each lockout twice the one before: {lockouts:?}"
    );
    server.stop().await;
}

/// One address holds at most `max_connections_per_ip` connections: the next
/// is answered RATE_LIMITED and closed, and a slot frees when a connection
/// ends.
#[tokio::test]
async fn connections_past_the_per_address_limit_are_refused() {
    let connect = ConnectConfig {
        max_connections_per_ip: 3,
        ..open_connect()
    };
    connections_past_a_limit_are_refused(connect, "too_many_from_address").await;
}

/// A node holds at most `max_connections`: the next client is told at once
/// (RATE_LIMITED, then closed) rather than left waiting in the backlog.
#[tokio::test]
async fn connections_past_the_node_limit_are_refused() {
    let connect = ConnectConfig {
        max_connections: 3,
        ..open_connect()
    };
    connections_past_a_limit_are_refused(connect, "node_full").await;
}

/// Holds three connections, the limit `connect` sets; the fourth is
/// refused and closed with `reason`; a slot frees when one ends.
async fn connections_past_a_limit_are_refused(connect: ConnectConfig, reason: &str) {
    let server = start_with(connect, open_logic()).await;
    let addr = server.addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let (c, _events) = tern_client::Client::connect(addr).await.unwrap();
        c.heartbeat().await.expect("within the limit");
        held.push(c);
    }
    let mut refused = Raw::connect(addr).await;
    let reply = refused.reply().await;
    assert_eq!(
        (reply.request_id, reply.code),
        (0, tern_client::Code::RateLimited.as_i32()),
        "{reply:?}"
    );
    refused.closed().await;
    held[0]
        .heartbeat()
        .await
        .expect("the first three are untouched");

    // A slot frees once the server has seen a connection end.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (c, _events) = tern_client::Client::connect(addr).await.unwrap();
        if c.heartbeat().await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot came free");
    }
    let (_, _, metrics) = call(server.http[0], "GET", "/metrics", None).await;
    let line = format!(r#"tern_connections_closed_total{{reason="{reason}"}}"#);
    assert!(metrics.contains(&line), "no {line:?} in\n{metrics}");
    server.stop().await;
}

/// A user has at most `max_devices_per_user` devices: a LOGIN past it
/// removes the device seen longest ago, whose token stops working and whose
/// connection is kicked; the others are untouched.
#[tokio::test]
async fn logins_past_the_device_limit_replace_the_oldest_device() {
    let logic = tern_logic::LogicConfig {
        max_devices_per_user: 3,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let addr = server.addr();
    let mut oldest = register(addr, "ann").await;
    let mut kept = vec![login(addr, "ann").await, login(addr, "ann").await];
    let newest = login(addr, "ann").await;
    assert_ne!(newest.device_id, oldest.device_id, "a new device, a new id");

    match oldest.next_event().await {
        tern_client::Event::Kicked(k) => assert_eq!(
            k.reason,
            tern_client::proto::KickReason::TokenRevoked as i32
        ),
        other => panic!("expected KICKED, got {other:?}"),
    }
    let (client, _events) = tern_client::Client::connect(addr).await.unwrap();
    let err = client
        .sign_in(oldest.user_id, oldest.device_id, &oldest.token)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(tern_client::Code::Unauthenticated),
        "{err}"
    );

    kept.push(newest);
    for d in &kept {
        sign_in(addr, &d.creds()).await; // panics if the token stopped working
    }
    let path = format!("/api/v1/users/{}/devices", oldest.user_id);
    let (status, body, _) = call(server.http[0], "GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<u64> = body["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["device_id"].as_u64().expect("device_id"))
        .collect();
    let mut expected: Vec<u64> = kept.iter().map(|d| d.device_id).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "the three newest devices remain");
    server.stop().await;
}
