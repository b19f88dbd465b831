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

/// Takes one REGISTER or LOGIN attempt from the client address's budget
/// and, for a LOGIN, from the username's, before any password is hashed:
/// a guessing client or a login storm is refused without costing argon2
/// work. The refusal says when to try again (the next window).
pub(crate) async fn check_auth(
    logic: &Logic,
    caller: &Caller,
    username: Option<&str>,
) -> Result<()> {
    if caller.is_admin() {
        return Ok(());
    }
    let per_addr = u64::from(logic.cfg.auth_attempts_per_addr_per_min);
    if let (Some(ip), true) = (client_ip(&caller.remote_addr), per_addr > 0) {
        if over(
            logic,
            &format!("auth:addr:{ip}"),
            per_addr,
            logic.cfg.auth_window,
        )
        .await
        {
            return Err(LogicError::RateLimited(
                "too many sign-in attempts from this address; try again in a minute",
            ));
        }
    }
    let per_user = u64::from(logic.cfg.login_attempts_per_user_per_min);
    if let (Some(name), true) = (username, per_user > 0) {
        if over(
            logic,
            &format!("auth:user:{name}"),
            per_user,
            logic.cfg.auth_window,
        )
        .await
        {
            return Err(LogicError::RateLimited(
                "too many login attempts for this user; try again in a minute",
            ));
        }
    }
    Ok(())
}

/// The IP of a `host:port` peer address, without the port.
fn client_ip(remote_addr: &str) -> Option<std::net::IpAddr> {
    remote_addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip())
}

/// Counts one event of `key` and tells whether the window is past `limit`;
/// logs the first refusal of each window. A counter failure never refuses.
async fn over(logic: &Logic, key: &str, limit: u64, window: Duration) -> bool {
    match logic.counters.hit(key, window).await {
        Ok(n) if n > limit => {
            if n == limit + 1 {
                warn!(key, limit, "over the rate; answering RATE_LIMITED");
            }
            true
        }
        Ok(_) => false,
        Err(e) => {
            warn!(error = %e, key, "rate counter unavailable; not limiting");
            false
        }
    }
}

/// Takes one SEND from the user's budget of `user_sends_per_sec`, or
/// answers RATE_LIMITED. 0 turns the limit off; sends the admin API makes
/// on a user's behalf do not count.
pub(crate) async fn check_send(logic: &Logic, caller: &Caller) -> Result<()> {
    let limit = u64::from(logic.cfg.user_sends_per_sec);
    if limit == 0 || caller.is_admin() {
        return Ok(());
    }
    let key = format!("send:{}", caller.user_id);
    if over(logic, &key, limit, Duration::from_secs(1)).await {
        return Err(LogicError::RateLimited("too many messages; slow down"));
    }
    Ok(())
}
