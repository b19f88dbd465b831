//! Push tokens: at most one per device, removed when the device signs out
//! (see `revoke_in` in accounts.rs), and unique per provider and token, so
//! a phone that changes hands notifies only the device that registered it
//! last.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{id, Result, Store, StoreError};
use crate::domain::PushProvider;

/// Where a device's notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushToken {
    pub device_id: u64,
    pub user_id: u64,
    pub provider: PushProvider,
    pub token: String,
    /// APNs: the app's bundle id ("" = the server's default topic).
    pub apns_topic: String,
    /// APNs: the development environment.
    pub apns_sandbox: bool,
    pub updated_at: i64,
}

impl PushToken {
    pub(super) fn from_row(row: &AnyRow) -> Result<PushToken> {
        let stored: i64 = row.try_get("provider")?;
        let provider = PushProvider::from_stored(stored)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown push provider {stored}").into()))?;
        Ok(PushToken {
            device_id: id(row, "device_id")?,
            user_id: id(row, "user_id")?,
            provider,
            token: row.try_get("token")?,
            apns_topic: row.try_get("apns_topic")?,
            apns_sandbox: row.try_get::<i64, _>("apns_sandbox")? != 0,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// What makes a token unique: the provider and the token.
    fn digest(provider: PushProvider, token: &str) -> String {
        let mut h = Sha256::new();
        h.update(provider.stored().to_be_bytes());
        h.update(token.as_bytes());
        hex::encode(h.finalize())
    }
}

impl Store {
    /// Sets the push token of a signed-in device of `t.user_id`, replacing
    /// the one it had; the same token on any other device is removed.
    /// NotFound when the device is not the user's or is signed out.
    pub async fn set_push_token(&self, t: &PushToken) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Locks the device row, so a revocation (which removes push
        // tokens in its own transaction) is either before or after this.
        let live = sqlx::query(
            "UPDATE devices SET last_seen_at = ? WHERE id = ? AND user_id = ? AND token_hash <> ''",
        )
        .bind(t.updated_at)
        .bind(t.device_id as i64)
        .bind(t.user_id as i64)
        .execute(&mut *tx)
        .await?;
        if live.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // The user's first push token starts its push cursor at the head
        // of its list: what came before is not news to the new device.
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM push_tokens WHERE user_id = ? AND device_id <> ?",
        )
        .bind(t.user_id as i64)
        .bind(t.device_id as i64)
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            sqlx::query("DELETE FROM push_cursors WHERE user_id = ?")
                .bind(t.user_id as i64)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO push_cursors (user_id, pushed_seq) \
                 SELECT ?, COALESCE(MAX(seq), 0) FROM user_seqs WHERE user_id = ?",
            )
            .bind(t.user_id as i64)
            .bind(t.user_id as i64)
            .execute(&mut *tx)
            .await?;
        }
        let digest = PushToken::digest(t.provider, &t.token);
        // The same token on another device leaves it; then this device's
        // row is replaced in place (an UPDATE, or an INSERT when it has
        // none). Deadlocks between concurrent registrations are retried
        // by the caller.
        sqlx::query("DELETE FROM push_tokens WHERE token_digest = ? AND device_id <> ?")
            .bind(&digest)
            .bind(t.device_id as i64)
            .execute(&mut *tx)
            .await?;
        let updated = sqlx::query(
            "UPDATE push_tokens SET provider = ?, token = ?, token_digest = ?, apns_topic = ?, \
             apns_sandbox = ?, updated_at = ? WHERE device_id = ?",
        )
        .bind(t.provider.stored())
        .bind(&t.token)
        .bind(&digest)
        .bind(&t.apns_topic)
        .bind(i64::from(t.apns_sandbox))
        .bind(t.updated_at)
        .bind(t.device_id as i64)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO push_tokens (device_id, user_id, provider, token, token_digest, \
                 apns_topic, apns_sandbox, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t.device_id as i64)
            .bind(t.user_id as i64)
            .bind(t.provider.stored())
            .bind(&t.token)
            .bind(&digest)
            .bind(&t.apns_topic)
            .bind(i64::from(t.apns_sandbox))
            .bind(t.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        // No status or relation changed: the send standing caches stay.
        self.commit_messages(tx).await
    }

    /// Removes a device's push token; false when it had none.
    pub async fn remove_push_token(&self, user_id: u64, device_id: u64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM push_tokens WHERE device_id = ? AND user_id = ?")
            .bind(device_id as i64)
            .bind(user_id as i64)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A device's push token.
    pub async fn push_token(&self, user_id: u64, device_id: u64) -> Result<Option<PushToken>> {
        self.reconnecting(|| async {
            let row = sqlx::query(
                "SELECT device_id, user_id, provider, token, apns_topic, apns_sandbox, updated_at \
                 FROM push_tokens WHERE device_id = ? AND user_id = ?",
            )
            .bind(device_id as i64)
            .bind(user_id as i64)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(PushToken::from_row).transpose()
        })
        .await
    }
}
