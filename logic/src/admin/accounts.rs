//! Accounts, devices and their push tokens as admins manage them. Taking
//! access away (password change, disable, delete, device kick) revokes
//! tokens in the store first, then kicks the live connections: a kick that
//! is lost leaves a connection whose token no longer signs in anywhere.

use tracing::{info, warn};

use tern_public::proto::client::KickReason;
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::auth::{kick, valid_password, valid_username};
use crate::domain::UserStatus;
use crate::error::{LogicError, Result};
use crate::store::{DeviceRow, Devices, NewUser, PushToken, StoreError, User};
use crate::{paging, users, Logic};

const NO_USER: LogicError = LogicError::NotFound("no such user");
const NO_DEVICE: LogicError = LogicError::NotFound("no such device");
const NO_PUSH_TOKEN: LogicError = LogicError::NotFound("the device has no push token");
const MAX_NICKNAME: usize = 64;

/// A page of users in username order.
pub(crate) struct UserPage {
    pub users: Vec<User>,
    /// The last username of this page when more follow.
    pub next: Option<String>,
}

impl Logic {
    /// Creates an active user that can log in with `password`.
    pub(crate) async fn admin_create_user(
        &self,
        username: &str,
        password: String,
        nickname: Option<&str>,
    ) -> Result<User> {
        let username = valid_username(username)?;
        valid_password(&password)?;
        // Absent: the username. Present: 1-64 characters, as documented.
        let nickname = match nickname.map(str::trim) {
            None => username.clone(),
            Some(n) if n.is_empty() || n.chars().count() > MAX_NICKNAME => {
                return Err(LogicError::bad_request(format!(
                    "nickname must be 1-{MAX_NICKNAME} characters"
                )))
            }
            Some(n) => n.to_owned(),
        };
        let hash = self.hash(password).await?;
        let id = match self
            .store
            .create_user(NewUser {
                username: &username,
                password_hash: &hash,
                nickname: &nickname,
                now_ms: now_ms(),
            })
            .await
        {
            Err(StoreError::Conflict) => return Err(LogicError::Conflict("username taken")),
            other => other?,
        };
        info!(user_id = id, "user created by admin");
        self.admin_user(id).await
    }

