//! What admins do to accounts: passwords, status, deletion, and the devices
//! of a user. Every change that takes access away also revokes the tokens,
//! in the same transaction, so no device signs in again afterwards.

use sqlx::Row;

use super::{id, Result, Store, StoreError, Tx};
use crate::domain::{PushProvider, Stored, UserStatus};

/// A device as admins see it.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: u64,
    pub platform: String,
    pub model: String,
    pub os_version: String,
    pub app_version: String,
    /// Holds a token that has not expired.
    pub signed_in: bool,
    pub ack_seq: u64,
    pub last_seen_at: i64,
    pub created_at: i64,
    /// The provider of its push token, when it has one.
    pub push: Option<PushProvider>,
}

/// Which devices of a user a revocation signs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    All,
    One(u64),
    /// Every device but this one (the one asking).
    AllBut(u64),
}

impl Store {
    /// Signs devices of `user` out: clears their tokens (the previous one
    /// too) and removes their push tokens, so a signed-out device is
    /// neither signed in again nor notified.
    async fn revoke_in(&self, tx: &mut Tx, user: u64, which: Devices) -> Result<u64> {
        let (filter, device) = match which {
            Devices::All => ("", None),
            Devices::One(d) => (" AND id = ?", Some(d)),
            Devices::AllBut(d) => (" AND id <> ?", Some(d)),
        };
        let sql = format!(
            "UPDATE devices SET token_hash = '', token_expires_at = 0, prev_token_hash = '', \
             prev_token_expires_at = 0 WHERE user_id = ?{filter}"
        );
        let mut revoke = sqlx::query(&sql).bind(user as i64);
        if let Some(d) = device {
            revoke = revoke.bind(d as i64);
        }
        let done = revoke.execute(&mut **tx).await?;
        let sql = format!(
            "DELETE FROM push_tokens WHERE user_id = ?{}",
            filter.replace(" id ", " device_id ")
        );
        let mut unpush = sqlx::query(&sql).bind(user as i64);
        if let Some(d) = device {
            unpush = unpush.bind(d as i64);
        }
        unpush.execute(&mut **tx).await?;
        if let Devices::AllBut(kept) = which {
            // The device that stays keeps only its current token: an older
            // one may be the one that leaked.
            sqlx::query(
                "UPDATE devices SET prev_token_hash = '', prev_token_expires_at = 0 \
                 WHERE user_id = ? AND id = ?",
            )
            .bind(user as i64)
            .bind(kept as i64)
            .execute(&mut **tx)
            .await?;
        }
        Ok(done.rows_affected())
    }

