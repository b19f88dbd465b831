//! Node liveness in Redis for cluster mode (DESIGN.md "Presence and caches").
//!
//! Keys, under the configured prefix `P`:
//! - `P:node:{node_id}`: liveness, a string with a TTL;
//! - `P:nodes`: set of nodes whose liveness is watched (presence reads it
//!   too, to count connections per node).

use std::time::Duration;

use async_trait::async_trait;

use super::{LivenessError, NodeLiveness};
use crate::redis_conn::RedisConn;

/// Liveness shared by every logic node through one Redis.
pub struct RedisLiveness {
    redis: RedisConn,
}

/// `P:nodes`, the set of watched nodes.
pub(crate) fn watched_key(redis: &RedisConn) -> String {
    redis.key(format_args!("nodes"))
}

impl RedisLiveness {
    /// Liveness under `redis`'s key prefix.
    pub fn new(redis: RedisConn) -> RedisLiveness {
        RedisLiveness { redis }
    }

    fn alive_key(&self, node_id: &str) -> String {
        self.redis.key(format_args!("node:{node_id}"))
    }
}

#[async_trait]
impl NodeLiveness for RedisLiveness {
    async fn node_alive(&self, node_id: &str, ttl: Duration) -> Result<bool, LivenessError> {
        let mut c = self.redis.conn.clone();
        let (added,): (i64,) = redis::pipe()
            .cmd("SET")
            .arg(self.alive_key(node_id))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .sadd(watched_key(&self.redis), node_id)
            .query_async(&mut c)
            .await?;
        Ok(added == 1)
    }

    async fn expired_nodes(&self) -> Result<Vec<String>, LivenessError> {
        let mut c = self.redis.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(watched_key(&self.redis))
            .query_async(&mut c)
            .await?;
        if nodes.is_empty() {
            return Ok(nodes);
        }
        let mut pipe = redis::pipe();
        for n in &nodes {
            pipe.exists(self.alive_key(n));
        }
        let alive: Vec<bool> = pipe.query_async(&mut c).await?;
        Ok(nodes
            .into_iter()
            .zip(alive)
            .filter(|(_, alive)| !alive)
            .map(|(n, _)| n)
            .collect())
    }

    async fn forget_node(&self, node_id: &str) -> Result<(), LivenessError> {
        // Only the watch list: the liveness key is the node's own to refresh,
        // and deleting it could make a node that just came back look dead.
        let mut c = self.redis.conn.clone();
        redis::cmd("SREM")
            .arg(watched_key(&self.redis))
            .arg(node_id)
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn liveness_expires_in_redis() {
        let redis = tern_testkit::redis_server();
        let conn = RedisConn::connect(&redis.url(), "t").await.unwrap();
        let p = RedisLiveness::new(conn);
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
