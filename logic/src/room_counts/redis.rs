//! Room counts in Redis for cluster mode (DESIGN.md "Presence and caches").
//!
//! Keys, under the configured prefix `P`:
//! - `P:room:{room_id}:online`: hash node_id -> `count:valid_until_ms`,
//!   with a TTL as long as its longest share;
//! - `P:rooms`: sorted set of rooms by the end of their latest share, the
//!   index that ranks rooms without a scan.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RoomCounts, RoomCountsError};
use crate::redis_conn::RedisConn;

/// Room counts of one node: ARGV = prefix, node, valid-until ms, ttl ms,
/// then (room, count) pairs. A node's share is `count:valid_until`.
const ROOM_COUNTS: &str = r"
local rooms = ARGV[1] .. ':rooms'
for i = 5, #ARGV, 2 do
  local key = ARGV[1] .. ':room:' .. ARGV[i] .. ':online'
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', key, ARGV[2])
  else
    redis.call('HSET', key, ARGV[2], ARGV[i + 1] .. ':' .. ARGV[3])
    -- The key lives as long as its longest share: never shorten it.
    if redis.call('PTTL', key) < tonumber(ARGV[4]) then
      redis.call('PEXPIRE', key, ARGV[4])
    end
    redis.call('ZADD', rooms, 'GT', ARGV[3], ARGV[i])
  end
end
return 1
";

/// Rooms examined at most when ranking the top rooms.
const TOP_ROOMS_SCAN: isize = 10_000;

/// Room counts shared by every logic node through one Redis.
pub struct RedisRoomCounts {
    redis: RedisConn,
    record: Script,
}

impl RedisRoomCounts {
    /// Room counts under `redis`'s key prefix.
    pub fn new(redis: RedisConn) -> RedisRoomCounts {
        RedisRoomCounts {
            redis,
            record: Script::new(ROOM_COUNTS),
        }
    }

    fn room_key(&self, room_id: &str) -> String {
        self.redis.key(format_args!("room:{room_id}:online"))
    }

    /// Sum of the node shares still valid at `now_ms`.
    fn room_total(shares: &HashMap<String, String>, now_ms: i64) -> u64 {
        shares
            .values()
            .filter_map(|v| {
                let (n, until) = v.split_once(':')?;
                (until.parse::<i64>().ok()? > now_ms).then(|| n.parse::<u64>().ok())?
            })
            .sum()
    }
}

#[async_trait]
impl RoomCounts for RedisRoomCounts {
    async fn record(
        &self,
        node_id: &str,
        counts: &[(String, u32)],
        ttl: Duration,
    ) -> Result<(), RoomCountsError> {
        if counts.is_empty() {
            return Ok(());
        }
        let ttl_ms = ttl.as_millis().max(1) as i64;
        let until = tern_public::time::now_ms() + ttl_ms;
        let mut call = self.record.prepare_invoke();
        call.arg(self.redis.prefix())
            .arg(node_id)
            .arg(until)
            .arg(ttl_ms);
        for (room, n) in counts {
            call.arg(room).arg(n);
        }
        let mut c = self.redis.conn.clone();
        call.invoke_async::<i64>(&mut c).await?;
        Ok(())
    }

    async fn room_online(&self, room_id: &str) -> Result<u64, RoomCountsError> {
        let mut c = self.redis.conn.clone();
        let shares: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.room_key(room_id))
            .query_async(&mut c)
            .await?;
        Ok(Self::room_total(&shares, tern_public::time::now_ms()))
    }

    async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>, RoomCountsError> {
        let now = tern_public::time::now_ms();
        let index = self.redis.key(format_args!("rooms"));
        let mut c = self.redis.conn.clone();
        let (rooms,): (Vec<String>,) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZREVRANGE")
            .arg(&index)
            .arg(0)
            .arg(TOP_ROOMS_SCAN - 1)
            .query_async(&mut c)
            .await?;
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for r in &rooms {
            pipe.hgetall(self.room_key(r));
        }
        let shares: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
        let mut totals: Vec<(String, u64)> = rooms
            .into_iter()
            .zip(shares)
            .map(|(r, s)| (r, Self::room_total(&s, now)))
            .filter(|(_, n)| *n > 0)
            .collect();
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        totals.truncate(limit);
        Ok(totals)
    }
}
