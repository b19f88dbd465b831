//! The store: one sqlx code path over SQLite (standalone) and MySQL/MariaDB
//! (cluster), through sqlx's `Any` driver. The few dialect differences live
//! in [`dialect`]. Every value is bound as a parameter.

mod accounts;
mod conversation_reads;
pub mod conversations;
mod devices;
mod dialect;
pub mod friends;
pub mod groups;
mod health;
pub(crate) mod messages;
mod probe;
mod push_outbox;
mod push_tokens;
pub mod read_positions;
pub mod recall;
mod sqlite_writer;
mod standing;
mod unindexed;
mod users;
mod webhook_outbox;

pub use accounts::{DeviceRow, Devices};
pub use devices::{Device, NewDevice};
pub use dialect::Dialect;
pub use health::{Down, Health, Outage};
pub use messages::{
    Appended, Existing, ListEntry, MissingUsers, NewMessage, Recipient, StoredMessage,
};
pub use push_outbox::{Claimed, OutboxRow};
/// The outbox's `kind`s.
pub mod push_outbox_kinds {
    pub use super::push_outbox::{ALERT, WITHDRAW};
}
pub use push_tokens::PushToken;
pub use standing::SharedGeneration;
pub use users::{NewUser, User};
pub use webhook_outbox::{Queued, WebhookState};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, TransactionManager};
use tracing::info;

/// Why a store operation failed. Classified into reply codes at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unique constraint violated")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {0:?}: use sqlite:… or mysql://…")]
    UnsupportedUrl(String),
    /// The database could not be opened at start; `what` names it ("the
    /// database <path or URL>").
    #[error("cannot open {what}: {cause}")]
    Open { what: String, cause: String },
    /// The database, its directory or one of its files refuses writes
    /// (checked at start); `what` names it.
    #[error("{what} cannot be written: {cause}")]
    NotWritable { what: String, cause: String },
}

impl StoreError {
    /// Maps unique-key violations to [`StoreError::Conflict`].
    pub(crate) fn classify(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }

