//! Friends end to end: every change reaches every device of the right users
//! as a system event, live by PUSH and later by SYNC; blocks and the
//! friends-only policy hold.

use prost::Message as _;

use crate::common::*;
use tern_client::proto::{
    Empty, FriendEvent, FriendList, FriendListRequest, FriendRemark, FriendRequest, FriendState,
    FriendTarget, Message, SystemContentType as Sys,
};
use tern_client::{ClientError, Code};
use tern_logic::LogicConfig;
use tern_public::FrameType;

async fn call<R: prost::Message + Default>(
    d: &Device,
    ty: FrameType,
    body: &impl prost::Message,
) -> Result<R, ClientError> {
    d.client.request(ty, body).await
}

async fn ok(d: &Device, ty: FrameType, user_id: u64) {
    let _: Empty = call(d, ty, &FriendTarget { user_id })
        .await
        .unwrap_or_else(|e| panic!("{ty:?}: {e}"));
}

fn event(m: &Message) -> (u32, FriendEvent) {
    (
        m.content_type,
        FriendEvent::decode(m.content.clone()).expect("a FriendEvent"),
    )
}

async fn list(d: &Device) -> Vec<(u64, FriendState, String)> {
    let l: FriendList = call(d, FrameType::FriendList, &FriendListRequest::default())
        .await
        .unwrap();
    l.friends
        .into_iter()
        .map(|f| {
            (
                f.profile.unwrap().user_id,
                FriendState::try_from(f.state).unwrap(),
                f.remark,
            )
        })
        .collect()
}

