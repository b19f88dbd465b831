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
use tern_public::time::now_ms;
use tracing::warn;

use crate::actor::{Actor, Connection};
use crate::cache::CacheError;
use crate::error::{LogicError, Result};
use crate::Logic;

/// Counts events per key in fixed windows of wall-clock time, so every
/// node agrees on where a window starts, and keeps lockouts that grow
/// with each repeat.
#[async_trait]
pub trait WindowCounter: Send + Sync + 'static {
    /// Counts one event of `key` in the current window of length `window`;
    /// returns how many this window has had, this one included.
    async fn hit(&self, key: &str, window: Duration) -> std::result::Result<u64, CacheError>;

    /// How much longer `key` is locked out, if it is.
    async fn locked_for(&self, key: &str) -> std::result::Result<Option<Duration>, CacheError>;

    /// Locks `key` out: for `rule.first` the first time, twice as long for
    /// each lockout before it that is not yet forgotten, at most
    /// `rule.max`. Lockouts are forgotten `rule.memory` after the last one.
    /// Returns how long this one lasts.
    async fn lock_out(&self, key: &str, rule: Backoff)
        -> std::result::Result<Duration, CacheError>;
}

/// How lockouts grow: `first`, doubled each time, at most `max`, and
/// forgotten after `memory` without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub memory: Duration,
}

impl Backoff {
    /// The length of lockout number `n` (1 for the first).
    pub fn nth(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(20);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// The window number of `now_ms` for windows of `window`.
pub(crate) fn window_index(now_ms: i64, window: Duration) -> u64 {
    (now_ms.max(0) as u64) / (window.as_millis().max(1) as u64)
}

/// Takes one REGISTER or LOGIN attempt from the client address's budget
/// and, for a LOGIN, from the username's, before any password is hashed:
/// a guessing client or a login storm is refused without costing argon2
/// work. A budget spent within its window locks the address or username
/// out, for a window the first time and twice as long each time after
/// (see [`Backoff`]); the refusal says when to try again.
pub(crate) async fn check_auth(
    logic: &Logic,
    conn: &Connection,
    username: Option<&str>,
) -> Result<()> {
    let per_addr = u64::from(logic.cfg.auth_attempts_per_addr_per_min);
    if let (Some(ip), true) = (client_ip(&conn.remote_addr), per_addr > 0) {
        if let Some(wait) = spend(logic, &format!("auth:addr:{ip}"), per_addr).await {
            return Err(LogicError::rate_limited(
                format!(
                    "too many sign-in attempts from this address; try again in {} s",
                    secs(wait)
                ),
                wait,
            ));
        }
    }
    let per_user = u64::from(logic.cfg.login_attempts_per_user_per_min);
    if let (Some(name), true) = (username, per_user > 0) {
        if let Some(wait) = spend(logic, &format!("auth:user:{name}"), per_user).await {
            return Err(LogicError::rate_limited(
                format!(
                    "too many login attempts for this user; try again in {} s",
                    secs(wait)
                ),
                wait,
            ));
        }
    }
    Ok(())
}

/// Whole seconds, rounded up, for messages people read.
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// Takes one sign-in attempt from `key`'s budget of `limit` a window;
/// returns how long to wait when it is refused. A counter failure never
/// refuses.
async fn spend(logic: &Logic, key: &str, limit: u64) -> Option<Duration> {
    let counters = &logic.counters;
    let rule = logic.cfg.auth_backoff();
    match counters.locked_for(key).await {
        Ok(Some(left)) => return Some(left),
        Ok(None) => {}
        Err(e) => {
            warn!(error = %e, key, "rate counter unavailable; not limiting");
            return None;
        }
    }
    let n = match counters.hit(key, rule.first).await {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, key, "rate counter unavailable; not limiting");
            return None;
        }
    };
    if n <= limit {
        return None;
    }
    // Exactly one attempt, on whichever node, sees the count pass the
    // limit: it alone lengthens the lockout. Others that raced it wait
    // for the lockout it set, or for the end of the window.
    let wait = if n == limit + 1 {
        counters.lock_out(key, rule).await.inspect(|wait| {
            warn!(key, limit, lockout = ?wait, "sign-in budget spent; locked out");
        })
    } else {
        counters
            .locked_for(key)
            .await
            .map(|left| left.unwrap_or(rule.first))
    };
    match wait {
        Ok(wait) => Some(wait),
        Err(e) => {
            warn!(error = %e, key, "rate counter unavailable; refusing for a window");
            Some(rule.first)
        }
    }
}

/// The budget key of a `host:port` peer address: its IP without the port
/// (an IPv6 one by its /64).
fn client_ip(remote_addr: &str) -> Option<std::net::IpAddr> {
    remote_addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| tern_public::addr::budget_key(a.ip()))
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
pub(crate) async fn check_send(logic: &Logic, actor: &Actor) -> Result<()> {
    let limit = u64::from(logic.cfg.user_sends_per_sec);
    if limit == 0 || actor.is_admin() {
        return Ok(());
    }
    let key = format!("send:{}", actor.user_id());
    let window = Duration::from_secs(1);
    if over(logic, &key, limit, window).await {
        let into_window = now_ms().max(0) as u64 % window.as_millis() as u64;
        let rest = window.saturating_sub(Duration::from_millis(into_window));
        return Err(LogicError::rate_limited(
            "too many messages; slow down",
            rest,
        ));
    }
    Ok(())
}
