//! The store: one sqlx code path over SQLite (standalone) and MySQL/MariaDB
//! (cluster), through sqlx's `Any` driver. The few dialect differences live
//! in [`dialect`]. Every value is bound as a parameter.

mod accounts;
mod devices;
mod dialect;
pub mod friends;
pub mod groups;
pub(crate) mod messages;
pub mod recall;
mod users;

pub use accounts::DeviceRow;
pub use devices::{Device, NewDevice};
pub use dialect::Dialect;
pub use messages::{
    Appended, Existing, ListEntry, MissingUsers, NewMessage, Recipient, StoredMessage,
};
pub use users::{NewUser, User};

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
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
}

impl StoreError {
    /// Maps unique-key violations to [`StoreError::Conflict`].
    pub(crate) fn classify(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Connection pool plus the dialect it speaks.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

impl Store {
    /// Connects to `url` (`sqlite:path?mode=rwc` or `mysql://…`) and applies
    /// the dialect's migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(dialect.pool_size())
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for pragma in dialect.session_setup() {
                        conn.execute(*pragma).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        dialect.migrate(&pool).await?;
        info!(?dialect, "store ready");
        Ok(Store { pool, dialect })
    }

    /// Opens (creating if needed) the SQLite database `tern.db` in `dir`.
    pub async fn open_sqlite_dir(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("tern.db").display());
        Store::connect(&url).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction for changes that must commit together (a state change
    /// and its system events).
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(self.pool.begin_with(self.dialect.begin_write_sql()).await?)
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
mod social_tests;
#[cfg(test)]
pub(crate) mod tests;
