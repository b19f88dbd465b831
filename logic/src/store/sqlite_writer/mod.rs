//! The SQLite group commit on a thread of its own.
//!
//! Through sqlx every statement is a hand-off to the connection's worker
//! thread and back: a batch of chat messages took eight (acquire, BEGIN,
//! two statements on the list heads, two INSERTs, COMMIT, and the ping sqlx
//! runs on every release), each a futex wake on both sides. At a few
//! thousand messages a second, batches are small and those hand-offs cost
//! more than SQLite's own work. This thread holds one connection with
//! prepared statements and runs a whole batch per hand-off.
//!
//! It does what [`Store::append_in`] does on a pooled connection (the same
//! rows, locks and seqs), and the store's tests run the batch path through
//! it; [`Store::append_in`] stays for the transactions that write a state
//! change and its events together. One difference: it writes a user's
//! conversation rows once every few of the user's entries and holds them
//! in memory meanwhile ([`lag`]). Beside it a second thread copies the WAL
//! back into the database file, so that no commit runs that copy and the
//! writer only finishes it between two batches ([`checkpoint`]).
//!
//! [`Store::append_in`]: super::Store::append_in

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;
use tracing::error;

use self::batch::{append, Refusal};
use self::checkpoint::Checkpoints;
use self::lag::{settle, write_held, Lag};
use super::messages::{Appended, MissingUsers, NewMessage};
use super::StoreError;

mod batch;
mod checkpoint;
mod error;
pub(super) mod lag;

pub(crate) use error::WriterError;

/// What a batch came to: its seqs, or why nothing was stored.
type Outcome = std::result::Result<Vec<Appended>, Refused>;

/// Why a batch stored nothing, though the database worked.
#[derive(Debug)]
pub(super) enum Refused {
    /// Recipients that no longer exist.
    Missing(MissingUsers),
    /// Lists with unindexed entries whose rows the writer does not hold
    /// (after a restart, or a failed batch): the store folds them in
    /// ([`super::Store::lock_lists`]) and sends `msgs` again.
    Unindexed {
        users: Vec<u64>,
        msgs: Vec<Arc<NewMessage>>,
    },
}

enum Job {
    Append {
        msgs: Vec<Arc<NewMessage>>,
        /// Also queue the messages for the after-send webhook.
        after_send: bool,
        done: oneshot::Sender<Result<Outcome, WriterError>>,
    },
    /// Write the conversation rows held for one user: the list head they
    /// then reflect, or None when the writer holds none of the unindexed
    /// entries (the store folds them itself).
    Settle {
        user_id: u64,
        done: oneshot::Sender<Result<Option<u64>, WriterError>>,
    },
}

/// Settings of the writer's own connection, after the pool's.
///
/// The page cache holds what every batch touches: the newest leaf of each
/// active user's list and of each sender's client_msg_id index, the list
/// heads and the interior pages above them. At SQLite's default of 2 MiB a
/// busy server's working set did not fit: pages were read back from the
/// file (`pread`) on every batch and dirty pages spilled to the WAL before
/// the commit. 32 MiB is bounded and one connection's.
const WRITER_PRAGMAS: &[&str] = &["PRAGMA foreign_keys = ON", "PRAGMA cache_size = -32768"];

/// Handle to the writer thread; the thread ends when the last handle drops.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    #[cfg(test)]
    copies: Arc<std::sync::atomic::AtomicU64>,
    #[cfg(test)]
    passes: tokio::sync::watch::Receiver<u64>,
}

