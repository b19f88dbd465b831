//! Group commit: many sends share a transaction, and duplicates inside one
//! batch settle to one stored message. On SQLite and on MariaDB.

use std::sync::Arc;
use std::time::Duration;

use super::{Batcher, Outcome};
use crate::fanout;
use crate::presence::MemoryPresence;
use crate::store::{NewUser, Store};
use crate::tasks::Stage;
use crate::LogicConfig;
use tern_public::bus::{MemoryBus, Subjects};

crate::store::tests::on_both_engines!(
    concurrent_sends_share_transactions,
    a_duplicate_client_msg_id_inside_one_batch_is_stored_once,
);

async fn setup(store: &Store, linger: Duration, users: usize) -> (Batcher, Vec<u64>) {
    let (batcher, ids, _never_stopped) = setup_on(store, linger, users).await;
    (batcher, ids)
}

/// A batcher and fan-out on their own stage, and `users` users.
async fn setup_on(store: &Store, linger: Duration, users: usize) -> (Batcher, Vec<u64>, Stage) {
    let mut ids = Vec::new();
    for i in 0..users {
        let name = format!("user{i}");
        ids.push(
            store
                .create_user(NewUser {
                    username: &name,
                    password_hash: "h",
                    nickname: "",
                    now_ms: 1,
                })
                .await
                .unwrap(),
        );
    }
    let stage = Stage::default();
    let fanout = fanout::start(
        Arc::new(MemoryPresence::new()),
        Arc::new(MemoryBus::new()),
        Subjects::default(),
        Default::default(),
        None,
        &stage,
    );
    let cfg = LogicConfig {
        batch_linger: linger,
        ..Default::default()
    };
    (
        Batcher::start(store.clone(), fanout, &cfg, &stage),
        ids,
        stage,
    )
}

async fn concurrent_sends_share_transactions(store: Store) {
    let (batcher, ids) = setup(&store, Duration::from_millis(20), 21).await;
    let receiver = ids[0];
    let sends = ids[1..].iter().map(|&sender| {
        let b = batcher.clone();
        let msg = crate::store::messages::test_message(sender, receiver, None);
        async move { b.submit(Arc::new(msg)).await }
    });
    let outcomes = futures::future::join_all(sends).await;
    let mut receiver_seqs: Vec<u64> = outcomes
        .into_iter()
        .map(|o| match o.unwrap() {
            Outcome::Stored { seqs } => seqs[1],
            other => panic!("{other:?}"),
        })
        .collect();
    receiver_seqs.sort_unstable();
    assert_eq!(receiver_seqs, (1..=20).collect::<Vec<_>>());
    let (batches, messages) = batcher.committed();
    assert_eq!(messages, 20);
    assert!(
        batches < messages,
        "{batches} batches for {messages} messages: no group commit"
    );
    assert_eq!(store.max_seq(receiver).await.unwrap(), 20);
}

async fn a_duplicate_client_msg_id_inside_one_batch_is_stored_once(store: Store) {
    let (batcher, ids) = setup(&store, Duration::from_millis(50), 2).await;
    let (a, b) = (ids[0], ids[1]);
    let first = crate::store::messages::test_message(a, b, Some("same"));
    let second = crate::store::messages::test_message(a, b, Some("same"));
    let (x, y) = tokio::join!(
        batcher.submit(Arc::new(first)),
        batcher.submit(Arc::new(second))
    );
    let (stored, dup) = match (x.unwrap(), y.unwrap()) {
        (Outcome::Stored { seqs }, Outcome::Duplicate(d))
        | (Outcome::Duplicate(d), Outcome::Stored { seqs }) => (seqs, d),
        other => panic!("expected one stored and one duplicate, got {other:?}"),
    };
    assert_eq!(
        dup.sender_seq, stored[0],
        "the duplicate answers with the first send's seq"
    );
    assert_eq!(store.max_seq(b).await.unwrap(), 1, "stored once");
    assert_eq!(store.max_seq(a).await.unwrap(), 1);
}

#[tokio::test]
async fn a_stopping_batcher_answers_every_send_it_holds_and_refuses_later_ones() {
    let (store, _guard) = crate::store::tests::sqlite().await;
    let (batcher, ids, stage) = setup_on(&store, Duration::from_millis(100), 6).await;
    let receiver = ids[0];
    let sends: Vec<_> = ids[1..]
        .iter()
        .map(|&sender| {
            let b = batcher.clone();
            let msg = crate::store::messages::test_message(sender, receiver, None);
            tokio::spawn(async move { b.submit(Arc::new(msg)).await })
        })
        .collect();
    // Queued, and the first batch lingering for more.
    tokio::time::sleep(Duration::from_millis(20)).await;
    stage.stop().await;
    for send in sends {
        let outcome = send.await.unwrap();
        assert!(matches!(outcome, Ok(Outcome::Stored { .. })), "{outcome:?}");
    }
    assert_eq!(store.max_seq(receiver).await.unwrap(), 5);
    let late = crate::store::messages::test_message(ids[1], receiver, None);
    assert!(batcher.submit(Arc::new(late)).await.is_err());
}
