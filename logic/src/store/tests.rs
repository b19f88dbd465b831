//! Store tests, each run on a real SQLite file and on a real MariaDB server
//! (started by tern-testkit): one SQL path, two engines.

use super::messages::test_message;
use super::*;

/// Keeps a test's database alive (the SQLite directory) for its duration.
pub(crate) enum Guard {
    Sqlite { _dir: tempfile::TempDir },
    MySql,
}

pub(crate) async fn sqlite() -> (Store, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    (store, Guard::Sqlite { _dir: dir })
}

pub(crate) async fn mysql() -> (Store, Guard) {
    let url = tern_testkit::mysql_database().await;
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.dialect(), Dialect::MySql);
    (store, Guard::MySql)
}

/// Creates users named `names` (password hash "h"); returns their ids.
pub(crate) async fn users(store: &Store, names: &[&str]) -> Vec<u64> {
    let mut ids = Vec::new();
    for name in names {
        let user = NewUser {
            username: name,
            password_hash: "h",
            nickname: name,
            now_ms: 1,
        };
        ids.push(store.create_user(user).await.unwrap());
    }
    ids
}

/// Runs each async fn `$case(Store)` of the calling module as two tests:
/// `$case::sqlite` and `$case::mysql`.
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn sqlite() {
                let (store, _guard) = $crate::store::tests::sqlite().await;
                super::$case(store).await;
            }

            #[tokio::test]
            async fn mysql() {
                let (store, _guard) = $crate::store::tests::mysql().await;
                super::$case(store).await;
            }
        }
    )*};
}
pub(crate) use on_both_engines;

on_both_engines!(
    users_are_unique_and_start_with_an_empty_list,
    a_batch_gives_each_user_contiguous_seqs_in_message_order,
    a_missing_recipient_stores_nothing,
    client_msg_id_is_unique_per_sender,
    ack_only_raises,
    large_recipient_sets_are_chunked,
    binary_content_and_mentions_round_trip,
);

async fn user(store: &Store, name: &str) -> u64 {
    store
        .create_user(NewUser {
            username: name,
            password_hash: "h",
            nickname: name,
            now_ms: 1,
        })
        .await
        .unwrap()
}

