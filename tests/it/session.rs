//! The SDK's [`Session`] over connections that get cut: it reconnects by
//! itself, resyncs, and the app sees every list entry exactly once, in
//! order; its sends survive the cut too.

use std::time::Duration;

use tern_client::proto::{ConvType, Message, SendRequest};
use tern_client::{Credentials, Session, SessionEvent, SessionOptions};

use crate::common::proxy::Proxy;
use crate::common::*;

fn options() -> SessionOptions {
    SessionOptions {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        tls: None,
        conversations: false,
    }
}

/// Events until `n` messages arrived; the messages and how many times the
/// session reconnected meanwhile.
async fn messages(
    events: &mut tokio::sync::mpsc::Receiver<SessionEvent>,
    n: usize,
) -> (Vec<Message>, usize) {
    let mut got = Vec::new();
    let mut reconnects = 0;
    while got.len() < n {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} messages, then nothing", got.len()))
            .expect("session running");
        match event {
            SessionEvent::Message(m) => got.push(m),
            SessionEvent::Disconnected => reconnects += 1,
            SessionEvent::Ended(why) => panic!("session ended: {why}"),
            SessionEvent::Connected(_)
            | SessionEvent::Room(_)
            | SessionEvent::TokenRefreshed { .. } => {}
        }
    }
    (got, reconnects)
}

/// Closes `bob`'s own connection and keeps its device signed in through a
/// Session on `addrs`, once it is connected to the first of them.
async fn take_over(bob: Device, addrs: Vec<std::net::SocketAddr>) -> (Session, Receiver) {
    let creds = Credentials {
        user_id: bob.user_id,
        device_id: bob.device_id,
        token: bob.token.clone(),
    };
    drop(bob);
    let first = addrs[0];
    let (session, mut events) = Session::start(addrs, creds, 0, options());
    match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
        Some(SessionEvent::Connected(addr)) => assert_eq!(addr, first),
        other => panic!("expected Connected, got {other:?}"),
    }
    (session, events)
}

type Receiver = tokio::sync::mpsc::Receiver<SessionEvent>;

/// Alice sends `m0`..`m{n-1}` to `to`, calling `after(i)` after each send.
async fn alice_sends(alice: &Device, to: u64, n: usize, mut after: impl FnMut(usize)) {
    for i in 0..n {
        alice
            .client
            .send_text(to, &format!("m{i}"), &format!("a{i}"))
            .await
            .expect("alice sends");
        after(i);
    }
}

fn assert_in_order_once(list: &[Message], first_seq: u64) {
    let seqs: Vec<u64> = list.iter().map(|m| m.seq).collect();
    let want: Vec<u64> = (first_seq..first_seq + list.len() as u64).collect();
    assert_eq!(seqs, want, "every seq once, ascending");
}

async fn a_cut_session_reconnects_resyncs_and_loses_nothing(shape: Shape) {
    let server = shape.start().await;
    let proxy = Proxy::start(server.addr()).await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    let bob_id = bob.user_id;
    let (session, mut events) = take_over(bob, vec![proxy.addr]).await;

    let n = 60;
    alice_sends(&alice, bob_id, n, |i| {
        if i == 20 || i == 40 {
            proxy.cut();
        }
    })
    .await;
    let (got, reconnects) = messages(&mut events, n).await;
    assert!(reconnects >= 1, "the cuts were not noticed");
    assert_in_order_once(&got, got[0].seq);
    let texts: Vec<String> = got.iter().map(text).collect();
    let want: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want);

    // Sends through the session survive a cut, and land once.
    for i in 0..5 {
        let req = SendRequest {
            conv_type: ConvType::User as i32,
            conv_id: alice.user_id,
            content_type: 1,
            content: format!("b{i}").into_bytes().into(),
            client_msg_id: format!("b{i}"),
            mentions: vec![],
        };
        if i == 2 {
            proxy.cut();
        }
        session.send(req).await.expect("send across a cut");
    }
    // Bob's own messages come to his stream too, in seq order.
    let (own, _) = messages(&mut events, 5).await;
    assert_in_order_once(&own, got.last().unwrap().seq + 1);
    let list = alice.client.sync_all(0).await.unwrap();
    let from_bob: Vec<String> = list
        .iter()
        .filter(|m| m.sender_id != alice.user_id)
        .map(text)
        .collect();
    assert_eq!(
        from_bob,
        ["b0", "b1", "b2", "b3", "b4"],
        "each send stored once"
    );
    drop(session);
    server.stop().await;
}

/// A connect node killed (SIGKILL) under a session: it moves to the other
/// node, resyncs, and the stream stays complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_survives_its_connect_node_being_killed() {
    use crate::common::procs::Proc;
    let services = Services::start().await;
    let _logic = Proc::logic(&services).await;
    let mut victim = Proc::connect(&services).await;
    let survivor = Proc::connect(&services).await;
    let alice = register(survivor.addr, "alice").await;
    let bob = register(victim.addr, "bob").await;
    let bob_id = bob.user_id;
    let (_session, mut events) = take_over(bob, vec![victim.addr, survivor.addr]).await;
    let n = 40;
    alice_sends(&alice, bob_id, n, |i| {
        if i == 15 {
            victim.kill();
        }
    })
    .await;
    let (got, reconnects) = messages(&mut events, n).await;
    assert!(reconnects >= 1, "the kill was not noticed");
    assert_in_order_once(&got, got[0].seq);
    let texts: Vec<String> = got.iter().map(text).collect();
    let want: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want);
}

