//! Caches in Redis, shared by every logic node of a cluster.
//!
//! Keys, under the configured prefix `P`:
//! - `P:group:{group_id}:members`: set of member ids, with a TTL;
//! - `P:group:{group_id}:epoch`: invalidation counter of the group.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{CacheError, Lookup, MemberCache};
use crate::redis_conn::RedisConn;

/// An epoch outlives any load by far, so it cannot expire and come back to
/// the value a slow load started with.
const EPOCH_TTL_MS: u64 = 24 * 3600 * 1000;

/// Stores the list only if no invalidation happened since the load began.
const PUT: &str = r"
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Group member lists in Redis.
pub struct RedisMembers {
    redis: RedisConn,
    ttl: Duration,
    put: Script,
}

impl RedisMembers {
    /// Lists live `ttl` at most, which bounds how long a lost invalidation
    /// (Redis unreachable right after a change) can serve an old list.
    pub fn new(redis: RedisConn, ttl: Duration) -> RedisMembers {
        RedisMembers {
            redis,
            ttl,
            put: Script::new(PUT),
        }
    }

    fn keys(&self, group_id: u64) -> (String, String) {
        (
            self.redis.key(format_args!("group:{group_id}:members")),
            self.redis.key(format_args!("group:{group_id}:epoch")),
        )
    }
}

#[async_trait]
impl MemberCache for RedisMembers {
    async fn get(&self, group_id: u64) -> Result<Lookup, CacheError> {
        let (members, epoch) = self.keys(group_id);
        let mut c = self.redis.conn.clone();
        let (mut ids, epoch): (Vec<u64>, Option<u64>) = redis::pipe()
            .smembers(members)
            .get(epoch)
            .query_async(&mut c)
            .await
            .map_err(CacheError::from)?;
        // A group always has its owner, so an empty set means "not cached".
        if ids.is_empty() {
            return Ok(Lookup::Miss(epoch.unwrap_or(0)));
        }
        ids.sort_unstable();
        Ok(Lookup::Hit(Arc::new(ids)))
    }

    async fn put(
        &self,
        group_id: u64,
        epoch: u64,
        members: Arc<Vec<u64>>,
    ) -> Result<(), CacheError> {
        if members.is_empty() {
            return Ok(());
        }
        let (members_key, epoch_key) = self.keys(group_id);
        let mut call = self.put.key(members_key);
        call.key(epoch_key)
            .arg(epoch)
            .arg(self.ttl.as_millis().max(1) as u64);
        for id in members.iter() {
            call.arg(id);
        }
        let mut c = self.redis.conn.clone();
        call.invoke_async::<i64>(&mut c)
            .await
            .map_err(CacheError::from)?;
        Ok(())
    }

    async fn invalidate(&self, group_id: u64) -> Result<(), CacheError> {
        let (members, epoch) = self.keys(group_id);
        let mut c = self.redis.conn.clone();
        redis::pipe()
            .atomic()
            .incr(&epoch, 1)
            .ignore()
            .pexpire(&epoch, EPOCH_TTL_MS as i64)
            .ignore()
            .del(members)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(CacheError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn conn(redis: &tern_testkit::Service) -> RedisConn {
        RedisConn::connect(&redis.url(), "t").await.unwrap()
    }

    #[tokio::test]
    async fn member_cache_invalidation_reaches_every_logic_node() {
        let redis = tern_testkit::redis_server();
        let ttl = Duration::from_secs(60);
        let n1 = RedisMembers::new(conn(&redis).await, ttl);
        let n2 = RedisMembers::new(conn(&redis).await, ttl);
        let Lookup::Miss(epoch) = n1.get(7).await.unwrap() else {
            panic!("empty")
        };
        // Node 2 commits a membership change while node 1 loads.
        n2.invalidate(7).await.unwrap();
        n1.put(7, epoch, Arc::new(vec![1, 2])).await.unwrap();
        let Lookup::Miss(epoch) = n2.get(7).await.unwrap() else {
            panic!("the stale load was not stored")
        };
        n2.put(7, epoch, Arc::new(vec![3, 1, 2])).await.unwrap();
        assert_eq!(
            n1.get(7).await.unwrap(),
            Lookup::Hit(Arc::new(vec![1, 2, 3]))
        );
        n1.invalidate(7).await.unwrap();
        assert!(matches!(n2.get(7).await.unwrap(), Lookup::Miss(_)));
    }
}