impl Writer {
    /// Opens the database file at `path` (the pool's, already migrated;
    /// never created here) with the pool's session settings and starts
    /// the thread, and the checkpoint thread on a connection of its own.
    pub(super) fn start(path: &str, pragmas: &[&str]) -> Result<Writer, StoreError> {
        let conn = open(path, pragmas, WRITER_PRAGMAS, "batch writer")?;
        let no_thread = |what: &str, e: std::io::Error| StoreError::Open {
            what: format!("the SQLite {what} thread"),
            cause: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(|e| StoreError::Open {
            what: format!("the database {path} (checkpoints)"),
            cause: e.to_string(),
        })?;
        let checkpoints = Checkpoints::start(open(path, pragmas, &[], "checkpoints")?, file)
            .map_err(|e| no_thread("checkpoint", e))?;
        #[cfg(test)]
        let (copies, passes) = (checkpoints.copies(), checkpoints.passes());
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tern-sqlite-writer".into())
            .spawn(move || run(conn, rx, checkpoints))
            .map_err(|e| no_thread("batch writer", e))?;
        Ok(Writer {
            jobs,
            #[cfg(test)]
            copies,
            #[cfg(test)]
            passes,
        })
    }

    /// How often the writer copied the rest of the WAL for the checkpoint
    /// thread.
    #[cfg(test)]
    pub(super) fn wal_copies(&self) -> u64 {
        self.copies.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The checkpoint thread's finished passes, to wait on.
    #[cfg(test)]
    pub(super) fn checkpoint_passes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.passes.clone()
    }

    /// Appends `msgs` in one transaction on the writer thread.
    pub(super) async fn append(
        &self,
        msgs: Vec<Arc<NewMessage>>,
        after_send: bool,
    ) -> Result<Outcome, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job::Append {
            msgs,
            after_send,
            done,
        };
        self.ask(job, answer).await
    }

    /// Writes the conversation rows the writer holds for `user_id`, queued
    /// behind the batches before it rather than waiting on SQLite's lock:
    /// the list head they then reflect, or None when the writer does not
    /// hold what its list has unindexed.
    pub(super) async fn settle(&self, user_id: u64) -> Result<Option<u64>, StoreError> {
        let (done, answer) = oneshot::channel();
        self.ask(Job::Settle { user_id, done }, answer).await
    }

    async fn ask<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, WriterError>>,
    ) -> Result<T, StoreError> {
        let stopped = || StoreError::Database(sqlx::Error::WorkerCrashed);
        self.jobs.send(job).map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|e| StoreError::classify(sqlx::Error::Database(Box::new(e))))
    }
}

/// Opens a connection of this module's threads (`role`) to the file at
/// `path`, with the pool's settings and then `own`.
fn open(path: &str, pragmas: &[&str], own: &[&str], role: &str) -> Result<Connection, StoreError> {
    let failed = |cause: String| StoreError::Open {
        what: format!("the database {path} ({role})"),
        cause,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| failed(e.to_string()))?;
    for pragma in pragmas.iter().chain(own) {
        // Some pragmas answer with a row (journal_mode), others not.
        conn.query_row(pragma, [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })
            .map_err(|e| failed(format!("{pragma}: {e}")))?;
    }
    Ok(conn)
}

fn run(mut conn: Connection, jobs: mpsc::Receiver<Job>, mut checkpoints: Checkpoints) {
    let mut lag = Lag::default();
    loop {
        // Between two jobs, never inside one: the rest of the WAL.
        checkpoints.between_jobs(&conn);
        let job = match jobs.recv_timeout(lag::IDLE_WRITE) {
            Ok(job) => job,
            // What fails here stays for the lists' next fold (logged).
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = guarded("writing held rows", || write_held(&mut conn, &mut lag));
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = guarded("writing held rows", || write_held(&mut conn, &mut lag));
                return;
            }
        };
        match job {
            Job::Append {
                msgs,
                after_send,
                done,
            } => {
                let result = guarded("appending a batch (not stored)", || {
                    append(&mut conn, &mut lag, &msgs, after_send)
                });
                let result = result.map(|outcome| {
                    outcome.map_err(|refused| match refused {
                        Refusal::Missing(missing) => Refused::Missing(missing),
                        Refusal::Unindexed(users) => Refused::Unindexed { users, msgs },
                    })
                });
                let _ = done.send(result);
            }
            Job::Settle { user_id, done } => {
                let result = guarded("writing held rows", || settle(&mut conn, &mut lag, user_id));
                let _ = done.send(result);
            }
        }
    }
}

/// Runs `work`, turning a panic into an error: a bug fails one job, not
/// every later one (a transaction rolls back as it unwinds, and what the
/// writer held in memory for it is gone: the store folds it from the
/// lists).
fn guarded<T>(what: &str, work: impl FnOnce() -> Result<T, WriterError>) -> Result<T, WriterError> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
        error!("the SQLite batch writer panicked {what}");
        Err(WriterError::internal("the batch writer panicked"))
    })
}
