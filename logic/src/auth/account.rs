//! The account and its devices as their own user manages them (types
//! 90-95): password, logout, the device list, signing another device out,
//! deleting the account, and token refresh. Whatever takes access away
//! revokes tokens in the store first and kicks connections after, as the
//! admin does (admin/accounts.rs). Commands that take a password spend the
//! same budgets as LOGIN before it is hashed.

use tracing::info;

use tern_public::proto::client::{
    AccountDeleteRequest, DeviceEntry, DeviceList, KickReason, PasswordChangeRequest,
    PushProvider as WireProvider, TokenReply,
};
use tern_public::time::now_ms;

use super::{internal, refresh, valid_password};
use crate::actor::{Actor, Connection};
use crate::error::{LogicError, Result};
use crate::store::{Devices, StoreError, User};
use crate::{retry, Logic};

/// The device acting: these commands are a device's own.
fn device(actor: &Actor) -> Result<(u64, u64, &Connection)> {
    match actor {
        Actor::Device {
            user_id,
            device_id,
            conn,
        } => Ok((*user_id, *device_id, conn)),
        Actor::AdminAs(_) | Actor::System => Err(LogicError::Internal(
            "a device command without a device".into(),
        )),
    }
}

/// The acting user, once `password` is proven theirs.
async fn verified(
    logic: &Logic,
    conn: &Connection,
    user_id: u64,
    password: String,
) -> Result<User> {
    let user = logic
        .store
        .user_by_id(user_id)
        .await?
        .filter(User::is_active)
        .ok_or(LogicError::Forbidden("user disabled"))?;
    crate::limits::check_auth(logic, conn, Some(&user.username)).await?;
    let ok = logic
        .hasher
        .verify(password, user.password_hash.clone())
        .await
        .map_err(internal)?;
    if !ok {
        return Err(LogicError::Unauthenticated("wrong password"));
    }
    Ok(user)
}

/// PASSWORD_CHANGE: this device stays signed in; the others too, unless
/// asked to sign them out.
pub(crate) async fn change_password(
    logic: &Logic,
    actor: &Actor,
    req: PasswordChangeRequest,
) -> Result<()> {
    let (user_id, device_id, conn) = device(actor)?;
    valid_password(&req.new_password)?;
    verified(logic, conn, user_id, req.old_password).await?;
    let hash = logic
        .hasher
        .hash(req.new_password)
        .await
        .map_err(internal)?;
    let others = req
        .sign_out_other_devices
        .then_some(Devices::AllBut(device_id));
    let now = now_ms();
    retry::run(&logic.store, || async {
        let set = logic.store.set_password(user_id, &hash, now, others);
        set.await.map_err(gone)
    })
    .await?;
    info!(
        user_id,
        device_id,
        sign_out_others = others.is_some(),
        "password changed by its user"
    );
    if let Some(which) = others {
        logic
            .kick_user(user_id, which, KickReason::TokenRevoked)
            .await;
    }
    Ok(())
}

/// LOGOUT: revokes this device's token and push token; the connection
/// closes after the reply.
pub(crate) async fn logout(logic: &Logic, actor: &Actor) -> Result<KickReason> {
    let (user_id, device_id, _) = device(actor)?;
    signed_out(logic, user_id, device_id).await?;
    info!(user_id, device_id, "device logged out");
    Ok(KickReason::LoggedOut)
}

/// DEVICE_LIST: every device of the user, oldest first.
pub(crate) async fn devices(logic: &Logic, actor: &Actor) -> Result<DeviceList> {
    let (user_id, device_id, _) = device(actor)?;
    let rows = logic.store.devices_of(user_id, now_ms()).await?;
    let online = logic
        .presence
        .locate(&[user_id])
        .await
        .map_err(|e| LogicError::Unavailable(e.to_string()))?;
    let devices = rows
        .into_iter()
        .map(|d| DeviceEntry {
            device_id: d.id,
            platform: d.platform,
            model: d.model,
            os_version: d.os_version,
            app_version: d.app_version,
            created_at_ms: d.created_at,
            last_seen_at_ms: d.last_seen_at,
            online: online.iter().any(|o| o.device_id == d.id),
            signed_in: d.signed_in,
            current: d.id == device_id,
            push_provider: d.push.map_or(WireProvider::Unspecified, |p| p.to_wire()) as i32,
        })
        .collect();
    Ok(DeviceList { devices })
}

/// DEVICE_REVOKE: signs another device of the user out and closes its
/// connection.
pub(crate) async fn revoke(logic: &Logic, actor: &Actor, target: u64) -> Result<()> {
    let (user_id, device_id, _) = device(actor)?;
    if target == device_id {
        return Err(LogicError::bad_request(
            "that is this device: use LOGOUT to sign it out",
        ));
    }
    if !signed_out(logic, user_id, target).await? {
        return Err(LogicError::NotFound("no such device"));
    }
    info!(
        user_id,
        device_id,
        revoked = target,
        "device signed out by its user"
    );
    logic
        .kick_user(user_id, Devices::One(target), KickReason::TokenRevoked)
        .await;
    Ok(())
}

/// ACCOUNT_DELETE: what the admin's delete does, once the password is
/// given again; this connection closes after the reply.
pub(crate) async fn delete_account(
    logic: &Logic,
    actor: &Actor,
    req: AccountDeleteRequest,
) -> Result<KickReason> {
    let (user_id, device_id, conn) = device(actor)?;
    verified(logic, conn, user_id, req.password).await?;
    logic
        .delete_account(user_id, Devices::AllBut(device_id))
        .await?;
    info!(user_id, device_id, "account deleted by its user");
    Ok(KickReason::UserDisabled)
}

/// TOKEN_REFRESH: a new token for this device; the one it replaces keeps
/// working until the new one is first used, or until it expires.
pub(crate) async fn refresh_token(logic: &Logic, actor: &Actor) -> Result<TokenReply> {
    const SIGNED_OUT: LogicError = LogicError::Unauthenticated("the device was signed out");
    let (user_id, device_id, conn) = device(actor)?;
    let device = logic
        .store
        .device(device_id)
        .await?
        .filter(|d| d.user_id == user_id)
        .ok_or(SIGNED_OUT)?;
    // Only the device's live connection: one left over after the device
    // signed in elsewhere must not take its token away.
    let online = logic
        .presence
        .locate(&[user_id])
        .await
        .map_err(|e| LogicError::Unavailable(e.to_string()))?;
    let here = online.iter().any(|d| {
        d.device_id == device_id && d.at.conn_id == conn.conn_id && d.at.node_id == conn.node_id
    });
    if !here {
        return Err(LogicError::Unauthenticated(
            "this connection no longer holds the device",
        ));
    }
    let (token, token_expires_at_ms) = refresh(logic, &device, &device.token_hash.clone()).await?;
    Ok(TokenReply {
        token,
        token_expires_at_ms,
    })
}

/// Signs one device of the user out; false if the user has no such device.
async fn signed_out(logic: &Logic, user_id: u64, device_id: u64) -> Result<bool> {
    let now = now_ms();
    retry::run(&logic.store, || async {
        let revoke = logic.store.revoke_device(user_id, device_id, now);
        revoke.await.map_err(gone)
    })
    .await
}

/// The user is gone (deleted while the device was connected).
fn gone(e: StoreError) -> LogicError {
    match e {
        StoreError::NotFound => LogicError::Forbidden("user disabled"),
        e => e.into(),
    }
}
