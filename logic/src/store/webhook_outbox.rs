//! The after-send webhook's outbox: every message stored while it is on,
//! sent in id order by the one node holding the lease.

use sqlx::{QueryBuilder, Row};

use super::messages::{push_ids, ListEntry};
use super::{id, Result, Store};

/// One queued message, as the webhook receives it.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The outbox row (ascending in commit order per conversation).
    pub id: u64,
    /// The conversation as sent: `receiver_id` is the receiving user or
    /// group (0 for the system conversation).
    pub conv_type: i32,
    pub receiver_id: u64,
    pub entry: ListEntry,
    pub queued_at: i64,
}

/// The webhook's shared state (one row).
#[derive(Clone, Default)]
pub struct WebhookState {
    pub holder: String,
    pub held_until: i64,
    /// Failed attempts of the batch at the head since the last success.
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub last_success_at: i64,
    /// Set once rotated through the admin API; "" = the configured one.
    pub secret: String,
    /// The secret before the last rotation, still signing until `prev_until`.
    pub prev_secret: String,
    pub prev_until: i64,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("holder", &self.holder)
            .field("held_until", &self.held_until)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_error", &self.last_error)
            .field("last_success_at", &self.last_success_at)
            .field("prev_until", &self.prev_until)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Takes (or keeps) the sending lease for `node` until `until`; false
    /// when another node holds it.
    pub async fn webhook_lease(&self, node: &str, now: i64, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_state SET holder = ?, held_until = ? \
             WHERE id = 1 AND (holder = ? OR held_until < ?)",
        )
        .bind(node)
        .bind(until)
        .bind(node)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The oldest `limit` queued messages, in outbox order.
    pub async fn webhook_batch(&self, limit: u32) -> Result<Vec<Queued>> {
        let rows = sqlx::query(
            "SELECT w.id AS queue_id, w.created_at AS queued_at, m.conv_type AS sent_conv_type, \
             m.receiver_id, CAST(0 AS SIGNED) AS seq, m.conv_type, m.receiver_id AS conv_id, \
             CAST(0 AS SIGNED) AS deleted, \
             HEX(m.id) AS id_hex, m.sender_id, m.sender_device_id, m.content_type, m.content, \
             m.mentions, m.client_msg_id, m.status, m.created_at \
             FROM webhook_outbox w JOIN messages m ON m.id = w.message_id ORDER BY w.id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Queued {
                    id: id(r, "queue_id")?,
                    conv_type: r.try_get::<i64, _>("sent_conv_type")? as i32,
                    receiver_id: id(r, "receiver_id")?,
                    entry: ListEntry::from_row(r)?,
                    queued_at: r.try_get("queued_at")?,
                })
            })
            .collect()
    }

    /// The webhook took `ids`: they leave the outbox and the retry state
    /// starts over.
    pub async fn webhook_delivered(&self, node: &str, ids: &[u64], now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::new("DELETE FROM webhook_outbox WHERE id IN (");
            push_ids(&mut q, chunk.iter().copied());
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE webhook_state SET attempts = 0, next_attempt_at = 0, last_error = '', \
             last_success_at = ? WHERE id = 1 AND holder = ?",
        )
        .bind(now)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        self.commit_messages(tx).await
    }

    /// The webhook failed; the head batch is tried again at `next_at`.
    /// Only the lease's holder records it.
    pub async fn webhook_failed(&self, node: &str, next_at: i64, error: &str) -> Result<()> {
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE webhook_state SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
             WHERE id = 1 AND holder = ?",
        )
        .bind(next_at)
        .bind(error)
        .bind(node)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops what was queued before `cutoff` (given up); returns how many.
    pub async fn webhook_drop_before(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM webhook_outbox WHERE created_at < ?")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn webhook_state(&self) -> Result<WebhookState> {
        let r = sqlx::query(
            "SELECT holder, held_until, attempts, next_attempt_at, last_error, last_success_at, \
             secret, prev_secret, prev_until FROM webhook_state WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(WebhookState {
            holder: r.try_get("holder")?,
            held_until: r.try_get("held_until")?,
            attempts: r
                .try_get::<i64, _>("attempts")?
                .clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt_at: r.try_get("next_attempt_at")?,
            last_error: r.try_get("last_error")?,
            last_success_at: r.try_get("last_success_at")?,
            secret: r.try_get("secret")?,
            prev_secret: r.try_get("prev_secret")?,
            prev_until: r.try_get("prev_until")?,
        })
    }

    /// Queued messages, and when the oldest was queued (0: none).
    pub async fn webhook_depth(&self) -> Result<(u64, i64)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MIN(created_at), 0) AS oldest FROM webhook_outbox",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((
            r.try_get::<i64, _>("n")?.max(0) as u64,
            r.try_get("oldest")?,
        ))
    }

    /// Makes `secret` the signing secret if the stored one is still
    /// `stored` (another rotation did not come first); the one before,
    /// `prev`, keeps signing too until `prev_until`.
    pub async fn webhook_rotate(
        &self,
        stored: &str,
        secret: &str,
        prev: &str,
        prev_until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_state SET secret = ?, prev_secret = ?, prev_until = ? \
             WHERE id = 1 AND secret = ?",
        )
        .bind(secret)
        .bind(prev)
        .bind(prev_until)
        .bind(stored)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
