//! Rate limits that must hold for a user across every logic node: events
//! counted per key in fixed windows. In memory for one logic node
//! (standalone), in Redis when several share the users.
//!
//! A counter failure (Redis unreachable) never fails a request: the limit
//! is skipped and the failure logged, as with the caches.

mod memory;
mod redis;
#[cfg(test)]
mod tests;

pub use self::redis::RedisCounter;
pub use memory::MemoryCounter;

use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use crate::cache::CacheError;
use crate::error::{LogicError, Result};
use crate::rpc::Caller;
use crate::Logic;

/// Counts events per key in fixed windows of wall-clock time, so every
/// node agrees on where a window starts.
#[async_trait]
pub trait WindowCounter: Send + Sync + 'static {
    /// Counts one event of `key` in the current window of length `window`;
    /// returns how many this window has had, this one included.
    async fn hit(&self, key: &str, window: Duration) -> std::result::Result<u64, CacheError>;
}

/// The window number of `now_ms` for windows of `window`.
pub(crate) fn window_index(now_ms: i64, window: Duration) -> u64 {
    (now_ms.max(0) as u64) / (window.as_millis().max(1) as u64)
}

/// Takes one SEND from the user's budget of `user_sends_per_sec`, or
/// answers RATE_LIMITED. 0 turns the limit off; sends the admin API makes
/// on a user's behalf do not count.
pub(crate) async fn check_send(logic: &Logic, caller: &Caller) -> Result<()> {
    let limit = u64::from(logic.cfg.user_sends_per_sec);
    if limit == 0 || caller.is_admin() {
        return Ok(());
    }
    let user_id = caller.user_id;
    let key = format!("send:{user_id}");
    match logic.counters.hit(&key, Duration::from_secs(1)).await {
        Ok(n) if n > limit => {
            if n == limit + 1 {
                // Once per offender per window.
                warn!(
                    user_id,
                    limit, "user over the send rate; answering RATE_LIMITED"
                );
            }
            Err(LogicError::RateLimited("too many messages; slow down"))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            warn!(error = %e, "send rate counter unavailable; not limiting");
            Ok(())
        }
    }
}
