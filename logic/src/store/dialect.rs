//! What differs between SQLite and MySQL. Everything else is one SQL path.

use sqlx::any::AnyArguments;
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::{Result, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/mysql");

/// The size, in bytes, a WAL file is cut back to when it starts over:
/// 64 MiB, about the backstop checkpoint's 16,000 pages. Smaller under
/// unit tests, so one can grow a WAL past it.
#[cfg(not(test))]
const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 67108864";
#[cfg(test)]
pub(crate) const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 1048576";

/// The SQL engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

impl Dialect {
    pub fn from_url(url: &str) -> Result<Dialect> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Dialect::MySql)
        } else {
            Err(StoreError::UnsupportedUrl(super::describe(url)))
        }
    }

    pub(crate) fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::MySql => &MYSQL_MIGRATIONS,
        }
    }

    /// Applies the migrations. On MySQL several logic nodes may start at
    /// once, so the run holds a named lock of the database. sqlx takes one
    /// too but ignores GET_LOCK's answer, and MariaDB answers its infinite
    /// wait (-1) with an immediate 0: two nodes then both apply version 1.
    pub(crate) async fn migrate(self, pool: &sqlx::AnyPool) -> Result<()> {
        let migrator = self.migrator();
        if self == Dialect::Sqlite {
            migrator.run(pool).await?;
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        let got: Option<i64> = sqlx::query_scalar(
            "SELECT GET_LOCK(CONCAT('tern_migrate_', LEFT(MD5(COALESCE(DATABASE(), '')), 32)), 120)",
        )
        .fetch_one(&mut *conn)
        .await?;
        if got != Some(1) {
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "could not take the migration lock within 120 s".into(),
            )));
        }
        let ran = migrator.run_direct(&mut *conn).await;
        let released = sqlx::query(
            "SELECT RELEASE_LOCK(CONCAT('tern_migrate_', LEFT(MD5(COALESCE(DATABASE(), '')), 32)))",
        )
        .execute(&mut *conn)
        .await;
        ran?;
        released?;
        Ok(())
    }

    /// Statements run on every new connection.
    ///
    /// SQLite: WAL so readers never block the writer; `synchronous = FULL`
    /// so a committed message survives power loss, not only a crash (the
    /// group commit amortises the fsync over a whole batch); a busy timeout
    /// so concurrent writers wait instead of failing; statement journals
    /// (taken by every multi-row statement of a batch, to undo it alone)
    /// in memory rather than in a temporary file written and read back.
    ///
    /// Checkpoints: a thread beside the batch writer copies the WAL into
    /// the database file every 100 ms and has the WAL start over once it
    /// passes 4,000 pages; it peaks an interval or two of writes above
    /// that (`sqlite_writer/checkpoint.rs`). Each connection's own
    /// checkpoint, run inside the commit that takes the WAL past
    /// `wal_autocheckpoint` pages, is only the backstop should that thread
    /// fall behind: at 16,000 pages (about 64 MB) rather than SQLite's
    /// 1,000. A reader that holds a snapshot for long keeps the WAL
    /// growing, as before; the first commit after it starts over cuts the
    /// file back to [`WAL_SIZE_LIMIT`], which normal load stays below, so
    /// a burst does not keep its disk space. A full disk still fails
    /// writes once the WAL cannot grow.
    pub(crate) fn session_setup(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA temp_store = MEMORY",
                "PRAGMA wal_autocheckpoint = 16000",
                WAL_SIZE_LIMIT,
            ],
            Dialect::MySql => &["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"],
        }
    }

    /// The end of a multi-row INSERT into `conversations` that writes each
    /// row's head (last_seq, change_seq, unread, mentions, hidden) over the
    /// existing row's, if there is one.
    pub(crate) fn conversation_head_upsert(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                " ON CONFLICT (user_id, conv_type, conv_id) DO UPDATE SET \
                 last_seq = excluded.last_seq, change_seq = excluded.change_seq, \
                 unread = excluded.unread, mentions = excluded.mentions, hidden = excluded.hidden"
            }
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE \
                 last_seq = VALUES(last_seq), change_seq = VALUES(change_seq), \
                 unread = VALUES(unread), mentions = VALUES(mentions), hidden = VALUES(hidden)"
            }
        }
    }

    /// Text to end an INSERT with so [`Dialect::insert_id`] can read the new id.
    pub(crate) fn returning_id(self) -> &'static str {
        match self {
            Dialect::Sqlite => " RETURNING id",
            // MySQL 8 has no INSERT … RETURNING; the protocol reports the id.
            Dialect::MySql => "",
        }
    }

    /// Runs an INSERT built with [`Dialect::returning_id`] and returns the new row's id.
    pub(crate) async fn insert_id<'q>(
        self,
        conn: &mut AnyConnection,
        q: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<i64> {
        match self {
            Dialect::Sqlite => {
                let row = q.fetch_one(conn).await.map_err(StoreError::classify)?;
                Ok(row.try_get::<i64, _>(0)?)
            }
            Dialect::MySql => {
                let done = q.execute(conn).await.map_err(StoreError::classify)?;
                done.last_insert_id().ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol("no insert id".into()))
                })
            }
        }
    }

    /// Starts a transaction that will write. SQLite takes the write lock at
    /// once: a deferred transaction that reads first fails with SQLITE_BUSY
    /// when another writer commits before its first write.
    /// An INSERT that skips rows whose unique key is taken.
    pub(crate) fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR IGNORE",
            Dialect::MySql => "INSERT IGNORE",
        }
    }

    /// The end of a SELECT that claims rows in a write transaction: rows
    /// another transaction holds are passed over (MariaDB 10.6+, MySQL 8).
    /// SQLite's write transactions run one at a time, so it needs none.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::MySql => " FOR UPDATE SKIP LOCKED",
        }
    }

    pub(crate) fn begin_write_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::MySql => "BEGIN",
        }
    }

    pub(crate) fn pool_size(self) -> u32 {
        match self {
            // One writer at a time anyway; a few readers alongside.
            Dialect::Sqlite => 8,
            Dialect::MySql => 32,
        }
    }

    /// Whether an error means the connection was lost (or the server is
    /// gone), so that a statement that changed nothing, or a read, may run
    /// again on another connection. The pool does not ping a connection
    /// before handing it out (a round trip per use, and on SQLite a
    /// hand-off to its worker thread and back: a SQLite connection cannot
    /// be lost); a MySQL connection cut or left over from before a server
    /// restart fails its next statement instead, sqlx closes it as it goes
    /// back to the pool (its release ping fails), and the caller retries.
    pub(crate) fn lost_connection(self, e: &sqlx::Error) -> bool {
        self == Dialect::MySql && super::Outage::of(e) == Some(super::Outage::ConnectionLost)
    }

    /// Errors after which the whole transaction may simply be run again:
    /// deadlocks and lock-wait timeouts (MySQL), a busy database (SQLite).
    pub(crate) fn is_retryable(self, e: &sqlx::Error) -> bool {
        let sqlx::Error::Database(d) = e else {
            return false;
        };
        let code = d.code();
        let code = code.as_deref().unwrap_or("");
        match self {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
            Dialect::Sqlite => matches!(code, "5" | "6" | "261" | "517" | "262"),
            // ER_LOCK_DEADLOCK 1213 (SQLSTATE 40001), ER_LOCK_WAIT_TIMEOUT 1205.
            Dialect::MySql => {
                matches!(code, "40001" | "1213" | "1205" | "HY000")
                    && (d.message().contains("Deadlock") || d.message().contains("Lock wait"))
            }
        }
    }
}