/// The session's conversation view follows messages, reads on another
/// device, a recall and cuts of the connection, and ends equal to the
/// server's index.
async fn the_conversation_view_stays_right_across_cuts(shape: Shape) {
    let server = shape.start().await;
    let proxy = Proxy::start(server.addr()).await;
    let alice = register(server.addr(), "alice").await;
    let cat = register(server.addr(), "cat").await;
    let bob = register(server.addr(), "bob").await;
    let bob2 = login(server.addr(), "bob").await;
    let bob_id = bob.user_id;
    // Before the session: one conversation the view loads.
    cat.client.send_text(bob_id, "c0", "c0").await.unwrap();
    let creds = Credentials {
        user_id: bob.user_id,
        device_id: bob.device_id,
        token: bob.token.clone(),
    };
    drop(bob);
    let opts = SessionOptions {
        conversations: true,
        ..options()
    };
    let (session, mut events) = Session::start(vec![proxy.addr], creds, 0, opts);
    let (seen, _) = messages(&mut events, 1).await;
    assert_eq!(seen[0].seq, 1);
    let with_cat = session.conversation(ConvType::User, cat.user_id).unwrap();
    assert_eq!(
        with_cat.unread, 1,
        "loaded, and the synced entry not counted twice"
    );

    let mut sent = Vec::new();
    for i in 0..6 {
        let (text, cmid) = (format!("m{i}"), format!("a{i}"));
        sent.push(alice.client.send_text(bob_id, &text, &cmid).await.unwrap());
        if i == 2 {
            proxy.cut();
        }
    }
    messages(&mut events, 6).await;
    let with_alice = session.conversation(ConvType::User, alice.user_id).unwrap();
    assert_eq!(
        (with_alice.unread, with_alice.last_seq),
        (6, 7),
        "{with_alice:?}"
    );
    assert_eq!(session.total_unread(), 7);

    // Read on bob's other device: the view learns it from the list.
    bob2.client
        .mark_read(ConvType::User, alice.user_id, 5)
        .await
        .unwrap();
    messages(&mut events, 1).await;
    let with_alice = session.conversation(ConvType::User, alice.user_id).unwrap();
    assert_eq!((with_alice.read_seq, with_alice.unread), (5, 2));

    // A recall after the read position stops counting, across a cut.
    proxy.cut();
    alice
        .client
        .recall(sent[5].message_id.clone())
        .await
        .unwrap();
    messages(&mut events, 1).await;
    let with_alice = session.conversation(ConvType::User, alice.user_id).unwrap();
    assert_eq!(with_alice.unread, 1, "{with_alice:?}");

    // The view is the server's index.
    let server_view = bob2.client.conv_list(None, 0).await.unwrap();
    let mine = session.conversations();
    assert_eq!(mine.len(), server_view.conversations.len());
    for (v, s) in mine.iter().zip(&server_view.conversations) {
        assert_eq!(
            (v.conv_id, v.last_seq, v.unread, v.mentions, v.read_seq),
            (s.conv_id, s.last_seq, s.unread, s.mentions, s.read_seq),
            "{v:?} vs {s:?}"
        );
    }
    assert_eq!(session.total_unread(), server_view.total_unread);
    drop(session);
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] a_cut_session_reconnects_resyncs_and_loses_nothing,
    #[tokio::test] the_conversation_view_stays_right_across_cuts,
}

/// `reconnect` (an app's answer to a network change) drops the connection
/// and signs in again at once on the next address; what arrived meanwhile
/// follows in order.
#[tokio::test]
async fn reconnect_moves_the_session_to_the_next_address_at_once() {
    let server = start().await;
    let proxy = Proxy::start(server.addr()).await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    let bob_id = bob.user_id;
    let (session, mut events) = take_over(bob, vec![server.addr(), proxy.addr]).await;
    alice_sends(&alice, bob_id, 3, |_| {}).await;
    let (first, _) = messages(&mut events, 3).await;

    session.reconnect();
    let mut seen = Vec::new();
    let moved_to = loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("the session reconnects in time")
            .expect("session running");
        match event {
            SessionEvent::Connected(addr) => break addr,
            other => seen.push(format!("{other:?}")),
        }
    };
    assert_eq!(moved_to, proxy.addr, "the next address, after {seen:?}");
    assert!(
        seen.iter().any(|e| e.starts_with("Disconnected")),
        "{seen:?}"
    );

    for i in 3..6 {
        let id = format!("a{i}");
        alice.client.send_text(bob_id, "later", &id).await.unwrap();
    }
    let (after, _) = messages(&mut events, 3).await;
    let all: Vec<Message> = first.into_iter().chain(after).collect();
    assert_in_order_once(&all, all[0].seq);
    drop(session);
    server.stop().await;
}
