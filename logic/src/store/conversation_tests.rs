//! The conversation index, on both engines and through both append paths:
//! the batch path ([`Store::append`], the SQLite writer thread on SQLite)
//! and the transaction path ([`Store::append_in`]).

use std::sync::Arc;

use super::conversations::{HistoryError, ListCursor};
use super::messages::test_message;
use super::tests::{on_both_engines, users};
use super::*;

on_both_engines!(
    others_messages_count_as_unread_and_own_never_do,
    both_append_paths_keep_the_same_index,
    history_pages_walk_one_conversation_newest_first,
    the_listing_pages_by_newest_entry,
    a_recalled_message_stops_counting,
);

const USER: i32 = 1;

/// Appends `msgs` one batch at a time through [`Store::append`].
async fn append(s: &Store, msgs: Vec<NewMessage>) -> Vec<Appended> {
    let msgs = msgs.into_iter().map(Arc::new).collect();
    s.append(msgs).await.unwrap().unwrap()
}

/// Appends `msgs` through [`Store::append_in`] in one transaction.
async fn append_in(s: &Store, msgs: &[NewMessage]) -> Vec<Appended> {
    let mut tx = s.begin_write().await.unwrap();
    let refs: Vec<&NewMessage> = msgs.iter().collect();
    let out = s.append_in(&mut tx, &refs).await.unwrap().unwrap();
    s.commit(tx).await.unwrap();
    out
}

async fn others_messages_count_as_unread_and_own_never_do(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let mut mention = test_message(a, b, None);
    mention.mentions = vec![b];
    append(
        &s,
        vec![test_message(a, b, None), mention, test_message(b, a, None)],
    )
    .await;
    append(&s, vec![test_message(a, b, None)]).await;

    let at_b = s.conversation(b, USER, a).await.unwrap().unwrap();
    assert_eq!((at_b.unread, at_b.mentions), (3, 1), "{at_b:?}");
    assert_eq!((at_b.last_seq, at_b.change_seq), (4, 4));
    assert_eq!(at_b.last.seq, 4);
    assert_eq!(at_b.last.message.sender_id, a);
    let at_a = s.conversation(a, USER, b).await.unwrap().unwrap();
    assert_eq!((at_a.unread, at_a.mentions), (1, 0), "{at_a:?}");
    assert_eq!(at_a.read_seq, 0);
    assert!(s.conversation(a, USER, a).await.unwrap().is_none());
}

async fn both_append_paths_keep_the_same_index(s: Store) {
    let ids = users(&s, &["a", "b", "c"]).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // Interleaved: a batch, a transaction, a batch, into the same conversations.
    append(&s, vec![test_message(a, b, None), test_message(c, b, None)]).await;
    append_in(&s, &[test_message(a, b, None), test_message(b, a, None)]).await;
    append(&s, vec![test_message(c, b, None)]).await;

    let with_a = s.conversation(b, USER, a).await.unwrap().unwrap();
    assert_eq!((with_a.unread, with_a.last_seq), (2, 4), "{with_a:?}");
    let with_c = s.conversation(b, USER, c).await.unwrap().unwrap();
    assert_eq!((with_c.unread, with_c.last_seq), (2, 5), "{with_c:?}");
    let page = s.history(b, USER, a, 0, 10).await.unwrap().unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![4, 3, 1]);
    assert_eq!(page.next_before_seq, 0);
}

async fn history_pages_walk_one_conversation_newest_first(s: Store) {
    let ids = users(&s, &["a", "b", "c"]).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // a's list alternates: odd seqs with b, even seqs with c.
    for _ in 0..5 {
        append(&s, vec![test_message(a, b, None), test_message(c, a, None)]).await;
    }
    let first = s.history(a, USER, b, 0, 2).await.unwrap().unwrap();
    let seqs =
        |p: &conversations::HistoryPage| -> Vec<u64> { p.entries.iter().map(|e| e.seq).collect() };
    assert_eq!(seqs(&first), vec![9, 7]);
    assert!(first.entries.iter().all(|e| e.conv_id == b));
    assert_eq!(first.next_before_seq, 7);
    let second = s.history(a, USER, b, 7, 2).await.unwrap().unwrap();
    assert_eq!(seqs(&second), vec![5, 3]);
    let last = s
        .history(a, USER, b, second.next_before_seq, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seqs(&last), vec![1]);
    assert_eq!(last.next_before_seq, 0, "the first entry ends the history");

    let with_c = s.history(a, USER, c, 0, 100).await.unwrap().unwrap();
    assert_eq!(seqs(&with_c), vec![10, 8, 6, 4, 2]);
    // A cursor from another conversation, or from nowhere, is refused.
    let wrong = s.history(a, USER, b, 8, 2).await.unwrap();
    assert_eq!(wrong.unwrap_err(), HistoryError::NotInConversation);
    let beyond = s.history(a, USER, b, 99, 2).await.unwrap();
    assert_eq!(beyond.unwrap_err(), HistoryError::NotInConversation);
    // A conversation the user never had is empty.
    let none = s.history(b, USER, c, 0, 5).await.unwrap().unwrap();
    assert!(none.entries.is_empty());
}

