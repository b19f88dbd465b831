//! Conversation rows that lag their lists (`user_seqs.unindexed`): the
//! SQLite batch writer leaves them behind, and every reader and every
//! other writer folds the entries in first, so nothing reads a row that
//! is not exact.

use std::sync::Arc;

use super::messages::test_message;
use super::tests::{on_both_engines, users};
use super::*;

on_both_engines!(a_fold_rebuilds_the_rows_the_appends_wrote);

const USER: i32 = 1;

async fn append(s: &Store, msg: NewMessage) {
    s.append(vec![Arc::new(msg)]).await.unwrap().unwrap();
}

/// What the database holds for `user_id`: its `unindexed` count, and the
/// unread count of its row for the one-to-one conversation with `peer`
/// (None without a row), read without folding anything.
async fn raw(s: &Store, user_id: u64, peer: u64) -> (u64, Option<u64>) {
    let unindexed: i64 = sqlx::query_scalar("SELECT unindexed FROM user_seqs WHERE user_id = ?")
        .bind(user_id as i64)
        .fetch_one(s.pool())
        .await
        .unwrap();
    let unread: Option<i64> = sqlx::query_scalar(
        "SELECT unread FROM conversations WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
    )
    .bind(user_id as i64)
    .bind(i64::from(USER))
    .bind(peer as i64)
    .fetch_optional(s.pool())
    .await
    .unwrap();
    (unindexed as u64, unread.map(|u| u as u64))
}

/// Every row of `user_id`, as (conv_id, last_seq, change_seq, unread, mentions).
async fn rows(s: &Store, user_id: u64) -> Vec<(u64, u64, u64, u64, u64)> {
    let page = s.conversations_page(user_id, None, 100).await.unwrap();
    let mut rows: Vec<_> = page
        .iter()
        .map(|c| (c.conv_id, c.last_seq, c.change_seq, c.unread, c.mentions))
        .collect();
    rows.sort_unstable();
    rows
}

/// `user_id`'s one-to-one conversation with `peer`.
fn one_to_one(user_id: u64, peer: u64) -> conversations::ConvKey {
    conversations::ConvKey {
        user_id,
        conv_type: USER,
        conv_id: peer,
    }
}

/// The seqs of the newest page of `user_id`'s conversation with `peer`.
async fn history(s: &Store, user_id: u64, peer: u64) -> Vec<u64> {
    let page = s
        .history(user_id, USER, peer, 0, 10)
        .await
        .unwrap()
        .unwrap();
    page.entries.iter().map(|e| e.seq).collect()
}

