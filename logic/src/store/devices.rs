//! Devices: one row per app installation, holding its token and ack position.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{id, Result, Store, StoreError};

/// A device of a user.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: u64,
    pub user_id: u64,
    pub platform: String,
    pub token_hash: String,
    pub token_expires_at: i64,
    /// The token this one replaced: it still signs in until the new one is
    /// first used or it expires, so a lost refresh reply loses nothing.
    pub prev_token_hash: String,
    pub prev_token_expires_at: i64,
    pub ack_seq: u64,
}

impl Device {
    fn from_row(row: &AnyRow) -> Result<Device> {
        Ok(Device {
            id: id(row, "id")?,
            user_id: id(row, "user_id")?,
            platform: row.try_get("platform")?,
            token_hash: row.try_get("token_hash")?,
            token_expires_at: row.try_get("token_expires_at")?,
            prev_token_hash: row.try_get("prev_token_hash")?,
            prev_token_expires_at: row.try_get("prev_token_expires_at")?,
            ack_seq: id(row, "ack_seq")?,
        })
    }
}

/// What login stores for a new device.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub user_id: u64,
    pub platform: &'a str,
    pub model: &'a str,
    pub os_version: &'a str,
    pub app_version: &'a str,
    pub token_hash: &'a str,
    pub token_expires_at: i64,
    pub now_ms: i64,
}

impl Store {
    pub async fn create_device(&self, d: NewDevice<'_>) -> Result<u64> {
        let sql = format!(
            "INSERT INTO devices (user_id, platform, model, os_version, app_version, token_hash, \
             token_expires_at, ack_seq, last_seen_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?){}",
            self.dialect().returning_id()
        );
        let insert = sqlx::query(&sql)
            .bind(d.user_id as i64)
            .bind(d.platform)
            .bind(d.model)
            .bind(d.os_version)
            .bind(d.app_version)
            .bind(d.token_hash)
            .bind(d.token_expires_at)
            .bind(d.now_ms)
            .bind(d.now_ms);
        let mut conn = self.pool().acquire().await?;
        let id = self.dialect().insert_id(&mut conn, insert).await?;
        Ok(id as u64)
    }

    pub async fn device(&self, device_id: u64) -> Result<Option<Device>> {
        let row = sqlx::query(
            "SELECT id, user_id, platform, token_hash, token_expires_at, prev_token_hash, \
             prev_token_expires_at, ack_seq FROM devices WHERE id = ?",
        )
        .bind(device_id as i64)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(Device::from_row).transpose()
    }

    /// Replaces a device's token (login on a known device); the previous
    /// one stops working at once.
    pub async fn set_device_token(
        &self,
        device_id: u64,
        token_hash: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE devices SET token_hash = ?, token_expires_at = ?, prev_token_hash = '', \
             prev_token_expires_at = 0, last_seen_at = ? WHERE id = ?",
        )
        .bind(token_hash)
        .bind(expires_at)
        .bind(now_ms)
        .bind(device_id as i64)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Gives a signed-in device a new token. `from` is the hash of the
    /// token it presented: when that is the current one, it becomes the
    /// previous one (still valid until the new one is used); when it is the
    /// previous one already (the client missed a refresh), it stays so.
    /// False when the device no longer holds `from` (signed out meanwhile).
    pub async fn refresh_device_token(
        &self,
        device_id: u64,
        from: &str,
        token_hash: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<bool> {
        // MySQL assigns left to right with the new values, SQLite with the
        // old ones: the previous token is taken before the current changes.
        let done = sqlx::query(
            "UPDATE devices SET \
             prev_token_expires_at = CASE WHEN token_hash = ? THEN token_expires_at ELSE prev_token_expires_at END, \
             prev_token_hash = CASE WHEN token_hash = ? THEN token_hash ELSE prev_token_hash END, \
             token_hash = ?, token_expires_at = ?, last_seen_at = ? \
             WHERE id = ? AND ? <> '' AND (token_hash = ? OR prev_token_hash = ?)",
        )
        .bind(from)
        .bind(from)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now_ms)
        .bind(device_id as i64)
        .bind(from)
        .bind(from)
        .bind(from)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a sign-in with the device's current token `current`: the
    /// token it replaced stops working, since the client has the new one.
    /// False when the device no longer holds `current` (signed out since
    /// it was read).
    pub async fn touch_device(&self, device_id: u64, current: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE devices SET last_seen_at = ?, prev_token_hash = '', prev_token_expires_at = 0 \
             WHERE id = ? AND token_hash = ?",
        )
        .bind(now_ms)
        .bind(device_id as i64)
        .bind(current)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the user's devices beyond the `keep` most recently seen and
    /// returns their ids: their tokens stop working with them.
    pub async fn evict_devices(&self, user_id: u64, keep: usize) -> Result<Vec<u64>> {
        let rows = sqlx::query(
            "SELECT id FROM devices WHERE user_id = ? ORDER BY last_seen_at DESC, id DESC",
        )
        .bind(user_id as i64)
        .fetch_all(self.pool())
        .await?;
        let mut evicted = Vec::new();
        for row in rows.iter().skip(keep) {
            let device_id = id(row, "id")?;
            // The device and its push token go together.
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM devices WHERE id = ? AND user_id = ?")
                .bind(device_id as i64)
                .bind(user_id as i64)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM push_tokens WHERE device_id = ?")
                .bind(device_id as i64)
                .execute(&mut *tx)
                .await?;
            self.commit_messages(tx).await?;
            evicted.push(device_id);
        }
        Ok(evicted)
    }

    /// Raises a device's ack_seq to `seq`; never lowers it.
    pub async fn ack(&self, device_id: u64, seq: u64) -> Result<()> {
        sqlx::query("UPDATE devices SET ack_seq = ? WHERE id = ? AND ack_seq < ?")
            .bind(seq as i64)
            .bind(device_id as i64)
            .bind(seq as i64)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
