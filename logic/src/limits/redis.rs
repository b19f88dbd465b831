//! Window counters in Redis, shared by every logic node of a cluster.
//!
//! Keys, under the configured prefix `P`: `P:rate:{key}:{window}`, one
//! counter per window, expiring two windows after it starts.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tern_public::time::now_ms;

use super::{window_index, WindowCounter};
use crate::cache::CacheError;
use crate::redis_conn::RedisConn;

/// INCR, and set the expiry when the window's counter is new.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

pub struct RedisCounter {
    redis: RedisConn,
    hit: Script,
}

impl RedisCounter {
    pub fn new(redis: RedisConn) -> RedisCounter {
        RedisCounter {
            redis,
            hit: Script::new(HIT),
        }
    }
}

#[async_trait]
impl WindowCounter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let index = window_index(now_ms(), window);
        let redis_key = self.redis.key(format_args!("rate:{key}:{index}"));
        let ttl_ms = (window.as_millis().max(1) as u64) * 2;
        let mut c = self.redis.conn.clone();
        self.hit
            .key(redis_key)
            .arg(ttl_ms)
            .invoke_async::<u64>(&mut c)
            .await
            .map_err(|e| CacheError(e.to_string()))
    }
}
