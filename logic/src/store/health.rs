//! Whether the database can take writes now, and if not, why: a full disk,
//! a read-only file or server, an I/O error, a lost connection. Such a
//! failure is an outage, not a bug: clients are told UNAVAILABLE and retry,
//! `/readyz` names it, and a metric counts it. The store records every
//! failed and every successful write transaction here; the outage ends with
//! the first write that succeeds, a client's or the readiness probe's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::{error, info};

use super::sqlite_writer::WriterError;
use super::StoreError;

/// Why the database cannot be written, in an operator's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outage {
    /// The disk or the table is full (SQLITE_FULL; MySQL 1021, 1114).
    DiskFull,
    /// The file, the filesystem or the server is read-only (SQLITE_READONLY;
    /// MySQL 1036, 1290, 1792, 1836).
    ReadOnly,
    /// The storage failed a read or a write (SQLITE_IOERR; MySQL 3, 1026,
    /// 1030, 1180).
    Io,
    /// The database file cannot be opened (SQLITE_CANTOPEN).
    CannotOpen,
    /// The connection to the server was lost or refused, or the server is
    /// shutting down or not ready (MySQL 1053, 1129, 1927, 4031; Galera
    /// 1047; TiDB 9001, 9002, 9005).
    ConnectionLost,
    /// The server refuses more connections (MySQL 1040, 1203, 1226).
    TooManyConnections,
    /// No connection became free in time: the server is slow or gone.
    PoolTimeout,
}

impl Outage {
    /// The label in metrics and `/readyz`.
    pub fn label(self) -> &'static str {
        match self {
            Outage::DiskFull => "disk_full",
            Outage::ReadOnly => "read_only",
            Outage::Io => "io_error",
            Outage::CannotOpen => "cannot_open",
            Outage::ConnectionLost => "connection_lost",
            Outage::TooManyConnections => "too_many_connections",
            Outage::PoolTimeout => "pool_timeout",
        }
    }

    /// The outage an error means, if it is one (and not, say, a conflict or
    /// a bug in a statement).
    pub fn of(e: &sqlx::Error) -> Option<Outage> {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
                Some(Outage::ConnectionLost)
            }
            sqlx::Error::PoolTimedOut => Some(Outage::PoolTimeout),
            sqlx::Error::WorkerCrashed => Some(Outage::Io),
            sqlx::Error::Database(d) => {
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite's (extended) result code, as a number.
                    sqlite_outage(d.code().and_then(|c| c.parse().ok())?)
                } else if let Some(w) = d.try_downcast_ref::<WriterError>() {
                    sqlite_outage(w.sqlite_code()?)
                } else if let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    match m.number() {
                        1021 | 1114 => Some(Outage::DiskFull),
                        1036 | 1290 | 1792 | 1836 => Some(Outage::ReadOnly),
                        3 | 1026 | 1030 | 1180 => Some(Outage::Io),
                        // Shutdown, host blocked, killed, idle disconnect,
                        // Galera node not ready, TiDB's PD/TiKV/region.
                        1053 | 1129 | 1927 | 4031 | 1047 | 9001 | 9002 | 9005 => {
                            Some(Outage::ConnectionLost)
                        }
                        1040 | 1203 | 1226 => Some(Outage::TooManyConnections),
                        _ => None,
                    }
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// The outage a SQLite (extended) result code means, if any: the primary
/// code is its low byte.
fn sqlite_outage(code: i32) -> Option<Outage> {
    match code & 0xff {
        13 => Some(Outage::DiskFull),
        8 => Some(Outage::ReadOnly),
        10 => Some(Outage::Io),
        14 => Some(Outage::CannotOpen),
        _ => None,
    }
}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outage::DiskFull => "the disk is full",
            Outage::ReadOnly => "the database is read-only",
            Outage::Io => "the storage failed an I/O operation",
            Outage::CannotOpen => "the database file cannot be opened",
            Outage::ConnectionLost => "the connection to the database was lost",
            Outage::TooManyConnections => "the database refuses more connections",
            Outage::PoolTimeout => "no database connection became free in time",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

