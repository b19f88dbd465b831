//! The after-send webhook's outbox on both engines.

use std::sync::Arc;

use super::messages::test_message;
use super::tests::{on_both_engines, users};
use super::*;

on_both_engines!(
    appends_queue_their_messages_only_while_recording,
    one_node_holds_the_lease_at_a_time,
);

async fn appends_queue_their_messages_only_while_recording(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let first = test_message(a, b, None);
    s.append(vec![Arc::new(first)]).await.unwrap().unwrap();
    assert_eq!(s.webhook_depth().await.unwrap().0, 0, "not recording");

    s.record_after_send(true);
    let batched: Vec<NewMessage> = (0..3).map(|_| test_message(a, b, None)).collect();
    let sent_ids: Vec<Vec<u8>> = batched.iter().map(|m| m.id.to_vec()).collect();
    s.append(batched.into_iter().map(Arc::new).collect())
        .await
        .unwrap()
        .unwrap();
    // The transaction path records too (system events take it).
    let event = test_message(b, a, None);
    let event_id = event.id.to_vec();
    let mut tx = s.begin_write().await.unwrap();
    s.append_in(&mut tx, &[&event]).await.unwrap().unwrap();
    s.commit(tx).await.unwrap();

    let queued = s.webhook_batch(10).await.unwrap();
    let got: Vec<Vec<u8>> = queued.iter().map(|q| q.entry.message.id.clone()).collect();
    let mut want = sent_ids.clone();
    want.push(event_id);
    assert_eq!(got, want, "in commit order");
    assert!(queued.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!((queued[0].conv_type, queued[0].receiver_id), (1, b));
    assert_eq!(queued[0].entry.message.content, b"hi");

    assert!(s.webhook_lease("n1", 70, 1000).await.unwrap());
    let head = [queued[0].id, queued[1].id];
    s.webhook_delivered("n1", &head, 77).await.unwrap();
    assert_eq!(s.webhook_depth().await.unwrap().0, 2);
    assert_eq!(s.webhook_state().await.unwrap().last_success_at, 77);
    // A node without the lease records nothing.
    s.webhook_delivered("n2", &[], 99).await.unwrap();
    assert_eq!(s.webhook_state().await.unwrap().last_success_at, 77);
    assert_eq!(s.webhook_drop_before(i64::MAX).await.unwrap(), 2);
    s.record_after_send(false);
}

async fn one_node_holds_the_lease_at_a_time(s: Store) {
    assert!(s.webhook_lease("n1", 100, 200).await.unwrap());
    assert!(!s.webhook_lease("n2", 150, 250).await.unwrap(), "held");
    assert!(s.webhook_lease("n1", 150, 250).await.unwrap(), "renewed");
    assert!(s.webhook_lease("n2", 251, 300).await.unwrap(), "expired");
    s.webhook_failed("n2", 400, "503 from the hook")
        .await
        .unwrap();
    s.webhook_failed("n1", 900, "stale").await.unwrap();
    let st = s.webhook_state().await.unwrap();
    assert_eq!(
        (st.holder.as_str(), st.attempts, st.next_attempt_at),
        ("n2", 1, 400)
    );
    assert_eq!(st.last_error, "503 from the hook");
    assert!(s.webhook_rotate("", "new", "old", 999).await.unwrap());
    let raced = s.webhook_rotate("", "newer", "old", 999).await.unwrap();
    assert!(!raced, "another rotation came first");
    let st = s.webhook_state().await.unwrap();
    assert_eq!(
        (st.secret.as_str(), st.prev_secret.as_str(), st.prev_until),
        ("new", "old", 999)
    );
}
