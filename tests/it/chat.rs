//! One-to-one chat end to end over TCP against the standalone server.

use crate::common::*;
use tern_client::Code;

async fn two_users_exchange_messages_with_contiguous_seqs(shape: Shape) {
    let server = shape.start().await;
    let mut alice = register(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;

    let mut expected_seq = 0;
    for round in 0..3 {
        expected_seq += 1;
        let sent = alice
            .client
            .send_text(bob.user_id, &format!("a{round}"), &format!("a-{round}"))
            .await
            .unwrap();
        assert_eq!(sent.seq, expected_seq, "alice's own seq");
        let got = bob.next_push().await;
        assert_eq!(
            (got.seq, text(&got).as_str(), got.sender_id),
            (expected_seq, format!("a{round}").as_str(), alice.user_id)
        );
        assert_eq!(
            got.conv_id, alice.user_id,
            "bob sees the conversation with alice"
        );
        assert_eq!(
            &got.id[..],
            &sent.message_id[..],
            "one message id for both copies"
        );

        expected_seq += 1;
        let sent = bob
            .client
            .send_text(alice.user_id, &format!("b{round}"), &format!("b-{round}"))
            .await
            .unwrap();
        assert_eq!(sent.seq, expected_seq);
        let got = alice.next_push().await;
        assert_eq!((got.seq, text(&got)), (expected_seq, format!("b{round}")));
        assert_eq!(got.conv_id, bob.user_id);
    }

    for d in [&alice, &bob] {
        let list = d.client.sync_all(0).await.unwrap();
        let seqs: Vec<u64> = list.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>(), "no gaps, no duplicates");
        let texts: Vec<String> = list.iter().map(text).collect();
        assert_eq!(texts, ["a0", "b0", "a1", "b1", "a2", "b2"]);
    }
    server.stop().await;
}

async fn a_users_devices_share_one_list(shape: Shape) {
    let server = shape.start().await;
    let mut a = register(server.addr(), "carol").await;
    let mut b = login(server.addr(), "carol").await;
    assert_eq!(a.user_id, b.user_id);
    assert_ne!(a.device_id, b.device_id);
    let mut dave = register(server.addr(), "dave").await;

    // From device A: the seq is in the reply; device B gets it by PUSH.
    let sent = a
        .client
        .send_text(dave.user_id, "from A", "m1")
        .await
        .unwrap();
    let on_b = b.next_push().await;
    assert_eq!((on_b.seq, on_b.sender_device_id), (sent.seq, a.device_id));
    assert_eq!(&on_b.id[..], &sent.message_id[..]);
    assert_eq!(dave.next_push().await.seq, 1);

    // A gets no PUSH of its own message: the next thing A receives is dave's answer.
    dave.client
        .send_text(a.user_id, "to carol", "d1")
        .await
        .unwrap();
    let on_a = a.next_push().await;
    assert_eq!((text(&on_a).as_str(), on_a.seq), ("to carol", sent.seq + 1));
    assert_eq!(b.next_push().await.seq, sent.seq + 1);

    // A third device signing in later gets everything by SYNC.
    let c = login(server.addr(), "carol").await;
    let list = c.client.sync_all(0).await.unwrap();
    assert_eq!(
        list.iter().map(text).collect::<Vec<_>>(),
        ["from A", "to carol"]
    );
    assert_eq!(list.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    server.stop().await;
}

async fn an_offline_client_gets_everything_by_paged_sync(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "erin").await;
    let bob = register(server.addr(), "frank").await;
    let bob_id = bob.user_id;
    let bob_creds = bob.creds();
    drop(bob); // offline

    for i in 0..250 {
        alice
            .client
            .send_text(bob_id, &format!("m{i}"), &format!("c{i}"))
            .await
            .unwrap();
    }

    let (bob, session) = sign_in(server.addr(), &bob_creds).await;
    assert_eq!(session.max_seq, 250);
    let mut after = 0;
    let mut pages = Vec::new();
    loop {
        let page = bob.client.sync(after, 100).await.unwrap();
        assert_eq!(page.max_seq, 250);
        pages.push((page.messages.len(), page.has_more));
        for (i, m) in page.messages.iter().enumerate() {
            assert_eq!(
                m.seq,
                after + 1 + i as u64,
                "contiguous within and across pages"
            );
            assert_eq!(text(m), format!("m{}", m.seq - 1));
        }
        after = page.messages.last().map_or(after, |m| m.seq);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, [(100, true), (100, true), (50, false)]);
    server.stop().await;
}

async fn a_retried_send_returns_the_first_reply_and_stores_nothing(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "gina").await;
    let mut bob = register(server.addr(), "hank").await;
    let first = alice
        .client
        .send_text(bob.user_id, "once", "retry-me")
        .await
        .unwrap();
    let again = alice
        .client
        .send_text(bob.user_id, "once", "retry-me")
        .await
        .unwrap();
    assert_eq!(first, again, "same message_id, seq and time");
    // Also after a reconnect (a new connection retrying).
    let (alice2, _) = sign_in(server.addr(), &alice.creds()).await;
    assert_eq!(
        alice2
            .client
            .send_text(bob.user_id, "once", "retry-me")
            .await
            .unwrap(),
        first
    );

    assert_eq!(bob.next_push().await.seq, 1);
    let list = bob.client.sync_all(0).await.unwrap();
    assert_eq!(list.len(), 1, "stored once");
    assert_eq!(alice2.client.sync(0, 0).await.unwrap().max_seq, 1);
    // A different client_msg_id is a new message.
    assert_eq!(
        alice2
            .client
            .send_text(bob.user_id, "once", "other")
            .await
            .unwrap()
            .seq,
        2
    );
    // Refused now (blocked), a retry of the stored send still answers with
    // it; a new send is refused.
    bob.client.friend_block(alice.user_id).await.unwrap();
    assert_eq!(
        alice2
            .client
            .send_text(bob.user_id, "once", "retry-me")
            .await
            .unwrap(),
        first,
        "a retry after a block"
    );
    let refused = alice2
        .client
        .send_text(bob.user_id, "once", "new")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::Blocked), "{refused}");
    server.stop().await;
}

async fn ack_only_raises_and_is_reported_at_sign_in(shape: Shape) {
    let server = shape.start().await;
    let alice = register(server.addr(), "ivan").await;
    let bob = register(server.addr(), "judy").await;
    for i in 0..5 {
        alice
            .client
            .send_text(bob.user_id, "x", &format!("{i}"))
            .await
            .unwrap();
    }
    bob.client.ack(4).await.unwrap();
    bob.client.ack(2).await.unwrap();
    let err = bob.client.ack(6).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::BadRequest), "beyond the head: {err}");
    let (_bob2, session) = sign_in(server.addr(), &bob.creds()).await;
    assert_eq!((session.ack_seq, session.max_seq), (4, 5));
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] two_users_exchange_messages_with_contiguous_seqs,
    #[tokio::test] a_users_devices_share_one_list,
    #[tokio::test] an_offline_client_gets_everything_by_paged_sync,
    #[tokio::test] a_retried_send_returns_the_first_reply_and_stores_nothing,
    #[tokio::test] ack_only_raises_and_is_reported_at_sign_in,
}