async fn users_are_unique_and_start_with_an_empty_list(s: Store) {
    let a = user(&s, "alice").await;
    assert_eq!(s.max_seq(a).await.unwrap(), 0);
    let again = s
        .create_user(NewUser {
            username: "alice",
            password_hash: "x",
            nickname: "",
            now_ms: 2,
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert_eq!(s.user_by_username("alice").await.unwrap().unwrap().id, a);
    assert!(s.user_by_id(a + 100).await.unwrap().is_none());
}

async fn a_batch_gives_each_user_contiguous_seqs_in_message_order(s: Store) {
    let (a, b, c) = (
        user(&s, "a").await,
        user(&s, "b").await,
        user(&s, "c").await,
    );
    let m1 = test_message(a, b, Some("1"));
    let m2 = test_message(a, c, Some("2"));
    let m3 = test_message(b, a, None);
    let out = s
        .append(vec![
            Arc::new(m1.clone()),
            Arc::new(m2.clone()),
            Arc::new(m3.clone()),
        ])
        .await
        .unwrap()
        .unwrap();
    // Recipients are [sender, receiver] for each.
    assert_eq!(out[0].seqs, vec![1, 1]); // a:1, b:1
    assert_eq!(out[1].seqs, vec![2, 1]); // a:2, c:1
    assert_eq!(out[2].seqs, vec![2, 3]); // b:2, a:3
    let again = s
        .append(vec![Arc::new(test_message(c, a, None))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again[0].seqs, vec![2, 4]);

    let list = s.list_after(a, 0, 100).await.unwrap();
    assert_eq!(
        list.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(list[0].message.id, m1.id.to_vec());
    assert_eq!(list[0].conv_id, b, "a sees the conversation with b");
    assert_eq!(list[2].conv_id, b);
    assert_eq!(list[0].message.client_msg_id, "1");
    assert_eq!(s.max_seq(a).await.unwrap(), 4);
    assert_eq!(s.list_after(a, 2, 1).await.unwrap()[0].seq, 3);
}

async fn a_missing_recipient_stores_nothing(s: Store) {
    let a = user(&s, "a").await;
    let err = s
        .append(vec![Arc::new(test_message(a, 999, None))])
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.0, vec![999]);
    assert_eq!(
        s.max_seq(a).await.unwrap(),
        0,
        "sender's counter rolled back"
    );
    assert!(s.list_after(a, 0, 10).await.unwrap().is_empty());
}

async fn client_msg_id_is_unique_per_sender(s: Store) {
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let first = test_message(a, b, Some("x"));
    s.append(vec![Arc::new(first.clone())])
        .await
        .unwrap()
        .unwrap();
    let dup = s
        .append(vec![Arc::new(test_message(a, b, Some("x")))])
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    assert_eq!(
        s.max_seq(b).await.unwrap(),
        1,
        "the failed batch left no trace"
    );
    // Another sender may use the same id.
    s.append(vec![Arc::new(test_message(b, a, Some("x")))])
        .await
        .unwrap()
        .unwrap();
    let found = s.find_by_client_msg_id(a, "x").await.unwrap().unwrap();
    assert_eq!(found.id, first.id.to_vec());
    assert_eq!(found.sender_seq, 1);
    assert!(s.find_by_client_msg_id(a, "y").await.unwrap().is_none());
}

async fn ack_only_raises(s: Store) {
    let a = user(&s, "a").await;
    let dev = s
        .create_device(NewDevice {
            user_id: a,
            platform: "ios",
            model: "",
            os_version: "",
            app_version: "",
            token_hash: "t",
            token_expires_at: 10,
            now_ms: 1,
        })
        .await
        .unwrap();
    s.ack(dev, 5).await.unwrap();
    s.ack(dev, 3).await.unwrap();
    assert_eq!(s.device(dev).await.unwrap().unwrap().ack_seq, 5);
    s.ack(dev, 9).await.unwrap();
    assert_eq!(s.device(dev).await.unwrap().unwrap().ack_seq, 9);
}

async fn large_recipient_sets_are_chunked(s: Store) {
    let mut ids = Vec::new();
    for i in 0..450 {
        ids.push(user(&s, &format!("u{i}")).await);
    }
    let mut m = test_message(ids[0], 0, None);
    m.conv_type = 2;
    m.recipients = ids
        .iter()
        .map(|&u| Recipient {
            user_id: u,
            conv_id: 7,
        })
        .collect();
    let out = s.append(vec![Arc::new(m.clone())]).await.unwrap().unwrap();
    assert!(out[0].seqs.iter().all(|&s| s == 1));
    assert_eq!(s.max_seq(ids[449]).await.unwrap(), 1);
}

async fn binary_content_and_mentions_round_trip(s: Store) {
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let mut m = test_message(a, b, Some("bin"));
    m.content = bytes::Bytes::from((0u8..=255).collect::<Vec<u8>>());
    m.mentions = vec![b, u64::from(u32::MAX) + 7];
    // Every byte value in the id too: it must survive both engines.
    m.id = [
        0x00, 0xff, 0x80, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0x7f,
        0x01,
    ];
    s.append(vec![Arc::new(m.clone())]).await.unwrap().unwrap();
    let e = &s.list_after(b, 0, 10).await.unwrap()[0];
    assert_eq!(e.message.id, m.id.to_vec());
    assert_eq!(e.message.content, m.content.to_vec());
    assert_eq!(e.message.mentions, m.mentions);
    assert_eq!(e.message.client_msg_id, "bin");
    let found = s.find_by_client_msg_id(a, "bin").await.unwrap().unwrap();
    assert_eq!(found.id, m.id.to_vec());
    // client_msg_ids differing only by trailing spaces are different ids.
    let mut spaced = test_message(a, b, Some("bin "));
    spaced.id[0] = 1;
    s.append(vec![Arc::new(spaced.clone())])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.max_seq(b).await.unwrap(), 2);
}

/// Several logic nodes may start at once against an empty MySQL: the
/// migrations run under a database lock, once.
#[tokio::test]
async fn concurrent_starts_apply_the_schema_once() {
    let url = tern_testkit::mysql_database().await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("every node comes up"));
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    let expected = Dialect::MySql.migrator().iter().count() as i64;
    assert_eq!(applied, expected);
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'user_messages'",
    )
    .fetch_one(stores[1].pool())
    .await
    .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn messages_name_the_database_without_its_password() {
    assert_eq!(describe("sqlite:///data/tern.db?mode=rwc"), "/data/tern.db");
    assert_eq!(
        describe("mysql://tern:s3cret@db.internal:3306/tern"),
        "mysql://db.internal:3306/tern"
    );
    assert_eq!(describe("mysql://db:3306/tern"), "mysql://db:3306/tern");
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_at_start_is_named_with_the_cause() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Store::connect(&format!("mysql://tern:s3cret@127.0.0.1:{port}/tern"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("mysql://127.0.0.1:{port}/tern")), "{e}");
    assert!(e.contains("is the server running"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");

    // A data directory that is a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let e = Store::open_sqlite_dir(&file).await.unwrap_err().to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.starts_with("the data directory"), "{e}");
}

#[test]
fn outages_are_told_from_bugs() {
    let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    assert_eq!(Outage::of(&io), Some(Outage::ConnectionLost));
    assert_eq!(
        Outage::of(&sqlx::Error::PoolTimedOut),
        Some(Outage::PoolTimeout)
    );
    assert_eq!(Outage::of(&sqlx::Error::RowNotFound), None);
    assert_eq!(StoreError::Conflict.outage(), None);
}

async fn a_failed_write_is_recorded_and_a_probe_ends_it(store: Store) {
    // A write that fails for an outage: here, one on a closed pool.
    store.probe_write(false).await.unwrap();
    assert!(store.health().down().is_none());
    let lost = StoreError::Database(sqlx::Error::PoolClosed);
    store.health().failed(&lost);
    assert_eq!(
        store.health().down().map(|d| d.outage),
        Some(Outage::ConnectionLost)
    );
    store.readiness().await.unwrap();
    assert!(store.health().down().is_none(), "the probe's write ends it");
}

on_both_engines!(a_failed_write_is_recorded_and_a_probe_ends_it);

async fn the_block_cleanup_migration_removes_only_the_blocked_sides_rows(store: Store) {
    use crate::domain::FriendState::{self, *};
    let ids = users(&store, &["ann", "ben", "cat", "dan"]).await;
    let (ann, ben, cat, dan) = (ids[0], ids[1], ids[2], ids[3]);
    // As the old BLOCK left them: Ben blocked his friend Ann, Cat blocked
    // Ann after asking her; Ann and Dan block each other, and Cat and Dan
    // are friends: those stay.
    let rows = [
        (ann, ben, Accepted),
        (ben, ann, Blocked),
        (ann, cat, Pending),
        (cat, ann, Blocked),
        (ann, dan, Blocked),
        (dan, ann, Blocked),
        (cat, dan, Accepted),
        (dan, cat, Accepted),
    ];
    let mut tx = store.begin_write().await.unwrap();
    for (user, other, state) in rows {
        store
            .put_friend(&mut tx, user, other, state, 1)
            .await
            .unwrap();
    }
    store.commit(tx).await.unwrap();

    let sql = match store.dialect() {
        Dialect::Sqlite => {
            include_str!("../../../migrations/sqlite/0003_blocks_end_both_sides.sql")
        }
        Dialect::MySql => include_str!("../../../migrations/mysql/0003_blocks_end_both_sides.sql"),
    };
    sqlx::raw_sql(sql).execute(store.pool()).await.unwrap();

    let state = |a, b| {
        let store = store.clone();
        async move { store.friend_state(a, b).await.unwrap() }
    };
    let expect: [(u64, u64, Option<FriendState>); 8] = [
        (ann, ben, None),
        (ben, ann, Some(Blocked)),
        (ann, cat, None),
        (cat, ann, Some(Blocked)),
        (ann, dan, Some(Blocked)),
        (dan, ann, Some(Blocked)),
        (cat, dan, Some(Accepted)),
        (dan, cat, Some(Accepted)),
    ];
    for (a, b, want) in expect {
        assert_eq!(state(a, b).await, want, "{a} -> {b}");
    }
}

on_both_engines!(the_block_cleanup_migration_removes_only_the_blocked_sides_rows);

/// The pool never hands out a connection that sqlx still counts as inside
/// a transaction SQLite already ended (as after a commit that failed for a
/// full disk): every BEGIN on it would fail until a restart.
#[tokio::test]
async fn a_connection_whose_transaction_could_not_end_is_not_reused() {
    let (store, _guard) = sqlite().await;
    let size = store.dialect().pool_size();
    for _ in 0..size * 2 {
        let mut tx = store.begin_write().await.unwrap();
        // SQLite ends the transaction behind sqlx's back, as it does itself
        // when a commit fails for SQLITE_FULL; the rollback sqlx queues
        // when `tx` is dropped then finds none.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        drop(tx);
    }
    for i in 0..size * 2 {
        let tx = store.begin_write().await;
        assert!(tx.is_ok(), "BEGIN {i}: {:?}", tx.err());
        store.commit(tx.unwrap()).await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_outages_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let rw = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    // A read-only file: SQLITE_READONLY.
    let ro = sqlx::any::AnyPoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let e = sqlx::query("DELETE FROM store_probe")
        .execute(&ro)
        .await
        .unwrap_err();
    assert_eq!(Outage::of(&e), Some(Outage::ReadOnly), "{e}");
    // A database at its size limit: SQLITE_FULL.
    let mut conn = rw.pool().acquire().await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let blob = vec![7u8; 1 << 20];
    let e = sqlx::query("INSERT INTO store_probe (id, written_at) VALUES (-1, ?)")
        .bind(&blob[..])
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(Outage::of(&e), Some(Outage::DiskFull), "{e}");
}

async fn a_send_reads_the_receiver_and_both_relations_at_once(store: Store) {
    use crate::domain::{FriendState::*, UserStatus};
    let ids = users(&store, &["ann", "ben"]).await;
    let (ann, ben) = (ids[0], ids[1]);
    let standing = |a, b| {
        let store = store.clone();
        async move { store.send_standing(a, b).await.unwrap() }
    };
    let s = standing(ann, ben).await.expect("ben exists");
    assert_eq!(
        (s.receiver_status, s.mine, s.theirs),
        (UserStatus::Active, None, None)
    );
    assert_eq!(standing(ann, ben + 100).await, None, "no such user");

    let mut tx = store.begin_write().await.unwrap();
    store
        .put_friend(&mut tx, ann, ben, Requested, 1)
        .await
        .unwrap();
    store
        .put_friend(&mut tx, ben, ann, Blocked, 1)
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
    let s = standing(ann, ben).await.unwrap();
    assert_eq!((s.mine, s.theirs), (Some(Requested), Some(Blocked)));
    let s = standing(ben, ann).await.unwrap();
    assert_eq!((s.mine, s.theirs), (Some(Blocked), Some(Requested)));

    store
        .set_status(ben, UserStatus::Disabled, 2)
        .await
        .unwrap();
    let s = standing(ann, ben).await.unwrap();
    assert_eq!(s.receiver_status, UserStatus::Disabled);
}

on_both_engines!(a_send_reads_the_receiver_and_both_relations_at_once);

/// A shared generation whose advances all fail (Redis unreachable).
#[derive(Debug, Default)]
struct Unreachable {
    advances: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl super::standing::SharedGeneration for Unreachable {
    async fn current(&self) -> Result<u64, String> {
        Ok(0)
    }
    async fn advance(&self) -> Result<(), String> {
        self.advances
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Err("unreachable".into())
    }
}

#[tokio::test]
async fn a_commit_is_answered_done_when_the_shared_generation_cannot_advance() {
    use crate::domain::FriendState;
    use std::sync::atomic::Ordering::Relaxed;
    let (mut store, _guard) = mysql().await;
    let generation = Arc::new(Unreachable::default());
    store.share_standing(generation.clone());
    let ids = users(&store, &["ann", "ben"]).await;
    let mut tx = store.begin_write().await.unwrap();
    store
        .put_friend(&mut tx, ids[0], ids[1], FriendState::Blocked, 1)
        .await
        .unwrap();
    let tried = generation.advances.load(Relaxed);
    store
        .commit(tx)
        .await
        .expect("committed, so answered as done");
    assert_eq!(generation.advances.load(Relaxed), tried + 1, "it tried");
    assert_eq!(
        store.friend_state(ids[0], ids[1]).await.unwrap(),
        Some(FriendState::Blocked)
    );
    // The readiness probe changes no standing: no node's cache is dropped.
    store.probe_write(false).await.unwrap();
    assert_eq!(generation.advances.load(Relaxed), tried + 1);
}

#[tokio::test]
async fn sqlite_batches_go_to_the_file_the_pool_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a b")).unwrap();
    // A URL's path is percent-decoded: the writer must open that file.
    let url = format!("sqlite://{}/a%20b/tern.db?mode=rwc", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let ids = users(&store, &["ann", "ben"]).await;
    store
        .append(vec![Arc::new(test_message(ids[0], ids[1], None))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.list_after(ids[1], 0, 10).await.unwrap().len(), 1);
    assert!(!dir.path().join("a%20b").exists());
}
