//! The generation of every logic node's send standing cache, in Redis
//! (`P:standing:generation`): advanced after every commit that may change
//! a user's status or a relation, read once per one-to-one SEND (see
//! `store::standing`).

use async_trait::async_trait;

use crate::redis_conn::RedisConn;
use crate::store::SharedGeneration;

/// The shared generation as one Redis counter.
///
/// It never expires, but Redis can still lose it: a restart without
/// persistence, a failover to a replica that had not caught up, a FLUSHALL.
/// Counted up again from 0, it would come back to values that entries on
/// other nodes were loaded under, and those entries would match again. So
/// the counter starts at a random point of a 2^62 range whenever it is
/// missing: a new start meets no value in use.
pub struct RedisGeneration {
    redis: RedisConn,
    key: String,
}

impl RedisGeneration {
    pub fn new(redis: RedisConn) -> RedisGeneration {
        let key = redis.key(format_args!("standing:generation"));
        RedisGeneration { redis, key }
    }
}

impl std::fmt::Debug for RedisGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGeneration")
            .field("key", &self.key)
            .finish()
    }
}

#[async_trait]
impl SharedGeneration for RedisGeneration {
    async fn current(&self) -> Result<u64, String> {
        let mut c = self.redis.conn.clone();
        let value: Option<u64> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(value) = value {
            return Ok(value);
        }
        // Missing: start it (unless another node just did) and read it.
        let (value,): (u64,) = self
            .started()
            .cmd("GET")
            .arg(&self.key)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        Ok(value)
    }

    async fn advance(&self) -> Result<(), String> {
        let mut c = self.redis.conn.clone();
        // Started first, in the same round trip: INCR alone would start a
        // missing counter at 1.
        self.started()
            .cmd("INCR")
            .arg(&self.key)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| e.to_string())
    }
}

impl RedisGeneration {
    /// A pipeline that first starts the counter at a random point if it
    /// is missing (its answer ignored).
    fn started(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&self.key)
            .arg(random_start())
            .arg("NX")
            .ignore();
        pipe
    }
}

/// Where a missing counter starts: anywhere in [2^61, 2^62), far from 0
/// and from any other start, with room to count up.
fn random_start() -> u64 {
    (1 << 61) + rand::random::<u64>() % (1 << 61)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_advance_on_one_node_is_read_by_the_other() {
        let redis = tern_testkit::redis_server();
        let conn = || async { RedisConn::connect(&redis.url(), "t").await.unwrap() };
        let (n1, n2) = (
            RedisGeneration::new(conn().await),
            RedisGeneration::new(conn().await),
        );
        let before = n2.current().await.unwrap();
        n1.advance().await.unwrap();
        assert_eq!(n2.current().await.unwrap(), before + 1);
    }

    /// Redis loses the counter (here FLUSHALL; in production a restart
    /// without persistence or a failover): counted up again, it must not
    /// come back to a value an entry may have been loaded under.
    #[tokio::test]
    async fn a_lost_counter_never_returns_to_a_value_it_had() {
        let redis = tern_testkit::redis_server();
        let conn = RedisConn::connect(&redis.url(), "t").await.unwrap();
        let g = RedisGeneration::new(conn.clone());
        let mut seen = vec![g.current().await.unwrap()];
        for _ in 0..5 {
            g.advance().await.unwrap();
            seen.push(g.current().await.unwrap());
        }
        let mut c = conn.conn.clone();
        let () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
        // Both ways a node meets the lost counter: advancing it, reading it.
        g.advance().await.unwrap();
        let mut after = vec![g.current().await.unwrap()];
        let () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
        after.push(g.current().await.unwrap());
        for _ in 0..5 {
            g.advance().await.unwrap();
            after.push(g.current().await.unwrap());
        }
        for v in &after {
            assert!(
                !seen.contains(v),
                "{v} came back: before {seen:?}, after {after:?}"
            );
        }
    }
}
