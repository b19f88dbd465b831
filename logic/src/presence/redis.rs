//! Presence in Redis for cluster mode (DESIGN.md "Presence and caches").
//!
//! Keys, under the configured prefix `P`:
//! - `P:presence:{user_id}`: hash device_id -> `node_id:conn_id`;
//! - `P:node:{node_id}:devices`: set of `user_id:device_id` served by a node,
//!   the index that lets a dead node's devices be found without a scan;
//! - `P:node:{node_id}`: liveness, a string with a TTL;
//! - `P:nodes`: set of nodes whose liveness is watched.
//!
//! Every change of a device's entry is one Lua script, so the hash and the
//! node index never disagree and removal is compare-and-delete on the
//! connection. Single Redis (or a primary with replicas); the scripts touch
//! keys they compute, so Redis Cluster is not supported.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{Location, OnlineDevice, OnlineStats, Presence, PresenceError};
use crate::redis_conn::RedisConn;

/// Devices cleared per script call when a node goes down: Redis runs a
/// script alone, so a big node is cleared in slices.
const DOWN_CHUNK: usize = 500;

const ONLINE: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if old and old ~= ARGV[2] then
  local node = string.match(old, '^(.*):%d+$')
  if node then
    local index = ARGV[4] .. ':node:' .. node .. ':devices'
    if index ~= KEYS[2] then redis.call('SREM', index, ARGV[3]) end
  end
  return old
end
return false
";

const RESTORE: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
return 0
";

const OFFLINE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[3])
  return 1
end
return 0
";

