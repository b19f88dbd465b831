//! Presence in Redis for cluster mode (DESIGN.md "Presence and caches").
//!
//! Keys, under the configured prefix `P`:
//! - `P:presence:{user_id}`: hash device_id -> `node_id:conn_id`;
//! - `P:node:{node_id}:devices`: set of `user_id:device_id` served by a node,
//!   the index that lets a dead node's devices be found without a scan;
//! - `P:nodes`: set of nodes whose liveness is watched (`liveness`'s key),
//!   read to count connections per node.
//!
//! Every change of a device's entry is one Lua script, so the hash and the
//! node index never disagree and removal is compare-and-delete on the
//! connection. Single Redis (or a primary with replicas); the scripts touch
//! keys they compute, so Redis Cluster is not supported.

use std::collections::HashMap;

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

/// Presence shared by every logic node through one Redis.
pub struct RedisPresence {
    redis: RedisConn,
    online: Script,
    restore: Script,
    offline: Script,
    node_down: Script,
}

impl RedisPresence {
    pub fn new(redis: RedisConn) -> RedisPresence {
        RedisPresence {
            redis,
            online: Script::new(ONLINE),
            restore: Script::new(RESTORE),
            offline: Script::new(OFFLINE),
            node_down: Script::new(NODE_DOWN),
        }
    }

    fn user_key(&self, user_id: u64) -> String {
        self.redis.key(format_args!("presence:{user_id}"))
    }

    fn index_key(&self, node_id: &str) -> String {
        self.redis.key(format_args!("node:{node_id}:devices"))
    }

    fn nodes_key(&self) -> String {
        crate::liveness::watched_key(&self.redis)
    }
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
            .await?;
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
            .await?;
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
            .await?;
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
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
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
            .await?;
        let mut n = 0;
        for chunk in members.chunks(DOWN_CHUNK) {
            let mut call = self.node_down.key(&index);
            call.arg(self.redis.prefix()).arg(node_id);
            for m in chunk {
                call.arg(m);
            }
            let cleared: i64 = call.invoke_async(&mut c).await?;
            n += cleared as usize;
        }
        Ok(n)
    }

    async fn online_stats(&self) -> Result<OnlineStats, PresenceError> {
        let mut c = self.redis.conn.clone();
        let mut nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.nodes_key())
            .query_async(&mut c)
            .await?;
        nodes.sort();
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.smembers(self.index_key(n));
        }
        let devices: Vec<Vec<String>> = pipe.query_async(&mut c).await?;
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

    async fn ping(&self) -> Result<(), PresenceError> {
        Ok(self.redis.ping().await?)
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

    #[test]
    fn locations_round_trip_even_with_colons_in_node_ids() {
        let at = at("host:7400", 42);
        assert_eq!(decode(&encode(&at)), Some(at));
        assert_eq!(decode("nonsense"), None);
    }
}