    /// A user that exists and is not deleted.
    pub(crate) async fn admin_user(&self, user_id: u64) -> Result<User> {
        self.store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.status != UserStatus::Deleted)
            .ok_or(NO_USER)
    }

    /// Users whose username starts with `prefix` (may be empty), after
    /// username `after`, ascending.
    pub(crate) async fn admin_list_users(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<UserPage> {
        let prefix = prefix.trim().to_lowercase();
        let valid = prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        if prefix.len() > 32 || !valid {
            return Err(LogicError::bad_request(
                "prefix must be up to 32 characters of a-z, 0-9, '_', '.', '-'",
            ));
        }
        if after.len() > 32 {
            return Err(LogicError::bad_request("after longer than 32 characters"));
        }
        let rows = self.store.search_users(&prefix, after, limit + 1).await?;
        let (users, more) = paging::page(rows, limit);
        let next = more
            .then(|| users.last().map(|u| u.username.clone()))
            .flatten();
        Ok(UserPage { users, next })
    }

    /// Changes nickname and/or avatar URL.
    pub(crate) async fn admin_update_user(
        &self,
        user_id: u64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<User> {
        self.admin_user(user_id).await?;
        users::update(self, &Actor::AdminAs(user_id), nickname, avatar_url).await?;
        self.admin_user(user_id).await
    }

    /// Sets a new password; every device must log in again.
    pub(crate) async fn admin_set_password(&self, user_id: u64, password: String) -> Result<()> {
        valid_password(&password)?;
        self.admin_user(user_id).await?;
        let hash = self.hash(password).await?;
        self.store
            .set_password(user_id, &hash, now_ms(), Some(Devices::All))
            .await
            .map_err(not_found)?;
        info!(user_id, "password set by admin; tokens revoked");
        self.kick_user(user_id, Devices::All, KickReason::TokenRevoked)
            .await;
        Ok(())
    }

    /// Disables (tokens revoked, devices kicked, sign-in refused) or
    /// enables a user.
    pub(crate) async fn admin_set_disabled(&self, user_id: u64, disabled: bool) -> Result<User> {
        let status = if disabled {
            UserStatus::Disabled
        } else {
            UserStatus::Active
        };
        self.store
            .set_status(user_id, status, now_ms())
            .await
            .map_err(not_found)?;
        if disabled {
            info!(user_id, "user disabled by admin");
            self.kick_user(user_id, Devices::All, KickReason::UserDisabled)
                .await;
        }
        self.admin_user(user_id).await
    }

    /// Deletes a user (see [`crate::store::Store::delete_user`]).
    pub(crate) async fn admin_delete_user(&self, user_id: u64) -> Result<()> {
        self.delete_account(user_id, Devices::All).await?;
        info!(user_id, "user deleted by admin");
        Ok(())
    }

    /// Deletes a user and kicks the devices `kick` names (ACCOUNT_DELETE
    /// closes the asking device's connection itself, after its reply).
    pub(crate) async fn delete_account(&self, user_id: u64, kick: Devices) -> Result<()> {
        let now = now_ms();
        let deleted = crate::retry::run(&self.store, || async {
            let delete = self.store.delete_user(user_id, now);
            delete.await.map_err(LogicError::Store)
        });
        let left = match deleted.await {
            Err(LogicError::Store(StoreError::Conflict)) => {
                return Err(LogicError::Conflict(
                    "the user owns groups: transfer or dismiss them first",
                ))
            }
            Err(LogicError::Store(StoreError::NotFound)) => return Err(NO_USER),
            other => other?,
        };
        for group_id in left {
            if let Err(e) = self.members.invalidate(group_id).await {
                warn!(error = %e, group_id, "member cache not invalidated after a user deletion");
            }
        }
        self.kick_user(user_id, kick, KickReason::UserDisabled)
            .await;
        Ok(())
    }

    /// Every device of a user.
    pub(crate) async fn admin_devices(&self, user_id: u64) -> Result<Vec<DeviceRow>> {
        self.admin_user(user_id).await?;
        Ok(self.store.devices_of(user_id, now_ms()).await?)
    }

    /// Revokes a device's token and closes its connection.
    pub(crate) async fn admin_kick_device(&self, user_id: u64, device_id: u64) -> Result<()> {
        let found = self
            .store
            .revoke_device(user_id, device_id, now_ms())
            .await
            .map_err(not_found)?;
        if !found {
            return Err(NO_DEVICE);
        }
        info!(user_id, device_id, "device kicked by admin");
        self.kick_user(user_id, Devices::One(device_id), KickReason::TokenRevoked)
            .await;
        Ok(())
    }

    /// The push token of a device of a user.
    pub(crate) async fn admin_push_token(&self, user_id: u64, device_id: u64) -> Result<PushToken> {
        self.admin_device(user_id, device_id).await?;
        self.store
            .push_token(user_id, device_id)
            .await?
            .ok_or(NO_PUSH_TOKEN)
    }

    /// Removes the push token of a device of a user: it is no longer
    /// notified until it registers one again. Its sign-in stays.
    pub(crate) async fn admin_remove_push_token(&self, user_id: u64, device_id: u64) -> Result<()> {
        self.admin_device(user_id, device_id).await?;
        if !self.store.remove_push_token(user_id, device_id).await? {
            return Err(NO_PUSH_TOKEN);
        }
        info!(user_id, device_id, "push token removed by admin");
        Ok(())
    }

    /// Checks that the user exists and the device is one of its own, so
    /// the push token routes tell a wrong id from a missing token.
    async fn admin_device(&self, user_id: u64, device_id: u64) -> Result<()> {
        self.admin_user(user_id).await?;
        match self.store.device(device_id).await? {
            Some(d) if d.user_id == user_id => Ok(()),
            _ => Err(NO_DEVICE),
        }
    }

    /// Kicks the online devices of a user that `which` names.
    pub(crate) async fn kick_user(&self, user_id: u64, which: Devices, reason: KickReason) {
        let online = match self.presence.locate(&[user_id]).await {
            Ok(o) => o,
            Err(e) => {
                // Tokens are revoked already: the connections cannot sign in again.
                warn!(error = %e, user_id, "presence unavailable; online devices not kicked");
                return;
            }
        };
        for d in online.iter().filter(|d| match which {
            Devices::All => true,
            Devices::One(id) => id == d.device_id,
            Devices::AllBut(id) => id != d.device_id,
        }) {
            kick(self, d.device_id, &d.at, reason).await;
        }
    }

    async fn hash(&self, password: String) -> Result<String> {
        self.hasher
            .hash(password)
            .await
            .map_err(|e| LogicError::Internal(e.to_string()))
    }
}

fn not_found(e: StoreError) -> LogicError {
    match e {
        StoreError::NotFound => NO_USER,
        e => e.into(),
    }
}