const NODE_DOWN: &str = r"
local n = 0
local want = ARGV[2] .. ':'
for i = 3, #ARGV do
  local uid, did = string.match(ARGV[i], '^(%d+):(%d+)$')
  if uid then
    local key = ARGV[1] .. ':presence:' .. uid
    local v = redis.call('HGET', key, did)
    if v and string.sub(v, 1, #want) == want and string.match(string.sub(v, #want + 1), '^%d+$') then
      redis.call('HDEL', key, did)
      n = n + 1
    end
  end
  redis.call('SREM', KEYS[1], ARGV[i])
end
return n
";

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

/// Presence shared by every logic node through one Redis.
pub struct RedisPresence {
    redis: RedisConn,
    online: Script,
    restore: Script,
    offline: Script,
    node_down: Script,
    room_counts: Script,
}

impl RedisPresence {
    pub fn new(redis: RedisConn) -> RedisPresence {
        RedisPresence {
            redis,
            online: Script::new(ONLINE),
            restore: Script::new(RESTORE),
            offline: Script::new(OFFLINE),
            node_down: Script::new(NODE_DOWN),
            room_counts: Script::new(ROOM_COUNTS),
        }
    }

    fn user_key(&self, user_id: u64) -> String {
        self.redis.key(format_args!("presence:{user_id}"))
    }

    fn index_key(&self, node_id: &str) -> String {
        self.redis.key(format_args!("node:{node_id}:devices"))
    }

    fn alive_key(&self, node_id: &str) -> String {
        self.redis.key(format_args!("node:{node_id}"))
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

    fn nodes_key(&self) -> String {
        self.redis.key(format_args!("nodes"))
    }
}

fn err(e: redis::RedisError) -> PresenceError {
    PresenceError(e.to_string())
}

fn encode(at: &Location) -> String {
    format!("{}:{}", at.node_id, at.conn_id)
}

fn decode(v: &str) -> Option<Location> {
    let (node, conn) = v.rsplit_once(':')?;
    Some(Location {
        node_id: node.to_owned(),
        conn_id: conn.parse().ok()?,
    })
}

#[async_trait]
impl Presence for RedisPresence {
    async fn online(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<Option<Location>, PresenceError> {
        let mut c = self.redis.conn.clone();
        let old: Option<String> = self
            .online
            .key(self.user_key(user_id))
            .key(self.index_key(&at.node_id))
            .arg(device_id)
            .arg(encode(&at))
            .arg(format!("{user_id}:{device_id}"))
            .arg(self.redis.prefix())
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        Ok(old.as_deref().and_then(decode))
    }

    async fn restore(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<bool, PresenceError> {
        let mut c = self.redis.conn.clone();
        let done: i64 = self
            .restore
            .key(self.user_key(user_id))
            .key(self.index_key(&at.node_id))
            .arg(device_id)
            .arg(encode(&at))
            .arg(format!("{user_id}:{device_id}"))
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        Ok(done == 1)
    }

    async fn offline(
        &self,
        user_id: u64,
        device_id: u64,
        at: &Location,
    ) -> Result<bool, PresenceError> {
        let mut c = self.redis.conn.clone();
        let removed: i64 = self
            .offline
            .key(self.user_key(user_id))
            .key(self.index_key(&at.node_id))
            .arg(device_id)
            .arg(encode(at))
            .arg(format!("{user_id}:{device_id}"))
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        Ok(removed == 1)
    }

    async fn locate(&self, user_ids: &[u64]) -> Result<Vec<OnlineDevice>, PresenceError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for the whole fan-out.
        let mut pipe = redis::pipe();
        for &u in user_ids {
            pipe.hgetall(self.user_key(u));
        }
        let mut c = self.redis.conn.clone();
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await.map_err(err)?;
        let mut out = Vec::new();
        for (&user_id, devices) in user_ids.iter().zip(maps) {
            for (device, at) in devices {
                if let (Ok(device_id), Some(at)) = (device.parse(), decode(&at)) {
                    out.push(OnlineDevice {
                        user_id,
                        device_id,
                        at,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn node_down(&self, node_id: &str) -> Result<usize, PresenceError> {
        let mut c = self.redis.conn.clone();
        let index = self.index_key(node_id);
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let mut n = 0;
        for chunk in members.chunks(DOWN_CHUNK) {
            let mut call = self.node_down.key(&index);
            call.arg(self.redis.prefix()).arg(node_id);
            for m in chunk {
                call.arg(m);
            }
            let cleared: i64 = call.invoke_async(&mut c).await.map_err(err)?;
            n += cleared as usize;
        }
        Ok(n)
    }

    async fn node_alive(&self, node_id: &str, ttl: Duration) -> Result<bool, PresenceError> {
        let mut c = self.redis.conn.clone();
        let (added,): (i64,) = redis::pipe()
            .cmd("SET")
            .arg(self.alive_key(node_id))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .sadd(self.nodes_key(), node_id)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(added == 1)
    }

    async fn online_stats(&self) -> Result<OnlineStats, PresenceError> {
        let mut c = self.redis.conn.clone();
        let mut nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.nodes_key())
            .query_async(&mut c)
            .await
            .map_err(err)?;
        nodes.sort();
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.smembers(self.index_key(n));
        }
        let devices: Vec<Vec<String>> = pipe.query_async(&mut c).await.map_err(err)?;
        let mut users = std::collections::HashSet::new();
        for entry in devices.iter().flatten() {
            if let Some((uid, _)) = entry.split_once(':') {
                users.insert(uid.to_owned());
            }
        }
        Ok(OnlineStats {
            nodes: nodes
                .into_iter()
                .zip(&devices)
                .map(|(n, d)| (n, d.len() as u64))
                .filter(|(_, d)| *d > 0)
                .collect(),
            users: users.len() as u64,
        })
    }

    async fn expired_nodes(&self) -> Result<Vec<String>, PresenceError> {
        let mut c = self.redis.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.nodes_key())
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if nodes.is_empty() {
            return Ok(nodes);
        }
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.exists(self.alive_key(n));
        }
        let alive: Vec<bool> = pipe.query_async(&mut c).await.map_err(err)?;
        Ok(nodes
            .into_iter()
            .zip(alive)
            .filter(|(_, alive)| !alive)
            .map(|(n, _)| n)
            .collect())
    }

    async fn room_counts(
        &self,
        node_id: &str,
        counts: &[(String, u32)],
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        if counts.is_empty() {
            return Ok(());
        }
        let ttl_ms = ttl.as_millis().max(1) as i64;
        let until = tern_public::time::now_ms() + ttl_ms;
        let mut call = self.room_counts.prepare_invoke();
        call.arg(self.redis.prefix())
            .arg(node_id)
            .arg(until)
            .arg(ttl_ms);
        for (room, n) in counts {
            call.arg(room).arg(n);
        }
        let mut c = self.redis.conn.clone();
        call.invoke_async::<i64>(&mut c).await.map_err(err)?;
        Ok(())
    }

    async fn room_online(&self, room_id: &str) -> Result<u64, PresenceError> {
        let mut c = self.redis.conn.clone();
        let shares: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.room_key(room_id))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(Self::room_total(&shares, tern_public::time::now_ms()))
    }

    async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>, PresenceError> {
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
            .await
            .map_err(err)?;
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for r in &rooms {
            pipe.hgetall(self.room_key(r));
        }
        let shares: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await.map_err(err)?;
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

    async fn ping(&self) -> Result<(), PresenceError> {
        if self.redis.ping().await {
            Ok(())
        } else {
            Err(PresenceError("redis does not answer PING".into()))
        }
    }

    async fn forget_node(&self, node_id: &str) -> Result<(), PresenceError> {
        // Only the watch list: the liveness key is the node's own to refresh,
        // and deleting it could make a node that just came back look dead.
        let mut c = self.redis.conn.clone();
        redis::cmd("SREM")
            .arg(self.nodes_key())
            .arg(node_id)
            .query_async::<()>(&mut c)
            .await
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &str, conn: u64) -> Location {
        Location {
            node_id: node.into(),
            conn_id: conn,
        }
    }

    async fn conn(redis: &tern_testkit::Service) -> RedisConn {
        RedisConn::connect(&redis.url(), "t").await.unwrap()
    }

    #[test]
    fn locations_round_trip_even_with_colons_in_node_ids() {
        let at = at("host:7400", 42);
        assert_eq!(decode(&encode(&at)), Some(at));
        assert_eq!(decode("nonsense"), None);
    }

    #[tokio::test]
    async fn liveness_expires_in_redis() {
        let redis = tern_testkit::redis_server();
        let p = RedisPresence::new(conn(&redis).await);
        let short = p.node_alive("short", Duration::from_millis(200)).await;
        assert!(short.unwrap(), "a node seen for the first time is new");
        assert!(p
            .node_alive("long", Duration::from_secs(600))
            .await
            .unwrap());
        assert!(!p
            .node_alive("long", Duration::from_secs(600))
            .await
            .unwrap());
        // Redis expires keys on its own clock: poll, bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let expired = loop {
            let e = p.expired_nodes().await.unwrap();
            if !e.is_empty() || tokio::time::Instant::now() > deadline {
                break e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(expired, vec!["short".to_owned()]);
        p.forget_node("short").await.unwrap();
        assert!(p.expired_nodes().await.unwrap().is_empty());
        let again = p.node_alive("short", Duration::from_secs(1)).await;
        assert!(again.unwrap(), "a forgotten node is new again");
    }
}
