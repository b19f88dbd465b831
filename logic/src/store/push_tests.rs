//! Push tokens, cursors and the outbox on both engines.

use std::sync::Arc;

use super::messages::test_message;
use super::tests::{on_both_engines, users};
use super::*;
use crate::domain::PushProvider;
use crate::store::push_outbox_kinds::WITHDRAW;

on_both_engines!(
    the_first_token_starts_the_cursor_at_the_head,
    planning_moves_the_cursor_once_and_writes_each_row_once,
    the_sweep_reads_every_cursor_a_page_at_a_time,
    a_claim_is_a_lease,
    a_claim_removes_its_answered_rows_at_once,
    concurrent_claims_take_disjoint_rows,
    a_signed_out_device_leaves_its_rows_without_a_token,
    a_withdrawal_replaces_its_pending_alert,
);

/// An FCM token of `device_id`'s (also the push sender's tests).
pub(crate) fn token(user_id: u64, device_id: u64, token: &str) -> PushToken {
    PushToken {
        device_id,
        user_id,
        provider: PushProvider::Fcm,
        token: token.into(),
        apns_topic: String::new(),
        apns_sandbox: false,
        updated_at: 1,
    }
}

/// A signed-in device of `user_id`'s (also the push sender's tests).
pub(crate) async fn device(s: &Store, user_id: u64) -> u64 {
    s.create_device(NewDevice {
        user_id,
        platform: "test",
        model: "",
        os_version: "",
        app_version: "",
        token_hash: "signed-in",
        token_expires_at: i64::MAX,
        now_ms: 1,
    })
    .await
    .unwrap()
}

/// A notification row on a clock of its own, created at 10 ms and expiring
/// at 1,000,000 ms after the epoch (the push sender's tests move both to now).
pub(crate) fn row(user_id: u64, device_id: u64, message_id: &str, seq: u64) -> OutboxRow {
    OutboxRow {
        user_id,
        device_id,
        message_id: message_id.into(),
        kind: 1,
        title: "t".into(),
        body: "b".into(),
        badge: 1,
        conv_type: 1,
        conv_id: 9,
        seq,
        created_at: 10,
        expires_at: 1_000_000,
    }
}

async fn send(s: &Store, from: u64, to: u64, n: usize) {
    let msgs = (0..n)
        .map(|_| Arc::new(test_message(from, to, None)))
        .collect();
    s.append(msgs).await.unwrap().unwrap();
}

async fn the_first_token_starts_the_cursor_at_the_head(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    send(&s, a, b, 3).await;
    assert_eq!(s.push_cursor(b).await.unwrap(), None, "no token, no cursor");
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    assert_eq!(s.push_cursor(b).await.unwrap(), Some((3, 3)));
    assert_eq!(s.push_cursor_users(&[a, b]).await.unwrap(), [b]);
    send(&s, a, b, 2).await;
    assert_eq!(s.push_cursor(b).await.unwrap(), Some((3, 5)));
    assert_eq!(s.push_lagging(0, 10).await.unwrap(), (vec![b], None));
    // A second device's token does not skip what is not planned yet.
    let tablet = device(&s, b).await;
    s.set_push_token(&token(b, tablet, "t2")).await.unwrap();
    assert_eq!(s.push_cursor(b).await.unwrap(), Some((3, 5)));
    let tokens = s.push_tokens_of(b).await.unwrap();
    assert_eq!(tokens.len(), 2);
}

async fn planning_moves_the_cursor_once_and_writes_each_row_once(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 2).await;
    let rows = [row(b, phone, "m1", 1), row(b, phone, "m2", 2)];
    assert!(s.plan_push(b, 0, 2, &rows).await.unwrap());
    // Another planner that read the cursor at 0 writes nothing.
    assert!(!s.plan_push(b, 0, 2, &rows).await.unwrap());
    assert_eq!(s.push_cursor(b).await.unwrap(), Some((2, 2)));
    assert_eq!(s.push_outbox_depth().await.unwrap(), 2);
    // The same (device, message, kind) is never queued twice.
    send(&s, a, b, 1).await;
    let again = [row(b, phone, "m2", 2), row(b, phone, "m3", 3)];
    assert!(s.plan_push(b, 2, 3, &again).await.unwrap());
    assert_eq!(s.push_outbox_depth().await.unwrap(), 3);
    assert_eq!(s.push_lagging(0, 10).await.unwrap(), (vec![], None));
}

async fn the_sweep_reads_every_cursor_a_page_at_a_time(s: Store) {
    let ids = users(&s, &["a", "u1", "u2", "u3", "u4", "u5"]).await;
    let (a, with_cursor) = (ids[0], &ids[1..]);
    for &u in with_cursor {
        let phone = device(&s, u).await;
        s.set_push_token(&token(u, phone, &format!("t{u}")))
            .await
            .unwrap();
    }
    // u2, u4 and u5 have entries not planned yet; a has no cursor.
    for &u in [with_cursor[1], with_cursor[3], with_cursor[4]].iter() {
        send(&s, a, u, 1).await;
    }
    let page = |after| s.push_lagging(after, 2);
    let (found, next) = page(0).await.unwrap();
    assert_eq!((found, next), (vec![with_cursor[1]], Some(with_cursor[1])));
    let (found, next) = page(with_cursor[1]).await.unwrap();
    assert_eq!((found, next), (vec![with_cursor[3]], Some(with_cursor[3])));
    // The last page, short: the sweep starts over after it.
    let (found, next) = page(with_cursor[3]).await.unwrap();
    assert_eq!((found, next), (vec![with_cursor[4]], None));
    // A full last page is followed by an empty one.
    let (found, next) = s.push_lagging(0, 5).await.unwrap();
    assert_eq!(found, [with_cursor[1], with_cursor[3], with_cursor[4]]);
    assert_eq!(next, Some(with_cursor[4]));
    assert_eq!(
        s.push_lagging(with_cursor[4], 5).await.unwrap(),
        (vec![], None)
    );
}

