use std::path::Path;

use rusqlite::{params, Connection};

use super::*;

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

/// The WAL's frames, from its length (the WAL never shrinks here), and its
/// checkpoint sequence number, which counts the times it started over.
fn wal(path: &Path) -> (u64, u32) {
    let bytes = std::fs::read(path.with_extension("db-wal")).unwrap();
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

async fn two_passes(passes: &mut watch::Receiver<u64>) {
    // The first may have started before what the caller wrote.
    passes.changed().await.unwrap();
    passes.changed().await.unwrap();
}

#[tokio::test]
async fn the_thread_copies_the_wal_and_asks_for_a_restart_once_it_is_large() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = writer(&path);
    let checkpoints = Checkpoints::start(Connection::open(&path).unwrap()).unwrap();
    let mut passes = checkpoints.passes();

    // A WAL below the restart size: copied, no restart asked.
    conn.execute("INSERT INTO t VALUES (zeroblob(3000))", [])
        .unwrap();
    two_passes(&mut passes).await;
    assert_eq!(rows_in_the_file(&path), 1);
    assert!(!checkpoints.restart_wanted());

    let mut written = 1;
    while wal(&path).0 < RESTART_FRAMES as u64 {
        conn.execute("INSERT INTO t VALUES (zeroblob(3000))", [])
            .unwrap();
        written += 1;
    }
    let (_, started) = wal(&path);
    two_passes(&mut passes).await;
    assert_eq!(rows_in_the_file(&path), written);
    assert!(checkpoints.restart_wanted());
    // Asked once per pass, not again until the next.
    assert!(!checkpoints.restart_wanted());

    // The writer copies the rest (nothing, idle as it is), and its next
    // transaction starts the WAL over.
    passive(&conn).unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", params![&[1u8; 10][..]])
        .unwrap();
    assert_eq!(wal(&path).1, started + 1);
}