async fn the_listing_pages_by_newest_entry(s: Store) {
    let ids = users(&s, &["a", "b", "c", "d"]).await;
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    append(&s, vec![test_message(b, a, None)]).await;
    append(&s, vec![test_message(c, a, None)]).await;
    append(&s, vec![test_message(d, a, None)]).await;
    append(&s, vec![test_message(a, b, None)]).await;

    let first = s.conversations_page(a, None, 2).await.unwrap();
    let peers =
        |p: &[conversations::Conversation]| -> Vec<u64> { p.iter().map(|c| c.conv_id).collect() };
    assert_eq!(peers(&first), vec![b, d]);
    let cursor = ListCursor {
        pinned: first[1].pinned,
        last_seq: first[1].last_seq,
    };
    let rest = s.conversations_page(a, Some(cursor), 2).await.unwrap();
    assert_eq!(peers(&rest), vec![c]);
    assert_eq!(rest[0].last.message.sender_id, c);
    assert_eq!(rest[0].unread, 1);
}

async fn a_recalled_message_stops_counting(s: Store) {
    let ids = users(&s, &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let mut mention = test_message(a, b, None);
    mention.mentions = vec![b];
    let plain = test_message(a, b, None);
    append(&s, vec![mention.clone(), plain.clone()]).await;
    let counts = |c: conversations::Conversation| (c.unread, c.mentions);
    assert_eq!(
        counts(s.conversation(b, USER, a).await.unwrap().unwrap()),
        (2, 1)
    );

    for recalled in [&mention, &plain] {
        // As a RECALL does: the event to every holder, then the uncount.
        let mut tx = s.begin_write().await.unwrap();
        assert!(s.mark_recalled(&mut tx, &recalled.id).await.unwrap());
        let mut event = test_message(a, b, None);
        event.content_type = 1201;
        let holders = s.holders(&mut tx, &recalled.id).await.unwrap();
        event.recipients = holders;
        s.append_in(&mut tx, &[&event]).await.unwrap().unwrap();
        s.uncount_recalled(&mut tx, &recalled.id).await.unwrap();
        s.commit(tx).await.unwrap();
    }
    let at_b = s.conversation(b, USER, a).await.unwrap().unwrap();
    assert_eq!(counts(at_b.clone()), (0, 0), "{at_b:?}");
    assert_eq!(at_b.last_seq, 4, "the recall events are the newest entries");
    let at_a = s.conversation(a, USER, b).await.unwrap().unwrap();
    assert_eq!(counts(at_a), (0, 0));
}

/// A list written before the index, as migration 4 finds it: user 1 has
/// seqs 1..=4 alternating between users 2 and 3, the last one from 3.
async fn lists_before_the_index(pool: &sqlx::AnyPool) {
    for id in 1..=3 {
        sqlx::query("INSERT INTO users (id, username, password_hash, extra, created_at, updated_at) VALUES (?, ?, 'h', '{}', 1, 1)")
            .bind(id)
            .bind(format!("u{id}"))
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO user_seqs (user_id, seq) VALUES (?, 0)")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE user_seqs SET seq = 4 WHERE user_id = 1")
        .execute(pool)
        .await
        .unwrap();
    for seq in 1..=4i64 {
        let (peer, sender) = if seq % 2 == 1 { (2, 1) } else { (3, 3) };
        let id = uuid::Uuid::now_v7().as_bytes().to_vec();
        sqlx::query(
            "INSERT INTO messages (id, sender_id, sender_device_id, conv_type, receiver_id, \
             content_type, content, mentions, created_at) VALUES (?, ?, 1, 1, ?, 1, ?, '', 1)",
        )
        .bind(id.clone())
        .bind(sender)
        .bind(if sender == 1 { peer } else { 1 })
        .bind(b"x".to_vec())
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO user_messages (user_id, seq, message_id, conv_type, conv_id) \
             VALUES (1, ?, ?, 1, ?)",
        )
        .bind(seq)
        .bind(id)
        .bind(peer)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Runs the migrations before the index (1 to 3) on `url`.
async fn migrate_to_3(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let all = Dialect::from_url(url).unwrap().migrator();
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= 3)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    pool
}

/// What migration 4 makes of lists written before it: each conversation
/// indexed and read up to its newest entry, and its rows linked.
async fn check_the_upgraded_index(s: &Store) {
    let with_2 = s.conversation(1, USER, 2).await.unwrap().unwrap();
    assert_eq!((with_2.last_seq, with_2.read_seq, with_2.unread), (3, 3, 0));
    let with_3 = s.conversation(1, USER, 3).await.unwrap().unwrap();
    assert_eq!((with_3.last_seq, with_3.unread), (4, 0));
    let page = s.history(1, USER, 3, 0, 10).await.unwrap().unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![4, 2]);
    // New entries count and link on from there.
    append(&s.clone(), vec![test_message(3, 1, None)]).await;
    let with_3 = s.conversation(1, USER, 3).await.unwrap().unwrap();
    assert_eq!((with_3.last_seq, with_3.unread), (5, 1));
    let page = s.history(1, USER, 3, 0, 10).await.unwrap().unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![5, 4, 2]);
}

#[tokio::test]
async fn the_index_is_built_for_lists_written_before_it_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("tern.db").display());
    let pool = migrate_to_3(&url).await;
    lists_before_the_index(&pool).await;
    pool.close().await;
    let s = Store::open_sqlite_dir(dir.path()).await.unwrap();
    check_the_upgraded_index(&s).await;
}

#[tokio::test]
async fn the_index_is_built_for_lists_written_before_it_mysql() {
    let url = tern_testkit::mysql_database().await;
    let pool = migrate_to_3(&url).await;
    lists_before_the_index(&pool).await;
    pool.close().await;
    let s = Store::connect(&url).await.unwrap();
    check_the_upgraded_index(&s).await;
}
