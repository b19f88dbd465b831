//! Live rooms end to end: members on any connect node get every room
//! message but their own, nobody else does, and bad requests change nothing.

use bytes::Bytes;

use crate::common::*;
use tern_client::proto::{Empty, RoomMessage, RoomSendRequest, RoomTarget};
use tern_client::{ClientError, Code, Event};
use tern_public::FrameType;

async fn join(d: &Device, room: &str) -> Result<(), ClientError> {
    d.client.room_join(room).await
}

async fn leave(d: &Device, room: &str) {
    d.client.room_leave(room).await.expect("leave");
}

async fn say(d: &Device, room: &str, text: &str) -> Result<(), ClientError> {
    d.client
        .room_send(room, 1, Bytes::copy_from_slice(text.as_bytes()))
        .await
}

/// The next event, which must be a room message.
async fn heard(d: &mut Device) -> RoomMessage {
    loop {
        match d.next_event().await {
            Event::RoomPush(m) => return m,
            Event::Unmatched(_) => continue,
            other => panic!("expected a ROOM_PUSH, got {other:?}"),
        }
    }
}

fn said(m: &RoomMessage) -> String {
    String::from_utf8_lossy(&m.content).into_owned()
}

async fn members_hear_each_other_and_nobody_else_does(shape: Shape) {
    let server = shape.start().await;
    let mut alice = register(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;
    let mut carol = register(server.addr(), "carol").await;
    let mut dave = register(server.addr(), "dave").await;
    for d in [&alice, &bob, &carol] {
        join(d, "lobby").await.expect("join");
    }
    join(&alice, "lobby").await.expect("joining twice is fine");
    join(&dave, "elsewhere").await.expect("join");

    say(&alice, "lobby", "hello room").await.expect("send");
    for d in [&mut bob, &mut carol] {
        let m = heard(d).await;
        assert_eq!((m.room_id.as_str(), m.sender_id), ("lobby", alice.user_id));
        assert_eq!(said(&m), "hello room");
    }
    // The sender and the outsider get the next message of their own rooms
    // first: the lobby message never reached them.
    say(&bob, "lobby", "second").await.expect("send");
    assert_eq!(said(&heard(&mut alice).await), "second");
    say(&dave, "elsewhere", "alone").await.expect("send");
    say(&carol, "lobby", "third").await.expect("send");
    assert_eq!(said(&heard(&mut alice).await), "third");
    assert_eq!(said(&heard(&mut bob).await), "third");
    assert_eq!(said(&heard(&mut carol).await), "second");

    // Whoever leaves hears no more; the room lives on for the others.
    leave(&carol, "lobby").await;
    say(&alice, "lobby", "after carol left")
        .await
        .expect("send");
    assert_eq!(said(&heard(&mut bob).await), "after carol left");
    join(&carol, "other").await.expect("join");
    say(&bob, "other-not-joined", "x").await.unwrap_err();
    join(&bob, "other").await.expect("join");
    say(&bob, "other", "in other").await.expect("send");
    assert_eq!(said(&heard(&mut carol).await), "in other");
    // Room messages are live only: nothing entered any list.
    assert!(dave.client.sync_all(0).await.unwrap().is_empty());
    // The outsider heard nothing at all (not even his own message).
    assert!(
        matches!(dave.events.try_recv(), Err(_) | Ok(Event::Unmatched(_))),
        "dave heard a room he is not in"
    );
    assert!(alice.client.sync_all(0).await.unwrap().is_empty());
    server.stop().await;
}

async fn bad_room_requests_are_refused_with_clear_codes(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "alice").await;
    let code = |r: Result<(), ClientError>| r.expect_err("refused").code();

    assert_eq!(code(join(&alice, "").await), Some(Code::BadRequest));
    assert_eq!(code(join(&alice, "a.b").await), Some(Code::BadRequest));
    assert_eq!(
        code(join(&alice, &"x".repeat(65)).await),
        Some(Code::BadRequest)
    );
    assert_eq!(
        code(say(&alice, "lobby", "hi").await),
        Some(Code::Forbidden)
    );

    for i in 0..16 {
        join(&alice, &format!("r{i}"))
            .await
            .expect("within the limit");
    }
    assert_eq!(code(join(&alice, "r16").await), Some(Code::TooLarge));
    leave(&alice, "r0").await;
    join(&alice, "r16")
        .await
        .expect("room again after leaving one");

    let big = RoomSendRequest {
        room_id: "r1".into(),
        content_type: 1,
        content: vec![0u8; 64 * 1024 + 1].into(),
    };
    let err = alice
        .client
        .request::<Empty>(FrameType::RoomSend, &big)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::TooLarge));

    // A ROOM_SEND whose payload does not decode is a bad request, whatever
    // rooms the connection is in (a truncated length-delimited field).
    let garbage = alice
        .client
        .raw_request(
            FrameType::RoomSend.as_u16(),
            bytes::Bytes::from_static(&[0x0a, 0x05, b'r']),
        )
        .await
        .unwrap();
    assert_eq!(
        (garbage.code, garbage.message.contains("decode")),
        (Code::BadRequest.as_i32(), true),
        "{garbage:?}"
    );

    // Before sign-in, rooms are closed.
    let (anon, _events) = tern_client::Client::connect(server.addr()).await.unwrap();
    let err = anon
        .request::<Empty>(
            FrameType::RoomJoin,
            &RoomTarget {
                room_id: "lobby".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated));
    assert_still_serving(server.addr(), "rooms").await;
    server.stop().await;
}

