//! The write that tells whether the database can serve. A read passes on a
//! full disk, a read-only file or a read-only server, so readiness writes:
//! each store (a logic node) rewrites its own row of `store_probe`, so no
//! node waits for another's lock. The write is skipped while commits
//! succeed anyway, runs once at a time with its answer reused for a second,
//! and is bounded in time, so that a probe loop costs the database at most
//! one small write a second and never holds requests up.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tracing::warn;

use super::{Result, Store};

/// A commit this recent proves the database takes writes.
const RECENT_COMMIT: Duration = Duration::from_secs(1);
/// How long a probe's answer is reused.
const REUSE: Duration = Duration::from_secs(1);
/// How long a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Rows of stores not seen for this long are removed at start.
const FORGET_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

/// This store's probe row and its last answer.
#[derive(Debug)]
pub(crate) struct Probe {
    id: i64,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Default for Probe {
    fn default() -> Probe {
        Probe {
            // Positive and random: distinct per node without coordination.
            id: (rand::random::<u64>() >> 1) as i64,
            last: Mutex::new(None),
        }
    }
}

impl Store {
    /// Writes this store's probe row in a transaction of its own (removing
    /// the rows of stores long gone when `forget_old`): whether the
    /// database takes a write now. A success ends a recorded outage.
    pub(crate) async fn probe_write(&self, forget_old: bool) -> Result<()> {
        let now = tern_public::time::now_ms();
        let mut tx = self.begin_write().await?;
        if forget_old {
            sqlx::query("DELETE FROM store_probe WHERE written_at < ?")
                .bind(now - FORGET_AFTER_MS)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM store_probe WHERE id = ?")
            .bind(self.probe.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO store_probe (id, written_at) VALUES (?, ?)")
            .bind(self.probe.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Changes no standing: other nodes' send caches stay.
        self.commit_messages(tx).await
    }

    /// Whether the store can serve: `Ok` when the database takes a write,
    /// else why not, in words fit for an unauthenticated `/readyz` (the
    /// details go to the log).
    pub async fn readiness(&self) -> Result<(), String> {
        if self.health.down().is_none() && self.health.committed_within(RECENT_COMMIT) {
            return Ok(());
        }
        let mut last = self.probe.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < REUSE {
                return answer.clone();
            }
        }
        let answer = match tokio::time::timeout(PROBE_TIMEOUT, self.probe_write(false)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let outage = self.health.failed(&e);
                warn!(database = %self.target, error = %e, "readiness probe: the database refused a write");
                Err(match outage {
                    Some(o) => o.to_string(),
                    None => "the database refused a write (see the log)".to_owned(),
                })
            }
            Err(_) => {
                warn!(database = %self.target, "readiness probe: no answer to a write in time");
                Err(format!(
                    "no answer to a write within {} s",
                    PROBE_TIMEOUT.as_secs()
                ))
            }
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}