async fn a_claim_removes_its_answered_rows_at_once(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 3).await;
    let rows = [
        row(b, phone, "m1", 1),
        row(b, phone, "m2", 2),
        row(b, phone, "m3", 3),
    ];
    assert!(s.plan_push(b, 0, 3, &rows).await.unwrap());
    let claimed = s.claim_push(10, 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // Two answered for good; the third scheduled again.
    s.push_retry_at(claimed[2].id, 100, 50).await.unwrap();
    s.push_done(&[claimed[0].id, claimed[1].id], 100)
        .await
        .unwrap();
    assert_eq!(s.push_outbox_depth().await.unwrap(), 1);
    let left = s.claim_push(50, 200, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|c| c.id).collect::<Vec<_>>(),
        [claimed[2].id]
    );
    // An old claim's answer removes nothing of the new one's.
    s.push_done(&[claimed[2].id], 100).await.unwrap();
    assert_eq!(s.push_outbox_depth().await.unwrap(), 1);
    s.push_done(&[], 200).await.unwrap();
    s.push_done(&[left[0].id], 200).await.unwrap();
    assert_eq!(s.push_outbox_depth().await.unwrap(), 0);
}

async fn a_claim_is_a_lease(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 1).await;
    assert!(s
        .plan_push(b, 0, 1, &[row(b, phone, "m1", 1)])
        .await
        .unwrap());
    let claimed = s.claim_push(10, 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.attempts, c.row.seq), (1, 1));
    assert_eq!(c.token.as_ref().map(|t| t.token.as_str()), Some("t1"));
    assert!(
        s.claim_push(99, 200, 10).await.unwrap().is_empty(),
        "leased"
    );
    // The holder died: after the lease another claim takes it.
    let again = s.claim_push(100, 200, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    // The first holder's answer no longer counts: the row is another's.
    s.push_retry_at(c.id, c.lease_until, 150).await.unwrap();
    s.push_done(&[c.id], c.lease_until).await.unwrap();
    assert_eq!(
        s.push_outbox_depth().await.unwrap(),
        1,
        "not the first holder's"
    );
    assert!(
        s.claim_push(199, 300, 10).await.unwrap().is_empty(),
        "still leased"
    );
    s.push_retry_at(again[0].id, again[0].lease_until, 500)
        .await
        .unwrap();
    assert!(s.claim_push(499, 600, 10).await.unwrap().is_empty());
    let last = s.claim_push(500, 600, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    s.push_done(&[last[0].id], last[0].lease_until)
        .await
        .unwrap();
    assert_eq!(s.push_outbox_depth().await.unwrap(), 0);
    // A dead token goes, unless the device registered another since.
    assert!(!s.push_token_rejected(phone, "old").await.unwrap());
    assert!(s.push_token_rejected(phone, "t1").await.unwrap());
    assert!(s.push_tokens_of(b).await.unwrap().is_empty());
}

async fn concurrent_claims_take_disjoint_rows(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 40).await;
    let rows: Vec<OutboxRow> = (1..=40)
        .map(|i| row(b, phone, &format!("m{i}"), i))
        .collect();
    assert!(s.plan_push(b, 0, 40, &rows).await.unwrap());
    let claims = (0..4).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.claim_push(10, 1000, 15).await.unwrap() })
    });
    let mut seen: Vec<u64> = Vec::new();
    for c in futures::future::join_all(claims).await {
        seen.extend(c.unwrap().iter().map(|c| c.row.seq));
    }
    let n = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n, "a row claimed twice");
    assert_eq!(n, 40, "every row claimed once");
}

async fn a_signed_out_device_leaves_its_rows_without_a_token(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 1).await;
    assert!(s
        .plan_push(b, 0, 1, &[row(b, phone, "m1", 1)])
        .await
        .unwrap());
    assert!(s.revoke_device(b, phone, 5).await.unwrap());
    let claimed = s.claim_push(10, 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].token.is_none(), "signed out: nothing to send to");
}

async fn a_withdrawal_replaces_its_pending_alert(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let phone = device(&s, b).await;
    s.set_push_token(&token(b, phone, "t1")).await.unwrap();
    send(&s, a, b, 4).await;
    let withdraw = |m: &str, seq| OutboxRow {
        kind: WITHDRAW,
        ..row(b, phone, m, seq)
    };
    // Never tried: the device showed nothing; both go.
    let rows = [row(b, phone, "m1", 1), row(b, phone, "m2", 2)];
    assert!(s.plan_push(b, 0, 2, &rows).await.unwrap());
    let tried = s.claim_push(10, 20, 1).await.unwrap();
    assert_eq!(tried[0].row.message_id, "m1");
    assert!(s
        .plan_push(b, 2, 4, &[withdraw("m2", 3), withdraw("m1", 4)])
        .await
        .unwrap());
    let left = s.claim_push(30, 40, 10).await.unwrap();
    let left: Vec<(String, i64)> = left
        .into_iter()
        .map(|c| (c.row.message_id, c.row.kind))
        .collect();
    assert_eq!(
        left,
        [("m1".to_owned(), WITHDRAW)],
        "m2's alert never left: nothing to withdraw; m1's may have: withdrawn, its alert gone"
    );
}