    /// Locks a live (not deleted) user's row (a write takes the row lock in
    /// both engines); NotFound otherwise.
    async fn lock_live_user(&self, tx: &mut Tx, user: u64, now: i64) -> Result<()> {
        let done = sqlx::query("UPDATE users SET updated_at = ? WHERE id = ? AND status <> ?")
            .bind(now)
            .bind(user as i64)
            .bind(UserStatus::Deleted.as_str())
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets a new password hash and signs out the devices `revoke` names.
    pub async fn set_password(
        &self,
        user: u64,
        hash: &str,
        now: i64,
        revoke: Option<Devices>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_live_user(&mut tx, user, now).await?;
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(now)
            .bind(user as i64)
            .execute(&mut *tx)
            .await?;
        if let Some(which) = revoke {
            self.revoke_in(&mut tx, user, which).await?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    /// Sets [`UserStatus::Active`] or [`UserStatus::Disabled`]; disabling
    /// revokes every token. (Deleting is [`Store::delete_user`].)
    pub async fn set_status(&self, user: u64, status: UserStatus, now: i64) -> Result<()> {
        debug_assert_ne!(status, UserStatus::Deleted, "use delete_user");
        let mut tx = self.begin_write().await?;
        self.lock_live_user(&mut tx, user, now).await?;
        sqlx::query("UPDATE users SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now)
            .bind(user as i64)
            .execute(&mut *tx)
            .await?;
        if status != UserStatus::Active {
            self.revoke_in(&mut tx, user, Devices::All).await?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    /// Deletes an account: it can no longer sign in, its username is free
    /// again, its tokens are revoked, its friendships (both directions) and
    /// group memberships are gone. Its list and the messages it sent stay,
    /// so other users' lists keep their history. A user who owns a live
    /// group is a [`StoreError::Conflict`]: transfer or dismiss it first.
    /// Returns the groups it left.
    pub async fn delete_user(&self, user: u64, now: i64) -> Result<Vec<u64>> {
        let mut tx = self.begin_write().await?;
        self.lock_live_user(&mut tx, user, now).await?;
        let owns =
            sqlx::query("SELECT id FROM `groups` WHERE owner_id = ? AND dismissed_at = 0 LIMIT 1")
                .bind(user as i64)
                .fetch_optional(&mut *tx)
                .await?;
        if owns.is_some() {
            return Err(StoreError::Conflict);
        }
        // A name no valid username can take ('~' is not allowed in them).
        sqlx::query("UPDATE users SET status = ?, username = ?, updated_at = ? WHERE id = ?")
            .bind(UserStatus::Deleted.as_str())
            .bind(format!("~deleted~{user}"))
            .bind(now)
            .bind(user as i64)
            .execute(&mut *tx)
            .await?;
        self.revoke_in(&mut tx, user, Devices::All).await?;
        sqlx::query("DELETE FROM friends WHERE user_id = ? OR friend_id = ?")
            .bind(user as i64)
            .bind(user as i64)
            .execute(&mut *tx)
            .await?;
        let groups: Vec<u64> =
            sqlx::query("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id")
                .bind(user as i64)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| id(r, "group_id"))
                .collect::<Result<_>>()?;
        for g in &groups {
            sqlx::query(
                "UPDATE `groups` SET member_count = member_count - 1, updated_at = ? WHERE id = ?",
            )
            .bind(now)
            .bind(*g as i64)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM group_members WHERE user_id = ?")
            .bind(user as i64)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(groups)
    }

    /// Every device of a user, oldest first.
    pub async fn devices_of(&self, user: u64, now: i64) -> Result<Vec<DeviceRow>> {
        let rows = sqlx::query(
            "SELECT d.id, d.platform, d.model, d.os_version, d.app_version, d.token_hash, \
             d.token_expires_at, d.ack_seq, d.last_seen_at, d.created_at, p.provider \
             FROM devices d LEFT JOIN push_tokens p ON p.device_id = d.id \
             WHERE d.user_id = ? ORDER BY d.id",
        )
        .bind(user as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let token: String = r.try_get("token_hash")?;
                let expires: i64 = r.try_get("token_expires_at")?;
                Ok(DeviceRow {
                    id: id(r, "id")?,
                    platform: r.try_get("platform")?,
                    model: r.try_get("model")?,
                    os_version: r.try_get("os_version")?,
                    app_version: r.try_get("app_version")?,
                    signed_in: !token.is_empty() && expires > now,
                    ack_seq: id(r, "ack_seq")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    created_at: r.try_get("created_at")?,
                    push: r
                        .try_get::<Option<i64>, _>("provider")?
                        .and_then(PushProvider::from_stored),
                })
            })
            .collect()
    }

    /// Revokes one device's token; false if the user has no such device.
    pub async fn revoke_device(&self, user: u64, device: u64, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        self.lock_live_user(&mut tx, user, now).await?;
        let exists = sqlx::query("SELECT id FROM devices WHERE user_id = ? AND id = ?")
            .bind(user as i64)
            .bind(device as i64)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            self.revoke_in(&mut tx, user, Devices::One(device)).await?;
        }
        self.commit(tx).await?;
        Ok(exists)
    }
}
