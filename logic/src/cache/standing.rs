//! The generation of every logic node's send standing cache, in Redis
//! (`P:standing:generation`): advanced after every commit that may change
//! a user's status or a relation, read once per one-to-one SEND (see
//! `store::standing`).

use async_trait::async_trait;

use crate::redis_conn::RedisConn;
use crate::store::SharedGeneration;

/// The shared generation as one Redis counter. It never expires: were it
/// to vanish and be counted up again, an old value could come back and
/// match an entry loaded under it.
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
        Ok(value.unwrap_or(0))
    }

    async fn advance(&self) -> Result<(), String> {
        let mut c = self.redis.conn.clone();
        redis::cmd("INCR")
            .arg(&self.key)
            .query_async::<u64>(&mut c)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
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
}