/// The store's writability: the current outage, if any, when a commit
/// last succeeded, and a count of outage failures by cause.
#[derive(Debug)]
pub struct Health {
    /// Set while `down` holds an outage, so that the common case (a commit
    /// while all is well) costs one atomic load, not a lock.
    is_down: AtomicBool,
    down: Mutex<Option<Down>>,
    /// Milliseconds from `born` to the last successful commit, plus one (0:
    /// none yet).
    last_commit: AtomicU64,
    born: Instant,
    failures: Family<CauseLabels, Counter>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            is_down: AtomicBool::new(false),
            down: Mutex::new(None),
            last_commit: AtomicU64::new(0),
            born: Instant::now(),
            failures: Family::default(),
        }
    }
}

/// An outage as last seen: its cause and the database's own words.
#[derive(Clone, Debug)]
pub struct Down {
    pub outage: Outage,
    pub detail: String,
}

impl Health {
    /// Records a failed database operation; returns the outage it means, if
    /// it is one. The first of an outage is logged, with its cause.
    pub(crate) fn failed(&self, e: &StoreError) -> Option<Outage> {
        let outage = e.outage()?;
        self.record(outage, e.to_string());
        Some(outage)
    }

    /// Records an outage found elsewhere (`detail` is the error, for the
    /// log and /readyz): counted, and logged when it begins.
    pub(crate) fn record(&self, outage: Outage, detail: String) {
        self.failures
            .get_or_create(&CauseLabels {
                cause: outage.label(),
            })
            .inc();
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            error!(cause = outage.label(), error = %detail, "database cannot take writes");
        }
        *down = Some(Down { outage, detail });
        self.is_down.store(true, Ordering::Release);
    }

    /// Records a successful commit: any outage is over.
    pub(crate) fn succeeded(&self) {
        let since_born = self.born.elapsed().as_millis() as u64 + 1;
        self.last_commit.fetch_max(since_born, Ordering::Relaxed);
        if !self.is_down.load(Ordering::Acquire) {
            return;
        }
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = down.take() {
            info!(cause = d.outage.label(), "database takes writes again");
        }
        self.is_down.store(false, Ordering::Release);
    }

    /// Whether a commit succeeded within `d`.
    pub(crate) fn committed_within(&self, d: Duration) -> bool {
        match self.last_commit.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let now = self.born.elapsed().as_millis() as u64 + 1;
                now.saturating_sub(at) <= d.as_millis() as u64
            }
        }
    }

    /// The current outage, if the last operation that failed had one and
    /// no commit succeeded since.
    pub fn down(&self) -> Option<Down> {
        if !self.is_down.load(Ordering::Acquire) {
            return None;
        }
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds the failure counter to `r` (`tern_store_failures_total`).
    pub fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "store_failures",
            "Database operations that failed for an outage (disk full, read-only, lost connection, ...), by cause",
            self.failures.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_recorded_counted_and_ended_by_a_success() {
        let h = Health::default();
        assert!(h.down().is_none());
        let full = StoreError::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(h.failed(&full), Some(Outage::PoolTimeout));
        assert_eq!(h.down().map(|d| d.outage), Some(Outage::PoolTimeout));
        // Not an outage: a conflict leaves the state alone.
        assert_eq!(h.failed(&StoreError::Conflict), None);
        assert!(h.down().is_some());
        assert!(!h.committed_within(Duration::from_secs(3600)));
        h.succeeded();
        assert!(h.down().is_none());
        assert!(h.committed_within(Duration::from_secs(3600)));
        let mut text = String::new();
        let mut r = prometheus_client::registry::Registry::default();
        h.register(&mut r);
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("store_failures_total{cause=\"pool_timeout\"} 1"),
            "{text}"
        );
    }
}