async fn a_fold_rebuilds_the_rows_the_appends_wrote(s: Store) {
    let ids = users(&s, &["a", "b", "c"]).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    for i in 0..5 {
        let mut from_a = test_message(a, b, None);
        if i % 2 == 0 {
            from_a.mentions = vec![b];
        }
        append(&s, from_a).await;
        append(&s, test_message(c, b, None)).await;
        append(&s, test_message(b, a, None)).await;
    }
    let written = rows(&s, b).await;
    assert_eq!(written, vec![(a, 15, 15, 5, 3), (c, 14, 14, 5, 0)]);
    // As if no row had been written: every entry of b's list unindexed.
    sqlx::query("DELETE FROM conversations WHERE user_id = ?")
        .bind(b as i64)
        .execute(s.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE user_seqs SET unindexed = seq WHERE user_id = ?")
        .bind(b as i64)
        .execute(s.pool())
        .await
        .unwrap();
    assert_eq!(raw(&s, b, a).await, (15, None));
    assert_eq!(rows(&s, b).await, written);
    assert_eq!(raw(&s, b, a).await, (0, Some(5)));
    // The history links of the fold are the appends' own.
    assert_eq!(history(&s, b, c).await, vec![14, 11, 8, 5, 2]);
}

#[tokio::test]
async fn the_batch_writer_leaves_rows_behind_and_every_read_folds_them() {
    let (s, _guard) = tests::sqlite().await;
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let max = sqlite_writer::lag::MAX_UNINDEXED;
    for _ in 0..max + 8 {
        append(&s, test_message(a, b, None)).await;
    }
    // b's row was written once, when `max` entries waited; 8 wait since.
    assert_eq!(raw(&s, b, a).await, (8, Some(max)));
    let at_b = s.conversation(b, USER, a).await.unwrap().unwrap();
    assert_eq!((at_b.unread, at_b.last_seq), (max + 8, max + 8));
    assert_eq!(raw(&s, b, a).await, (0, Some(max + 8)));

    append(&s, test_message(a, b, None)).await;
    assert_eq!(raw(&s, b, a).await, (1, Some(max + 8)));
    // The badge counts the entry without writing anything.
    assert_eq!(s.total_unread(b).await.unwrap(), max + 9);
    assert_eq!(raw(&s, b, a).await, (1, Some(max + 8)));
    append(&s, test_message(a, b, None)).await;
    let page = s.history(b, USER, a, 0, 1).await.unwrap().unwrap();
    assert_eq!(page.entries[0].seq, max + 10);
    append(&s, test_message(a, b, None)).await;
    assert_eq!(s.settle_conversations(b).await.unwrap(), max + 11);
    assert_eq!(raw(&s, b, a).await, (0, Some(max + 11)));
}

#[tokio::test]
async fn other_writers_fold_the_entries_the_batch_writer_left() {
    let (s, _guard) = tests::sqlite().await;
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    for _ in 0..3 {
        append(&s, test_message(a, b, None)).await;
    }
    assert_eq!(raw(&s, b, a).await, (3, None));
    // A transaction that appends (a state change and its events) folds
    // them in before it reads the rows, and leaves nothing unindexed.
    let mut tx = s.begin_write().await.unwrap();
    let msg = test_message(a, b, None);
    s.append_in(&mut tx, &[&msg]).await.unwrap().unwrap();
    s.commit(tx).await.unwrap();
    assert_eq!(raw(&s, b, a).await, (0, Some(4)));
    // The writer's copy of b's row (3 unread) is stale now: it must start
    // again from the row, and what it writes when enough entries wait
    // must count every entry.
    let max = sqlite_writer::lag::MAX_UNINDEXED;
    for _ in 0..max {
        append(&s, test_message(a, b, None)).await;
    }
    assert_eq!(raw(&s, b, a).await, (0, Some(max + 4)));
    append(&s, test_message(a, b, None)).await;
    let at_b = s.conversation(b, USER, a).await.unwrap().unwrap();
    assert_eq!((at_b.unread, at_b.last_seq), (max + 5, max + 5));

    // A lock on the list (MARK_READ, settings) folds them too.
    append(&s, test_message(a, b, None)).await;
    let mut tx = s.begin_write().await.unwrap();
    s.lock_lists(&mut tx, &[b]).await.unwrap();
    let key = one_to_one(b, a);
    assert_eq!(
        s.read_state(&mut tx, key).await.unwrap().unwrap().last_seq,
        max + 6
    );
    s.commit(tx).await.unwrap();
    assert_eq!(raw(&s, b, a).await, (0, Some(max + 6)));
}

#[tokio::test]
async fn a_writer_without_the_rows_has_the_store_fold_them_first() {
    // Two stores on one file: two batch writers, as across a restart, where
    // the new writer holds none of the rows the old one left.
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let second = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let ids = users(&first, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    for _ in 0..3 {
        append(&first, test_message(a, b, None)).await;
    }
    let mut mention = test_message(a, b, None);
    mention.mentions = vec![b];
    append(&second, mention).await;
    // The second writer refused b's list until the store folded it, then
    // appended: its own entry waits, the first three are in the row.
    assert_eq!(raw(&second, b, a).await, (1, Some(3)));
    append(&first, test_message(a, b, None)).await;
    for s in [&first, &second] {
        let at_b = s.conversation(b, USER, a).await.unwrap().unwrap();
        assert_eq!((at_b.unread, at_b.mentions, at_b.last_seq), (5, 1, 5));
        assert_eq!(history(s, b, a).await, vec![5, 4, 3, 2, 1]);
    }
}

#[tokio::test]
async fn the_badge_leaves_out_muted_conversations_the_rows_do_not_reflect_yet() {
    let (s, _guard) = tests::sqlite().await;
    let ids = users(&s, &["a", "b", "c"]).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    append(&s, test_message(a, b, None)).await;
    let mut tx = s.begin_write().await.unwrap();
    s.lock_lists(&mut tx, &[b]).await.unwrap();
    let key = one_to_one(b, a);
    let muted = read_positions::Settings {
        pinned: false,
        muted: true,
        hidden: false,
    };
    s.set_settings(&mut tx, key, muted).await.unwrap();
    s.commit(tx).await.unwrap();
    for _ in 0..3 {
        append(&s, test_message(a, b, None)).await;
        append(&s, test_message(c, b, None)).await;
        append(&s, test_message(b, c, None)).await;
    }
    assert_eq!(raw(&s, b, a).await, (9, Some(1)));
    assert_eq!(s.total_unread(b).await.unwrap(), 3);
    assert_eq!(raw(&s, b, a).await.0, 9);
}
