//! The shared Redis connection of a logic node (cluster mode).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A multiplexed, self-reconnecting Redis connection plus the key prefix.
/// Cloning shares the connection.
#[derive(Clone)]
pub struct RedisConn {
    pub(crate) conn: ConnectionManager,
    prefix: String,
}

impl RedisConn {
    /// Connects to `url` (`redis://host:port[/db]`). Keys are named
    /// `<prefix>:...` (DESIGN.md "Presence and caches").
    pub async fn connect(url: &str, prefix: &str) -> redis::RedisResult<RedisConn> {
        let client = redis::Client::open(url)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            // Every call is bounded: a stuck Redis fails a request instead of hanging it.
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = client.get_connection_manager_with_config(cfg).await?;
        Ok(RedisConn {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// `<prefix>:<rest>`.
    pub(crate) fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{rest}", self.prefix)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether Redis answers a PING (for readiness checks).
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(())
    }
}