    /// The outage this error means (disk full, read-only, connection lost,
    /// ...), if it is one: the client may retry once it is over.
    pub fn outage(&self) -> Option<Outage> {
        match self {
            StoreError::Database(e) => Outage::of(e),
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a request waits for a database connection before it is
/// answered UNAVAILABLE: below the bus's request timeout (5 s), so that a
/// client hears why rather than a timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(4);

/// An open write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Connection pool plus the dialect it speaks.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    health: Arc<Health>,
    probe: Arc<probe::Probe>,
    standing: Arc<standing::StandingCache>,
    /// What to call the database in messages: a path, or a URL without
    /// its password.
    target: Arc<str>,
    /// SQLite in a file: the thread that commits batches of chat messages.
    writer: Option<Arc<sqlite_writer::Writer>>,
    /// Appends also queue their messages for the after-send webhook.
    after_send: Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Connects to `url` (`sqlite:path?mode=rwc` or `mysql://…`), applies
    /// the dialect's migrations and checks that the database takes a write:
    /// a node that cannot write refuses to start rather than report ready.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let target: Arc<str> = describe(url).into();
        let open_error = |e: StoreError| StoreError::Open {
            what: format!("the database {target}"),
            cause: explain_open(&e),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(dialect.pool_size())
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Lost connections are noticed by the statement that uses them
            // (Dialect::lost_connection), not by a ping per acquire.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for pragma in dialect.session_setup() {
                        conn.execute(*pragma).await?;
                    }
                    Ok(())
                })
            })
            .after_release(|conn, _meta| Box::pin(settle(conn)))
            .connect(url)
            .await
            .map_err(|e| open_error(e.into()))?;
        dialect.migrate(&pool).await.map_err(open_error)?;
        let writer = match dialect {
            Dialect::Sqlite => {
                // The file SQLite itself opened (the URL's path decoded);
                // empty for an in-memory database, which one connection
                // cannot share with another.
                let file: String =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_one(&pool)
                        .await
                        .map_err(|e| open_error(e.into()))?;
                match file.is_empty() {
                    true => None,
                    false => Some(Arc::new(sqlite_writer::Writer::start(
                        &file,
                        dialect.session_setup(),
                    )?)),
                }
            }
            Dialect::MySql => None,
        };
        let store = Store {
            pool,
            dialect,
            health: Arc::default(),
            probe: Arc::default(),
            // Only SQLite's writers are all in this process.
            standing: Arc::new(standing::StandingCache::new(dialect == Dialect::Sqlite)),
            target,
            writer,
            after_send: Arc::default(),
        };
        store
            .probe_write(true)
            .await
            .map_err(|e| StoreError::NotWritable {
                what: format!("the database {}", store.target),
                cause: explain_open(&e),
            })?;
        info!(?dialect, "store ready");
        Ok(store)
    }

    /// Opens (creating if needed) the SQLite database `tern.db` in `dir`,
    /// first checking that the directory and the database's files can be
    /// written, so that a read-only disk is named as such at start.
    pub async fn open_sqlite_dir(dir: &Path) -> Result<Store> {
        let not_writable = |what: &str, path: &Path, e: std::io::Error| StoreError::NotWritable {
            what: format!("the {what} {}", path.display()),
            cause: e.to_string(),
        };
        let data_dir = |e| not_writable("data directory", dir, e);
        std::fs::create_dir_all(dir).map_err(data_dir)?;
        let probe = dir.join(".tern-write-check");
        std::fs::write(&probe, b"").map_err(data_dir)?;
        let _ = std::fs::remove_file(&probe);
        let db = dir.join("tern.db");
        for file in [db.clone(), dir.join("tern.db-wal"), dir.join("tern.db-shm")] {
            match std::fs::OpenOptions::new().write(true).open(&file) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(not_writable("database file", &file, e)),
            }
        }
        Store::connect(&format!("sqlite://{}?mode=rwc", db.display())).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database takes writes, and the count of refused ones.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The database as messages name it: a path, or a URL without password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A transaction for changes that must commit together (a state change
    /// and its system events). End it with [`Store::commit`].
    pub async fn begin_write(&self) -> Result<Tx> {
        // A BEGIN that fails changed nothing: one on a lost connection is
        // retried on another (the failed one is closed on release).
        self.reconnecting(|| async {
            Ok(self.pool.begin_with(self.dialect.begin_write_sql()).await?)
        })
        .await
    }

    /// Runs `op` (a read, or a statement that changes nothing when it
    /// fails) again while it fails for a lost connection, at most once per
    /// pooled connection plus one: after a server restart every idle
    /// connection is dead, and each fails at once.
    pub(crate) async fn reconnecting<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut tries = self.dialect.pool_size() + 1;
        loop {
            match op().await {
                Err(StoreError::Database(e)) if tries > 1 && self.dialect.lost_connection(&e) => {
                    tries -= 1;
                    tracing::debug!(error = %e, "lost database connection; retrying on another");
                }
                other => return other,
            }
        }
    }

    /// Commits `tx`; a success tells [`Store::health`] the database takes
    /// writes. (Failures are recorded where they are answered, once.) Any
    /// commit may change a status or a relation, so cached send standings
    /// are dropped, before the change is answered.
    ///
    /// In a cluster the other logic nodes learn of it through a generation
    /// in Redis, advanced here. When that fails the change is still
    /// answered as done, since it is committed and a retry could not tell
    /// (a second group, "username taken"); it is logged, and a node that
    /// can still read the generation may send on the old standing until
    /// its entry expires (30 s). Nodes that cannot read it read the store.
    pub async fn commit(&self, tx: Tx) -> Result<()> {
        let committed = tx.commit().await.map_err(StoreError::classify);
        // Also after a failed commit: it may have been applied.
        self.standing.changed();
        let published = self.standing.publish().await;
        committed?;
        self.health.succeeded();
        if let Err(e) = published {
            tracing::warn!(error = %e, "committed, but the send standing generation in Redis was not advanced: other nodes may use an old standing for up to 30 s");
        }
        Ok(())
    }

    /// Commits a transaction that changes no status and no relation (a
    /// batch of chat messages, the readiness probe): the send standing
    /// caches stay, here and on every other node.
    pub(crate) async fn commit_messages(&self, tx: Tx) -> Result<()> {
        tx.commit().await.map_err(StoreError::classify)?;
        self.health.succeeded();
        Ok(())
    }

    /// Shares the send standing cache with every logic node that uses the
    /// same `generation` (a counter in Redis): for a MySQL store, whose
    /// other writers are other logic nodes. Call before cloning the store.
    pub fn share_standing(&mut self, generation: Arc<dyn standing::SharedGeneration>) {
        if self.dialect == Dialect::MySql {
            self.standing = Arc::new(standing::StandingCache::shared(generation));
        }
    }

    /// From now on, every append also queues its messages for the
    /// after-send webhook (in the same transaction).
    pub fn record_after_send(&self, on: bool) {
        self.after_send
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn records_after_send(&self) -> bool {
        self.after_send.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a failed transaction may simply be run again.
    pub fn is_retryable(&self, e: &StoreError) -> bool {
        matches!(e, StoreError::Database(d) if self.dialect.is_retryable(d))
    }

    /// A trivial query: the store answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Decides, as a connection goes back to the pool, whether it may be used
/// again. A transaction dropped without commit queued a rollback; when that
/// rollback failed (SQLite rolls a transaction back by itself when a commit
/// fails for a full disk, so the queued ROLLBACK finds none) sqlx still
/// counts the connection as inside a transaction, and every later BEGIN on
/// it would fail. Such a connection is rolled back here or closed.
async fn settle(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // Runs after any queued rollback: the worker takes commands in order.
    let _ = sqlx::any::AnyTransactionManager::rollback(conn).await;
    Ok(!conn.is_in_transaction())
}

/// The database as messages name it: the SQLite file's path, or the URL
/// with any password left out.
pub(super) fn describe(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        return path.split('?').next().unwrap_or(path).to_owned();
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// An error at start in an operator's words: the outage it means first.
fn explain_open(e: &StoreError) -> String {
    match e {
        StoreError::Database(sqlx::Error::PoolTimedOut) => format!(
            "no connection within {} s: is the server running and reachable, or the \
             file locked by another process?",
            ACQUIRE_TIMEOUT.as_secs()
        ),
        e => match e.outage() {
            Some(o) => format!("{o} ({e})"),
            None => e.to_string(),
        },
    }
}

/// Reads an id column (stored as signed BIGINT) as the wire's u64.
pub(crate) fn id(row: &AnyRow, col: &str) -> Result<u64> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(col)? as u64)
}

/// Reads a state column (role, friend state, status) as its domain type;
/// a value no state has reads as [`Stored::FALLBACK`], and is logged.
///
/// [`Stored::FALLBACK`]: crate::domain::Stored::FALLBACK
pub(crate) fn state<T: crate::domain::Stored>(row: &AnyRow, col: &str) -> Result<T> {
    use sqlx::Row;
    Ok(parse_state(row.try_get::<&str, _>(col)?))
}

/// A stored state string as its domain type, or the fallback (logged).
pub(crate) fn parse_state<T: crate::domain::Stored>(value: &str) -> T {
    T::parse(value).unwrap_or_else(|e| {
        tracing::warn!(error = %e, fallback = ?T::FALLBACK, "reading an unknown state as the least it grants");
        T::FALLBACK
    })
}

#[cfg(test)]
mod conversation_tests;
#[cfg(test)]
pub(crate) mod push_tests;
#[cfg(test)]
mod social_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod unindexed_tests;
#[cfg(test)]
mod webhook_tests;
