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
//! in memory meanwhile ([`super::sqlite_lag`]).
//!
//! [`Store::append_in`]: super::Store::append_in

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;
use tracing::{error, warn};

use super::conversations::{self, ConvKey, Head, NewRow};
use super::messages::{rows_per_user, Appended, MissingUsers, NewMessage};
use super::sqlite_lag::{self, Held, Lag};
use super::StoreError;

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
}

impl Writer {
    /// Opens the database file at `path` (the pool's, already migrated;
    /// never created here) with the pool's session settings and starts
    /// the thread.
    pub(super) fn start(path: &str, pragmas: &[&str]) -> Result<Writer, StoreError> {
        let conn = open(path, pragmas)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tern-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Open {
                what: "the SQLite batch writer thread".into(),
                cause: e.to_string(),
            })?;
        Ok(Writer { jobs })
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

/// Opens the writer's connection to the file at `path`, with the pool's
/// settings and its own.
fn open(path: &str, pragmas: &[&str]) -> Result<Connection, StoreError> {
    let failed = |cause: String| StoreError::Open {
        what: format!("the database {path} (batch writer)"),
        cause,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| failed(e.to_string()))?;
    for pragma in pragmas.iter().chain(WRITER_PRAGMAS) {
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

fn run(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    let mut lag = Lag::default();
    loop {
        let job = match jobs.recv_timeout(sqlite_lag::IDLE_WRITE) {
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

/// Writes every conversation row the writer holds, when it is idle or
/// stops. On an error they stay unwritten, and the database still counts
/// their entries as unindexed: the next to take those lists folds them.
fn write_held(conn: &mut Connection, lag: &mut Lag) -> Result<(), WriterError> {
    if lag.is_empty() {
        return Ok(());
    }
    let held = lag.drain();
    let written = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (user_id, held) in &held {
            sqlite_lag::write(&tx, *user_id, held)?;
        }
        tx.commit()
    })();
    if let Err(e) = written {
        warn!(error = %e, "conversation rows left to be folded from the lists");
    }
    Ok(())
}

/// [`Job::Settle`] on the writer thread.
fn settle(conn: &mut Connection, lag: &mut Lag, user_id: u64) -> Result<Option<u64>, WriterError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head: Option<(i64, i64)> = tx
        .prepare_cached("SELECT seq, unindexed FROM user_seqs WHERE user_id = ?1")?
        .query_row(params![user_id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((head, unindexed)) = head else {
        return Ok(Some(0));
    };
    let (head, unindexed) = (head as u64, unindexed as u64);
    if unindexed == 0 {
        return Ok(Some(head));
    }
    match lag.take(user_id, head, unindexed) {
        Some(Ok(held)) => {
            sqlite_lag::write(&tx, user_id, &held)?;
            tx.commit()?;
            Ok(Some(head))
        }
        _ => Ok(None),
    }
}

/// Why a batch stored nothing, on the writer thread.
enum Refusal {
    Missing(MissingUsers),
    Unindexed(Vec<u64>),
}

fn append(
    conn: &mut Connection,
    lag: &mut Lag,
    msgs: &[Arc<NewMessage>],
    after_send: bool,
) -> Result<std::result::Result<Vec<Appended>, Refusal>, WriterError> {
    let counts = rows_per_user(msgs.iter().map(|m| &**m));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // 1. Advance each head; the first of this batch's seqs follows the old
    // one. Every entry appended here waits unindexed until its rows are
    // written (below, or by a later batch).
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    let mut held: BTreeMap<u64, Held> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut unknown = Vec::new();
    {
        let mut advance = tx.prepare_cached(
            "UPDATE user_seqs SET seq = seq + ?1, unindexed = unindexed + ?1 \
             WHERE user_id = ?2 RETURNING seq, unindexed",
        )?;
        for (&user, &n) in &counts {
            let head: Option<(i64, i64)> = advance
                .query_row(params![n as i64, user as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let Some((head, unindexed)) = head else {
                missing.push(user);
                continue;
            };
            let (old_head, old_unindexed) = (head as u64 - n, unindexed as u64 - n);
            next.insert(user, old_head + 1);
            match lag.take(user, old_head, old_unindexed) {
                Some(Ok(h)) => {
                    held.insert(user, h);
                }
                // Entries this thread does not hold the rows of: folded
                // from the database by the store, and the batch sent again.
                _ if old_unindexed > 0 => unknown.push(user),
                _ => {
                    held.insert(
                        user,
                        Held {
                            head: old_head,
                            ..Held::default()
                        },
                    );
                }
            }
        }
    }
    if !missing.is_empty() || !unknown.is_empty() {
        // Dropping the transaction rolls it back; what was held is as valid
        // as before.
        for (user, h) in held {
            lag.hold(user, h);
        }
        return Ok(Err(match missing.is_empty() {
            false => Refusal::Missing(MissingUsers(missing)),
            true => Refusal::Unindexed(unknown),
        }));
    }
    // 2. Seqs in message order, so a connection's sends keep their order.
    let mut appended = Vec::with_capacity(msgs.len());
    let mut rows = Vec::new();
    for m in msgs {
        let mut seqs = Vec::with_capacity(m.recipients.len());
        for r in &m.recipients {
            let slot = next.get_mut(&r.user_id).expect("counted above");
            seqs.push(*slot);
            rows.push(NewRow::of(m, r.user_id, *slot, r.conv_id));
            *slot += 1;
        }
        appended.push(Appended { seqs });
    }
    // 3. The conversations' heads (held, or read), then the message once,
    // its list rows and the index.
    let known = conversation_heads(&tx, &rows, &held)?;
    let indexed = conversations::index(&rows, &known);
    {
        let mut message = tx.prepare_cached(
            "INSERT INTO messages (id, sender_id, sender_device_id, conv_type, receiver_id, \
             content_type, content, mentions, client_msg_id, status, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
        )?;
        for m in msgs {
            message.execute(params![
                &m.id[..],
                m.sender_id as i64,
                m.sender_device_id as i64,
                i64::from(m.conv_type),
                m.receiver_id as i64,
                i64::from(m.content_type),
                &m.content[..],
                super::messages::encode_mentions(&m.mentions),
                m.client_msg_id.as_deref(),
                m.created_at,
            ])?;
        }
        let mut list_row = tx.prepare_cached(
            "INSERT INTO user_messages (user_id, seq, message_id, conv_type, conv_id, prev_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (row, prev_seq) in rows.iter().zip(&indexed.prev_seqs) {
            list_row.execute(params![
                row.user_id as i64,
                row.seq as i64,
                row.message_id,
                i64::from(row.conv_type),
                row.conv_id as i64,
                *prev_seq as i64,
            ])?;
        }
        if after_send {
            let mut queue = tx.prepare_cached(
                "INSERT INTO webhook_outbox (message_id, created_at) VALUES (?1, ?2)",
            )?;
            for m in msgs {
                queue.execute(params![&m.id[..], m.created_at])?;
            }
        }
    }
    // 4. The rows changed join those held; a list whose entries have waited
    // long enough has its rows written.
    for (key, (head, existed)) in indexed.heads {
        let h = held.get_mut(&key.user_id).expect("a recipient's list");
        let existed = h.rows.get(&key).map_or(existed, |(_, e)| *e);
        h.rows.insert(key, (head, existed));
    }
    for (user, h) in held.iter_mut() {
        h.head = next[user] - 1;
        h.unindexed += counts[user];
    }
    let mut written = Vec::new();
    for (user, h) in &held {
        if h.unindexed >= sqlite_lag::MAX_UNINDEXED {
            sqlite_lag::write(&tx, *user, h)?;
            written.push(*user);
        }
    }
    for user in written {
        held.remove(&user);
    }
    let others = match lag.is_full() {
        true => lag.drain(),
        false => Vec::new(),
    };
    for (user, h) in &others {
        sqlite_lag::write(&tx, *user, h)?;
    }
    tx.commit()?;
    for (user, h) in held {
        lag.hold(user, h);
    }
    Ok(Ok(appended))
}

/// The current head of each conversation `rows` append to, for those that
/// have one: as `held`, or as the database has it ([`Store::append_in`]
/// reads the same in chunks).
///
/// [`Store::append_in`]: super::Store::append_in
fn conversation_heads(
    tx: &rusqlite::Transaction<'_>,
    rows: &[NewRow<'_>],
    held: &BTreeMap<u64, Held>,
) -> Result<BTreeMap<ConvKey, Head>, WriterError> {
    let mut read = tx.prepare_cached(
        "SELECT last_seq, change_seq, unread, mentions, hidden FROM conversations \
         WHERE user_id = ?1 AND conv_type = ?2 AND conv_id = ?3",
    )?;
    let mut known = BTreeMap::new();
    let mut asked = std::collections::BTreeSet::new();
    for row in rows {
        let key = row.key();
        if !asked.insert(key) {
            continue;
        }
        if let Some((head, _)) = held.get(&key.user_id).and_then(|h| h.rows.get(&key)) {
            known.insert(key, *head);
            continue;
        }
        let head = read
            .query_row(
                params![
                    key.user_id as i64,
                    i64::from(key.conv_type),
                    key.conv_id as i64
                ],
                |r| {
                    Ok(Head {
                        last_seq: r.get::<_, i64>(0)? as u64,
                        change_seq: r.get::<_, i64>(1)? as u64,
                        unread: r.get::<_, i64>(2)? as u64,
                        mentions: r.get::<_, i64>(3)? as u64,
                        hidden: r.get::<_, i64>(4)? != 0,
                    })
                },
            )
            .optional()?;
        if let Some(head) = head {
            known.insert(key, head);
        }
    }
    Ok(known)
}

/// A SQLite error from the writer, shaped as sqlx's so that the store
/// classifies it as it does every other: unique violations, outages
/// ([`super::Outage::of`]) and retryable busy errors by their codes.
#[derive(Debug)]
pub(crate) struct WriterError {
    /// SQLite's extended result code; -1 for none.
    code: i32,
    message: String,
}

impl WriterError {
    fn internal(message: &str) -> WriterError {
        WriterError {
            code: -1,
            message: message.to_owned(),
        }
    }

    /// SQLite's extended result code, if the error came from SQLite.
    pub(crate) fn sqlite_code(&self) -> Option<i32> {
        (self.code >= 0).then_some(self.code)
    }
}

impl From<rusqlite::Error> for WriterError {
    fn from(e: rusqlite::Error) -> WriterError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => WriterError {
                code: f.extended_code,
                message: e.to_string(),
            },
            _ => WriterError::internal(&e.to_string()),
        }
    }
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriterError {}

impl sqlx::error::DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.sqlite_code().map(|c| Cow::Owned(c.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        // SQLITE_CONSTRAINT_* extended codes (the primary code is 19).
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