async fn broadcast_reaches_every_signed_in_connection(shape: Shape) {
    let server = shape.start().await;
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat"] {
        users.push(register(server.addr(), name).await);
    }
    let (anon, mut anon_events) = tern_client::Client::connect(server.addr()).await.unwrap();
    anon.heartbeat().await.expect("connected, not signed in");

    server.logic[0]
        .broadcast(1, Bytes::from_static(b"maintenance at noon"), 0)
        .await
        .expect("broadcast");
    for u in &mut users {
        let m = heard(u).await;
        assert_eq!((m.room_id.as_str(), m.sender_id), ("", 0));
        assert_eq!(said(&m), "maintenance at noon");
    }
    // Only signed-in connections are told.
    anon.heartbeat().await.expect("still connected");
    assert!(
        matches!(anon_events.try_recv(), Err(_) | Ok(Event::Unmatched(_))),
        "a connection that never signed in got the broadcast"
    );
    server.stop().await;
}

async fn a_room_message_reaches_only_nodes_with_members(shape: Shape) {
    let server = shape.start().await;
    let first = server.addrs()[0];
    let alice = register(first, "alice").await;
    let mut bob = register(first, "bob").await;
    // Someone on every node, but in the lobby only on the first one.
    let mut others = Vec::new();
    for (i, &addr) in server.addrs().iter().enumerate() {
        let d = register(addr, &format!("other{i}")).await;
        join(&d, "elsewhere").await.expect("join");
        others.push(d);
    }
    join(&alice, "lobby").await.expect("join");
    join(&bob, "lobby").await.expect("join");
    say(&alice, "lobby", "only here").await.expect("send");
    assert_eq!(said(&heard(&mut bob).await), "only here");

    let received: Vec<u64> = server
        .connect
        .iter()
        .map(|n| n.room_messages_received())
        .collect();
    assert_eq!(received[0], 1, "the lobby's node got the message once");
    assert!(
        received[1..].iter().all(|&n| n == 0),
        "nodes without lobby members received room messages: {received:?}"
    );
    server.stop().await;
}

async fn room_sends_are_rate_limited_per_connection(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;
    let carol = register(server.addr(), "carol").await;
    for d in [&alice, &bob, &carol] {
        join(d, "lobby").await.expect("join");
    }
    // Far more than the budget (10/s) at once.
    let tries = 40;
    let texts: Vec<String> = (0..tries).map(|i| format!("m{i}")).collect();
    let results = futures::future::join_all(texts.iter().map(|t| say(&alice, "lobby", t))).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Some(Code::RateLimited)))
        .count();
    assert_eq!(ok + limited, tries, "{results:?}");
    assert!(ok >= 10 && limited >= 1, "ok {ok}, limited {limited}");
    // Another connection has its own budget.
    say(&carol, "lobby", "end")
        .await
        .expect("carol is not limited");
    let mut from_alice = 0;
    loop {
        let m = heard(&mut bob).await;
        if said(&m) == "end" {
            break;
        }
        from_alice += 1;
    }
    assert!(
        from_alice <= ok,
        "refused sends were delivered: {from_alice} > {ok}"
    );
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] room_sends_are_rate_limited_per_connection,
    #[tokio::test] broadcast_reaches_every_signed_in_connection,
    #[tokio::test] a_room_message_reaches_only_nodes_with_members,
    #[tokio::test] members_hear_each_other_and_nobody_else_does,
    #[tokio::test] bad_room_requests_are_refused_with_clear_codes,
}
