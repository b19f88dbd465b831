//! Window counters and lockouts in Redis, shared by every logic node of a
//! cluster.
//!
//! Keys, under the configured prefix `P`: `P:rate:{key}:{window}`, one
//! counter per window, expiring two windows after it starts;
//! `P:lockout:{key}`, the current lockout (expires when it ends), and
//! `P:lockouts:{key}`, how many there were (expires `memory` after the
//! last). The braces make the two lockout keys one Redis Cluster slot.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tern_public::time::now_ms;

use super::{window_index, Backoff, WindowCounter};
use crate::cache::CacheError;
use crate::redis_conn::RedisConn;

/// INCR, and set the expiry when the window's counter is new.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Counts the lockout and sets one of `first * 2^(n-1)` ms, at most `max`.
/// ARGV: first_ms, max_ms, memory_ms. Returns the lockout's length.
const LOCK_OUT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ms = math.min(tonumber(ARGV[1]) * 2 ^ math.min(n - 1, 20), tonumber(ARGV[2]))
ms = math.floor(ms)
redis.call('SET', KEYS[2], n, 'PX', ms)
redis.call('PEXPIRE', KEYS[1], ms + tonumber(ARGV[3]))
return ms
";

pub struct RedisCounter {
    redis: RedisConn,
    hit: Script,
    lock_out: Script,
}

impl RedisCounter {
    pub fn new(redis: RedisConn) -> RedisCounter {
        RedisCounter {
            redis,
            hit: Script::new(HIT),
            lock_out: Script::new(LOCK_OUT),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[async_trait]
impl WindowCounter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let index = window_index(now_ms(), window);
        let redis_key = self.redis.key(format_args!("rate:{key}:{index}"));
        let ttl_ms = ms(window).max(1) * 2;
        let mut c = self.redis.conn.clone();
        self.hit
            .key(redis_key)
            .arg(ttl_ms)
            .invoke_async::<u64>(&mut c)
            .await
            .map_err(CacheError::from)
    }

    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let lockout = self.redis.key(format_args!("lockout:{{{key}}}"));
        let mut c = self.redis.conn.clone();
        let left: i64 = redis::cmd("PTTL")
            .arg(lockout)
            .query_async(&mut c)
            .await
            .map_err(CacheError::from)?;
        // -2: no lockout; -1 cannot happen (always set with an expiry).
        Ok((left > 0).then(|| Duration::from_millis(left as u64)))
    }

    async fn lock_out(&self, key: &str, rule: Backoff) -> Result<Duration, CacheError> {
        let lockouts = self.redis.key(format_args!("lockouts:{{{key}}}"));
        let lockout = self.redis.key(format_args!("lockout:{{{key}}}"));
        let mut c = self.redis.conn.clone();
        let wait: u64 = self
            .lock_out
            .key(lockouts)
            .key(lockout)
            .arg(ms(rule.first).max(1))
            .arg(ms(rule.max).max(1))
            .arg(ms(rule.memory))
            .invoke_async(&mut c)
            .await
            .map_err(CacheError::from)?;
        Ok(Duration::from_millis(wait))
    }
}
