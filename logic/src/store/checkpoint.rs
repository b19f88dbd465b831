//! SQLite WAL checkpoints off the commit path.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past
//! 1,000 pages: that commit copies 4 MB back into the database and fsyncs
//! it, and every send waiting on that group commit waits for it too. Under
//! a steady send load that was several checkpoints a second, each one
//! rewriting the same hot pages (list heads, index leaves) again.
//!
//! Here a task checkpoints on its own connection every
//! [`CHECKPOINT_EVERY`], PASSIVE, so it never waits for the writer nor
//! makes it wait (WAL mode lets the writer append while frames are copied
//! back). The commit-time checkpoint stays as a backstop at 50,000 pages
//! (200 MB), should this task fall behind, and the WAL file is cut back to
//! 64 MiB when it restarts (both set in `Dialect::session_setup`).

use std::time::Duration;

use sqlx::AnyPool;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

/// How often the WAL is copied back into the database.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Starts checkpointing `pool`'s database; it stops when the pool is
/// closed or the returned guard is dropped (with the store that holds it).
pub(super) fn start(pool: AnyPool) -> DropGuard {
    let stop = CancellationToken::new();
    tokio::spawn(run(pool, stop.clone()));
    stop.drop_guard()
}

async fn run(pool: AnyPool, stop: CancellationToken) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        if pool.is_closed() {
            return;
        }
        // (busy, frames in the WAL, frames copied back)
        let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await;
        match done {
            Ok((_, log, copied)) => debug!(log, copied, "checkpoint"),
            Err(e) if pool.is_closed() => {
                debug!(error = %e, "checkpointer stopped");
                return;
            }
            // Retried at the next tick; the backstop bounds the WAL meanwhile.
            Err(e) => warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}
