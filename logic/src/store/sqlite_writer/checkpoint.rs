//! WAL checkpoints beside the batch writer, not inside its commits.
//!
//! A checkpoint copies the pages the WAL holds back into the database file
//! and fsyncs it. Left to SQLite, the commit that takes the WAL past
//! `wal_autocheckpoint` pages runs one before it returns: at chat load a
//! batch every tenth of a second took ten times as long as the others, and
//! every SEND queued behind it waited; that stall was most of the send→push
//! p99. Here a thread of its own runs a passive checkpoint (one that copies
//! beside the writer's commits, never blocking them) every [`INTERVAL`],
//! and fsyncs the database file after it.
//!
//! SQLite starts the WAL over from its beginning only when a checkpoint has
//! copied all of it, and a passive one beside a busy writer never has: the
//! writer appended more meanwhile. So once the WAL holds [`RESTART_FRAMES`]
//! frames the thread asks the writer to copy the rest itself, between two
//! batches (the frames appended since the thread's last pass, not the whole
//! WAL), and the writer's next transaction starts the WAL over. Each connection's own
//! `wal_autocheckpoint` stays as the backstop, at a larger size
//! ([`crate::store::Dialect::session_setup`]).

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use tracing::warn;

/// Time between two passes. Each copies a page once however often the WAL
/// holds it: longer intervals copy fewer pages per message and leave a
/// larger WAL. At 100 ms the server's CPU per message is what it was with
/// SQLite's checkpoint every 4,000 pages (BENCHMARKS.md).
const INTERVAL: Duration = Duration::from_millis(100);

/// WAL frames (pages) after which the writer is asked to let the WAL start
/// over: 16 MiB of 4 KiB pages. The WAL peaks above it by what the writer
/// appends in an interval or two.
#[cfg(not(test))]
pub(super) const RESTART_FRAMES: i64 = 4_000;
/// In this crate's unit tests, a WAL that a few batches fill.
#[cfg(test)]
pub(super) const RESTART_FRAMES: i64 = 64;

/// Handle to the checkpoint thread, held by the writer thread; the
/// checkpoint thread ends when it drops.
#[derive(Debug)]
pub(super) struct Checkpoints {
    /// Never sent on: dropping it ends the thread.
    _stop: mpsc::Sender<()>,
    restart: Arc<AtomicBool>,
    /// The writer's last copy failed (logged once per run of failures).
    failing: bool,
    #[cfg(test)]
    passes: watch::Receiver<u64>,
    #[cfg(test)]
    copies: Arc<std::sync::atomic::AtomicU64>,
}

impl Checkpoints {
    /// Starts the thread on `conn`, a connection of its own to the
    /// database, and `file`, the database file opened for its fsyncs.
    pub(super) fn start(conn: Connection, file: File) -> std::io::Result<Checkpoints> {
        let (stop, stopped) = mpsc::channel();
        let restart = Arc::new(AtomicBool::new(false));
        let (passed, _passes) = watch::channel(0);
        let flag = restart.clone();
        std::thread::Builder::new()
            .name("tern-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &file, &stopped, &flag, &passed))?;
        Ok(Checkpoints {
            _stop: stop,
            restart,
            failing: false,
            #[cfg(test)]
            passes: _passes,
            #[cfg(test)]
            copies: Arc::default(),
        })
    }

    /// On the writer thread, between two jobs: if the checkpoint thread
    /// asked since the last call, copies into the database file what its
    /// passes left of the WAL, so that the next write transaction starts
    /// the WAL over. Whatever stops that (a pass of the thread under way,
    /// a reader's snapshot, an error), the thread asks again after its
    /// next pass while the WAL stays large.
    pub(super) fn between_jobs(&mut self, conn: &Connection) {
        if !self.restart.swap(false, Ordering::Relaxed) {
            return;
        }
        #[cfg(test)]
        self.copies.fetch_add(1, Ordering::Relaxed);
        match passive(conn) {
            Ok(_) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                warn!(error = %e, "WAL checkpoint by the batch writer failed");
            }
            Err(_) => {}
        }
    }

    /// The passes the thread has finished, for tests to wait on.
    #[cfg(test)]
    pub(super) fn passes(&self) -> watch::Receiver<u64> {
        self.passes.clone()
    }

    /// How often the writer copied the rest of the WAL, for tests.
    #[cfg(test)]
    pub(super) fn copies(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.copies.clone()
    }
}

fn run(
    conn: &Connection,
    file: &File,
    stopped: &mpsc::Receiver<()>,
    restart: &AtomicBool,
    passed: &watch::Sender<u64>,
) {
    let mut failing = false;
    let mut synced = Pass::default();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        let done = pass_and_sync(conn, file, &mut synced);
        match done {
            Ok(pass) => {
                failing = false;
                if pass.frames >= RESTART_FRAMES {
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

/// One pass. SQLite fsyncs the database file only after a checkpoint that
/// copied the whole WAL: under load that is the writer's, which would then
/// wait for every page the passes copied before it. So a pass that copied
/// pages syncs them here (`synced`: what the last sync covered).
fn pass_and_sync(conn: &Connection, file: &File, synced: &mut Pass) -> Result<Pass, String> {
    let pass = passive(conn).map_err(|e| e.to_string())?;
    if pass.copied > 0 && pass != *synced {
        file.sync_data()
            .map_err(|e| format!("fsync of the database file: {e}"))?;
        *synced = pass;
    }
    Ok(pass)
}

/// What a passive checkpoint left: the frames in the WAL, and how many of
/// them are in the database file (both -1 when another checkpoint held
/// the lock).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pass {
    pub frames: i64,
    pub copied: i64,
}

/// Copies what the WAL holds into the database file, beside any writer.
pub(super) fn passive(conn: &Connection) -> rusqlite::Result<Pass> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Pass {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests;