async fn the_friend_flow_reaches_every_device_live_and_by_sync(shape: Shape) {
    let server = shape
        .start_with(Default::default(), LogicConfig::default())
        .await; // friends_only
    let mut alice = register(server.addr(), "alice").await;
    let mut alice2 = login(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;
    let carol = register(server.addr(), "carol").await;
    let carol_creds = carol.creds();
    drop(carol); // offline: catches up by SYNC

    // Not friends yet: the default policy refuses.
    let err = alice
        .client
        .send_text(bob.user_id, "hi", "1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFriends));

    // alice -> bob request: both of alice's devices and bob see it.
    let _: Empty = call(
        &alice,
        FrameType::FriendRequest,
        &FriendRequest {
            user_id: bob.user_id,
            message: "it's alice".into(),
        },
    )
    .await
    .unwrap();
    let alice_id = alice.user_id;
    for d in [&mut alice, &mut alice2, &mut bob] {
        let (kind, e) = event(&d.next_push().await);
        assert_eq!(
            (kind, e.from_user_id, e.message.as_str()),
            (Sys::FriendRequested as u32, alice_id, "it's alice")
        );
    }
    assert_eq!(
        list(&bob).await,
        [(alice.user_id, FriendState::Pending, String::new())]
    );
    assert_eq!(
        list(&alice).await,
        [(bob.user_id, FriendState::Requested, String::new())]
    );
    // Asking twice is a conflict and changes nothing.
    let again = call::<Empty>(
        &alice,
        FrameType::FriendRequest,
        &FriendRequest {
            user_id: bob.user_id,
            message: String::new(),
        },
    )
    .await;
    assert_eq!(again.unwrap_err().code(), Some(Code::Conflict));

    ok(&bob, FrameType::FriendAccept, alice.user_id).await;
    for d in [&mut alice, &mut alice2, &mut bob] {
        assert_eq!(event(&d.next_push().await).0, Sys::FriendAccepted as u32);
    }
    // Friends now: they can talk.
    alice
        .client
        .send_text(bob.user_id, "hello friend", "2")
        .await
        .unwrap();
    assert_eq!(text(&bob.next_push().await), "hello friend");

    // alice -> carol (offline), carol declines later.
    let _: Empty = call(
        &alice,
        FrameType::FriendRequest,
        &FriendRequest {
            user_id: carol_creds.user_id,
            message: String::new(),
        },
    )
    .await
    .unwrap();
    let (mut carol, _) = sign_in(server.addr(), &carol_creds).await;
    let synced = carol.client.sync_all(0).await.unwrap();
    assert_eq!(synced.len(), 1);
    assert_eq!(
        event(&synced[0]),
        (
            Sys::FriendRequested as u32,
            FriendEvent {
                from_user_id: alice.user_id,
                to_user_id: carol.user_id,
                message: String::new()
            }
        )
    );
    ok(&carol, FrameType::FriendDecline, alice.user_id).await;
    assert_eq!(
        event(&carol.next_push().await).0,
        Sys::FriendDeclined as u32
    );
    assert!(
        list(&carol).await.is_empty(),
        "a declined request leaves no relation"
    );

    // Remark: only alice's own devices learn it.
    let _: Empty = call(
        &alice,
        FrameType::FriendSetRemark,
        &FriendRemark {
            user_id: bob.user_id,
            remark: "Bobby".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        list(&alice).await,
        [(bob.user_id, FriendState::Accepted, "Bobby".into())]
    );

    // Unfriend: both sides learn it and the policy applies again.
    ok(&bob, FrameType::FriendDelete, alice.user_id).await;
    let err = alice
        .client
        .send_text(bob.user_id, "still there?", "3")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFriends));

    // Every device of alice converges by SYNC alone to the same list.
    let a1 = alice.client.sync_all(0).await.unwrap();
    let a2 = alice2.client.sync_all(0).await.unwrap();
    let kinds: Vec<u32> = a1.iter().map(|m| m.content_type).collect();
    assert_eq!(
        kinds,
        [
            Sys::FriendRequested as u32, // to bob
            Sys::FriendAccepted as u32,
            1,                           // "hello friend"
            Sys::FriendRequested as u32, // to carol
            Sys::FriendDeclined as u32,
            Sys::FriendRemarkSet as u32,
            Sys::FriendDeleted as u32,
        ]
    );
    assert_eq!(
        a1.iter().map(|m| (m.seq, m.id.clone())).collect::<Vec<_>>(),
        a2.iter().map(|m| (m.seq, m.id.clone())).collect::<Vec<_>>()
    );
    let bob_kinds = list_kinds(&bob).await;
    assert_eq!(
        bob_kinds,
        [
            Sys::FriendRequested as u32,
            Sys::FriendAccepted as u32,
            1,
            Sys::FriendDeleted as u32
        ],
        "bob never sees alice's remark or her other requests"
    );
    server.stop().await;
}

async fn a_block_stops_requests_and_messages_and_tells_the_blocked_no_more_than_an_unfriend(
    shape: Shape,
) {
    let server = shape.start_with(Default::default(), open_logic()).await; // even with the open policy
    let mut alice = register(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;
    befriend(&mut alice, &mut bob).await;

    ok(&bob, FrameType::FriendBlock, alice.user_id).await;
    // The friendship ends for the blocked user too, exactly as an unfriend
    // ends it: only BLOCKED answers tell them of the block.
    assert!(list(&alice).await.is_empty());
    assert_eq!(event(&alice.next_push().await).0, Sys::FriendDeleted as u32);
    assert_eq!(event(&bob.next_push().await).0, Sys::FriendBlocked as u32);

    let err = alice
        .client
        .send_text(bob.user_id, "hey", "1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Blocked));
    let err = call::<Empty>(
        &alice,
        FrameType::FriendRequest,
        &FriendRequest {
            user_id: bob.user_id,
            message: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(Code::Blocked));
    // The blocker cannot message either while blocking.
    assert_eq!(
        bob.client
            .send_text(alice.user_id, "x", "2")
            .await
            .unwrap_err()
            .code(),
        Some(Code::Blocked)
    );

    // Alice's list holds no event of the block (the end of the friendship
    // reads as an unfriend), and nothing from the failed attempts.
    let kinds = list_kinds(&alice).await;
    assert_eq!(
        kinds,
        [
            Sys::FriendRequested as u32,
            Sys::FriendAccepted as u32,
            Sys::FriendDeleted as u32
        ]
    );
    assert_eq!(
        list(&bob).await,
        [(alice.user_id, FriendState::Blocked, String::new())]
    );

    ok(&bob, FrameType::FriendUnblock, alice.user_id).await;
    assert_eq!(event(&bob.next_push().await).0, Sys::FriendUnblocked as u32);
    // Strangers now: the friendship does not come back by itself.
    assert!(list(&bob).await.is_empty());
    assert!(list(&alice).await.is_empty());
    // Unblocked under the open policy: strangers may message each other.
    alice
        .client
        .send_text(bob.user_id, "back", "3")
        .await
        .unwrap();
    assert_eq!(text(&bob.next_push().await), "back");
    server.stop().await;
}

async fn bad_friend_commands_change_nothing(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    let cases: Vec<(FrameType, Vec<u8>, Code)> = vec![
        (
            FrameType::FriendRequest,
            FriendRequest {
                user_id: alice.user_id,
                message: String::new(),
            }
            .encode_to_vec(),
            Code::BadRequest,
        ),
        (
            FrameType::FriendRequest,
            FriendRequest {
                user_id: 999_999,
                message: String::new(),
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendRequest,
            FriendRequest {
                user_id: bob.user_id,
                message: "x".repeat(257),
            }
            .encode_to_vec(),
            Code::BadRequest,
        ),
        (
            FrameType::FriendAccept,
            FriendTarget {
                user_id: bob.user_id,
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendDecline,
            FriendTarget {
                user_id: bob.user_id,
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendDelete,
            FriendTarget {
                user_id: bob.user_id,
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendUnblock,
            FriendTarget {
                user_id: bob.user_id,
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendSetRemark,
            FriendRemark {
                user_id: bob.user_id,
                remark: "r".into(),
            }
            .encode_to_vec(),
            Code::NotFound,
        ),
        (
            FrameType::FriendSetRemark,
            FriendRemark {
                user_id: bob.user_id,
                remark: "r".repeat(65),
            }
            .encode_to_vec(),
            Code::BadRequest,
        ),
        (FrameType::FriendList, vec![0xff], Code::BadRequest),
    ];
    for (i, (ty, body, want)) in cases.into_iter().enumerate() {
        let reply = alice
            .client
            .raw_request(ty.as_u16(), body.into())
            .await
            .unwrap();
        assert_eq!(
            Code::from_i32(reply.code),
            Some(want),
            "case {i} ({ty:?}): {}",
            reply.message
        );
    }
    assert!(list(&alice).await.is_empty());
    assert_eq!(
        alice.client.sync(0, 0).await.unwrap().max_seq,
        0,
        "no events"
    );
    assert_eq!(bob.client.sync(0, 0).await.unwrap().max_seq, 0);
    server.stop().await;
}

/// Two users asking each other at the same moment end as friends either
/// way round: the second request finds the first and accepts it. In a
/// cluster the two requests run on different logic nodes against MySQL
/// (READ COMMITTED), where only the pair lock keeps them from both
/// creating a request.
async fn crossing_requests_end_as_friends_on_both_sides(shape: Shape) {
    let server = shape
        .start_with(Default::default(), LogicConfig::default())
        .await;
    let mut pairs = Vec::new();
    for i in 0..8 {
        let a = register(server.addr(), &format!("xa{i}")).await;
        let b = register(server.addr(), &format!("xb{i}")).await;
        pairs.push((a, b));
    }
    let races = pairs.iter().map(|(a, b)| async move {
        let ask = |from: &Device, to: u64| {
            let client = from.client.clone();
            async move {
                client
                    .request::<Empty>(
                        FrameType::FriendRequest,
                        &FriendRequest {
                            user_id: to,
                            message: String::new(),
                        },
                    )
                    .await
            }
        };
        let (x, y) = tokio::join!(ask(a, b.user_id), ask(b, a.user_id));
        x.expect("a's request");
        y.expect("b's request");
    });
    futures::future::join_all(races).await;
    for (a, b) in &pairs {
        assert_eq!(
            list(a).await,
            [(b.user_id, FriendState::Accepted, String::new())]
        );
        assert_eq!(
            list(b).await,
            [(a.user_id, FriendState::Accepted, String::new())]
        );
        for d in [a, b] {
            let kinds = list_kinds(d).await;
            assert_eq!(
                kinds,
                [Sys::FriendRequested as u32, Sys::FriendAccepted as u32],
                "one request, one acceptance in every list"
            );
        }
    }
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)] crossing_requests_end_as_friends_on_both_sides,
    #[tokio::test] the_friend_flow_reaches_every_device_live_and_by_sync,
    #[tokio::test] a_block_stops_requests_and_messages_and_tells_the_blocked_no_more_than_an_unfriend,
    #[tokio::test] bad_friend_commands_change_nothing,
}
