use std::path::Path;
use std::sync::atomic::Ordering;

use rusqlite::{params, Connection};

use super::*;
use crate::store::messages::test_message;
use crate::store::tests::users;
use crate::store::Store;

/// A connection like the batch writer's, without a checkpoint of its own:
/// whatever reaches the database file here, the thread copied.
fn writer(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; \
         CREATE TABLE IF NOT EXISTS t (x BLOB NOT NULL);",
    )
    .unwrap();
    conn
}

fn start(path: &Path) -> Checkpoints {
    let file = File::open(path).unwrap();
    Checkpoints::start(Connection::open(path).unwrap(), file).unwrap()
}

/// The WAL's frames, from its length (which shrinks only when a WAL past
/// the size limit starts over: the frames count is of use before that),
/// and its checkpoint sequence number, which counts the times it started
/// over.
fn wal(db: &Path) -> (u64, u32) {
    let bytes = std::fs::read(db.with_extension("db-wal")).unwrap();
    let frames = (bytes.len() as u64 - 32) / (4096 + 24);
    (
        frames,
        u32::from_be_bytes(bytes[12..16].try_into().unwrap()),
    )
}

/// The rows of `t` in the database file alone, as a crash that lost the
/// WAL would leave it.
fn rows_in_the_file(path: &Path) -> i64 {
    let copy = path.with_extension("copy");
    std::fs::copy(path, &copy).unwrap();
    Connection::open(&copy)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

/// Waits for two passes to end after the caller's last write: the first
/// may have started before it.
async fn two_passes(passes: &mut watch::Receiver<u64>) {
    passes.borrow_and_update();
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(30), passes.changed())
            .await
            .expect("a pass every 100 ms")
            .unwrap();
    }
}

#[tokio::test]
async fn the_thread_copies_the_wal_and_asks_for_the_rest_once_it_is_large() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = writer(&path);
    let mut checkpoints = start(&path);
    let mut passes = checkpoints.passes();
    let copies = checkpoints.copies();

    // A WAL below the restart size: copied, nothing asked of the writer.
    conn.execute("INSERT INTO t VALUES (zeroblob(3000))", [])
        .unwrap();
    two_passes(&mut passes).await;
    assert_eq!(rows_in_the_file(&path), 1);
    checkpoints.between_jobs(&conn);
    assert_eq!(copies.load(Ordering::Relaxed), 0);

    let mut written = 1;
    while wal(&path).0 < RESTART_FRAMES as u64 {
        conn.execute("INSERT INTO t VALUES (zeroblob(3000))", [])
            .unwrap();
        written += 1;
    }
    let (_, started) = wal(&path);
    two_passes(&mut passes).await;
    assert_eq!(rows_in_the_file(&path), written);
    checkpoints.between_jobs(&conn);
    assert_eq!(copies.load(Ordering::Relaxed), 1);
    // Asked once per pass: the next pass is at least 100 ms away.
    checkpoints.between_jobs(&conn);
    assert_eq!(copies.load(Ordering::Relaxed), 1);
    // All of it copied: the next transaction starts the WAL over.
    conn.execute("INSERT INTO t VALUES (?1)", params![&[1u8; 10][..]])
        .unwrap();
    assert_eq!(wal(&path).1, started + 1);
}

/// A store in a new directory, its database file, and two users.
async fn store() -> (tempfile::TempDir, Store, std::path::PathBuf, [u64; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let db = dir.path().join("tern.db");
    let ids = users(&s, &["a", "b"]).await;
    (dir, s, db, [ids[0], ids[1]])
}

/// A message from the first of `pair` to the second, in a batch of its own.
async fn send(s: &Store, [from, to]: [u64; 2]) {
    let msg = std::sync::Arc::new(test_message(from, to, None));
    s.append(vec![msg]).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_batch_writer_copies_the_rest_between_two_batches() {
    let (_dir, s, db, pair) = store().await;
    let writer = s.writer.clone().expect("a file has a batch writer");
    let mut passes = writer.checkpoint_passes();
    while wal(&db).0 < RESTART_FRAMES as u64 {
        send(&s, pair).await;
    }
    let (_, started) = wal(&db);
    two_passes(&mut passes).await;
    // Asked (again, should a pass have asked just after the last batch),
    // and not yet between two jobs.
    let before = writer.wal_copies();
    // The first batch ends, the writer copies, the second starts the WAL
    // over.
    send(&s, pair).await;
    send(&s, pair).await;
    assert!(writer.wal_copies() > before, "the writer copied the rest");
    assert!(wal(&db).1 > started, "the WAL started over");
}

#[tokio::test]
async fn a_wal_grown_past_the_limit_is_cut_back_when_it_starts_over() {
    let limit: u64 = crate::store::dialect::WAL_SIZE_LIMIT
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a size in bytes");
    let (_dir, s, db, pair) = store().await;
    let wal_file = db.with_extension("db-wal");
    let writer = s.writer.clone().expect("a file has a batch writer");
    let mut passes = writer.checkpoint_passes();
    // A reader's snapshot keeps every frame after it: no checkpoint can
    // copy them, and the WAL grows past the limit.
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    while std::fs::metadata(&wal_file).unwrap().len() <= 2 * limit {
        send(&s, pair).await;
    }
    let (_, started) = wal(&db);
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // Copied, then started over by the writer's next transactions, and
    // the file cut back.
    two_passes(&mut passes).await;
    send(&s, pair).await;
    send(&s, pair).await;
    assert!(wal(&db).1 > started, "the WAL started over");
    let size = std::fs::metadata(&wal_file).unwrap().len();
    assert!(size <= limit, "{size} bytes, over {limit}");
}
