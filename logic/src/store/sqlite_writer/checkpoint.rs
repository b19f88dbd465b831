//! WAL checkpoints beside the batch writer, not inside its commits.
//!
//! A checkpoint copies the pages the WAL holds back into the database file
//! and fsyncs it. Left to SQLite, the commit that takes the WAL past
//! `wal_autocheckpoint` pages runs one before it returns: at chat load a
//! batch every tenth of a second took ten times as long as the others, and
//! every SEND queued behind it waited; that stall was most of the send→push
//! p99. Here a thread of its own runs a passive checkpoint (one that copies
//! beside the writer's commits, never blocking them) every [`INTERVAL`].
//!
//! SQLite starts the WAL over from its beginning only when a checkpoint has
//! copied all of it, and a passive one beside a busy writer never has: the
//! writer appended more meanwhile. So once the WAL holds [`RESTART_FRAMES`]
//! frames the thread asks the writer to copy the rest itself, between two
//! batches (the frames of one pass, not the whole WAL), and the writer's
//! next transaction starts the WAL over. Each connection's own
//! `wal_autocheckpoint` stays as the backstop, at a larger size
//! ([`crate::store::Dialect::session_setup`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use tracing::warn;

/// Time between two passes. Each copies a page once however often the WAL
/// holds it, so longer intervals copy fewer pages per message and leave a
/// larger WAL; at 100 ms the server spends less CPU per message than with
/// SQLite's checkpoint every 4,000 pages (BENCHMARKS.md).
const INTERVAL: Duration = Duration::from_millis(100);

/// WAL frames (pages) after which the writer is asked to let the WAL start
/// over: 16 MiB of 4 KiB pages.
#[cfg(not(test))]
pub(super) const RESTART_FRAMES: i64 = 4_000;
/// In this crate's unit tests, a WAL that a few batches fill.
#[cfg(test)]
pub(super) const RESTART_FRAMES: i64 = 64;

/// Handle to the checkpoint thread; it ends when the handle drops.
#[derive(Debug)]
pub(super) struct Checkpoints {
    /// Never sent on: dropping it ends the thread.
    _stop: mpsc::Sender<()>,
    restart: Arc<AtomicBool>,
    #[cfg(test)]
    passes: watch::Receiver<u64>,
}

impl Checkpoints {
    /// Starts the thread on `conn`, a connection of its own to the file.
    pub(super) fn start(conn: Connection) -> std::io::Result<Checkpoints> {
        let (stop, stopped) = mpsc::channel();
        let restart = Arc::new(AtomicBool::new(false));
        let (passed, _passes) = watch::channel(0);
        let flag = restart.clone();
        std::thread::Builder::new()
            .name("tern-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &stopped, &flag, &passed))?;
        Ok(Checkpoints {
            _stop: stop,
            restart,
            #[cfg(test)]
            passes: _passes,
        })
    }

    /// Whether the thread asked the writer to copy the rest of the WAL
    /// since the last call. It asks after every pass that finds the WAL
    /// still large: the writer's copy can find a pass of the thread
    /// running, or a reader's snapshot keeping frames from being copied.
    pub(super) fn restart_wanted(&self) -> bool {
        self.restart.swap(false, Ordering::Relaxed)
    }

    /// The passes the thread has finished, for tests to wait on.
    #[cfg(test)]
    pub(super) fn passes(&self) -> watch::Receiver<u64> {
        self.passes.clone()
    }
}

fn run(
    conn: &Connection,
    stopped: &mpsc::Receiver<()>,
    restart: &AtomicBool,
    passed: &watch::Sender<u64>,
) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        match passive(conn) {
            Ok(frames) => {
                failing = false;
                if frames >= RESTART_FRAMES {
                    restart.store(true, Ordering::Relaxed);
                }
            }
            // Logged once per run of failures: the backstop still bounds
            // the WAL, and the writer's own errors say what is wrong.
            Err(e) if !failing => {
                failing = true;
                warn!(error = %e, "WAL checkpoint failed");
            }
            Err(_) => {}
        }
        passed.send_modify(|n| *n += 1);
    }
}

/// Copies what the WAL holds into the database file, beside any writer:
/// the frames the WAL holds (copied or not).
pub(super) fn passive(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

#[cfg(test)]
mod tests;
