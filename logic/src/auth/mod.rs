//! REGISTER, LOGIN and SIGN_IN: accounts, devices and tokens.
//!
//! Passwords are hashed with argon2id on a fixed pool of hashing threads
//! ([`hasher`]), at most `max_concurrent_hashes` at once. Tokens are 256-bit
//! random, given to the client once, stored only as SHA-256, compared in
//! constant time, and expire after `token_ttl`.

pub(crate) mod account;
mod hasher;

pub(crate) use hasher::Hasher;

use prost::Message as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use tern_public::proto::bus::{node_message, Bind, Kick, NodeMessage};
use tern_public::proto::client::{
    AuthReply, DeviceInfo, KickReason, LoginRequest, RegisterRequest, Session, SignInReply,
    SignInRequest,
};
use tern_public::time::now_ms;

use crate::actor::Connection;
use crate::error::{LogicError, Result};
use crate::presence::Location;
use crate::store::{Device, Devices, NewDevice, NewUser, StoreError};
use crate::Logic;

const MAX_DEVICE_FIELD: usize = 64;
const MAX_NICKNAME: usize = 64;

/// REGISTER: creates the user and its first device, and signs the connection in.
pub(crate) async fn register(
    logic: &Logic,
    conn: &Connection,
    req: RegisterRequest,
) -> Result<(AuthReply, Bind)> {
    let username = valid_username(&req.username)?;
    valid_password(&req.password)?;
    let nickname = match req.nickname.trim() {
        "" => username.clone(),
        n if n.chars().count() > MAX_NICKNAME => {
            return Err(LogicError::bad_request(format!(
                "nickname longer than {MAX_NICKNAME} characters"
            )))
        }
        n => n.to_owned(),
    };
    let device = valid_device(req.device)?;
    crate::limits::check_auth(logic, conn, None).await?;
    let hash = logic.hasher.hash(req.password).await.map_err(internal)?;
    let now = now_ms();
    let user_id = match logic
        .store
        .create_user(NewUser {
            username: &username,
            password_hash: &hash,
            nickname: &nickname,
            now_ms: now,
        })
        .await
    {
        Err(StoreError::Conflict) => return Err(LogicError::Conflict("username taken")),
        other => other?,
    };
    info!(user_id, "user registered");
    new_device_session(logic, conn, user_id, &device).await
}

/// LOGIN: checks the password, then reuses the named device (new token) or creates one.
pub(crate) async fn login(
    logic: &Logic,
    conn: &Connection,
    req: LoginRequest,
) -> Result<(AuthReply, Bind)> {
    let device_info = valid_device(req.device)?;
    let username = req.username.trim().to_lowercase();
    // Only a possible username gets a budget (and a counter key): anything
    // else is bounded by the address's budget alone.
    let counted = valid_username(&username).ok();
    crate::limits::check_auth(logic, conn, counted.as_deref()).await?;
    let user = logic.store.user_by_username(&username).await?;
    // Unknown users cost a hash too, so timing does not tell which usernames exist.
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => logic.hasher.dummy().await.map_err(internal)?,
    };
    let ok = logic
        .hasher
        .verify(req.password, hash)
        .await
        .map_err(internal)?;
    let user = match user {
        Some(u) if ok => u,
        _ => return Err(LogicError::Unauthenticated("invalid username or password")),
    };
    if !user.is_active() {
        return Err(LogicError::Forbidden("user disabled"));
    }
    if req.device_id != 0 {
        // Reuse only the user's own device; anything else gets a fresh one.
        if let Some(device) = logic
            .store
            .device(req.device_id)
            .await?
            .filter(|d| d.user_id == user.id)
        {
            let (token, token_hash) = new_token();
            let now = now_ms();
            let expires = now + logic.cfg.token_ttl.as_millis() as i64;
            logic
                .store
                .set_device_token(device.id, &token_hash, expires, now)
                .await?;
            let session = open_session(logic, conn, user.id, &device).await?;
            return Ok(auth_reply(user.id, device.id, token, expires, session));
        }
    }
    new_device_session(logic, conn, user.id, &device_info).await
}

/// SIGN_IN: resumes a device with its token. A token past half its life,
/// or one already replaced (the client missed the reply that carried its
/// successor), is replaced: the reply carries the new one.
pub(crate) async fn sign_in(
    logic: &Logic,
    conn: &Connection,
    req: SignInRequest,
) -> Result<(SignInReply, Bind)> {
    const INVALID: LogicError = LogicError::Unauthenticated("invalid token");
    let device = logic.store.device(req.device_id).await?.ok_or(INVALID)?;
    let presented = token_hash(&req.token);
    let held = |stored: &str| -> bool {
        let same: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
        same && !stored.is_empty()
    };
    // Both compared, so timing does not tell which one matched.
    let (current, previous) = (held(&device.token_hash), held(&device.prev_token_hash));
    if !(current || previous) || device.user_id != req.user_id {
        return Err(INVALID);
    }
    let now = now_ms();
    let expires_at = if current {
        device.token_expires_at
    } else {
        device.prev_token_expires_at
    };
    if expires_at <= now {
        return Err(LogicError::Unauthenticated("token expired"));
    }
    let user = logic
        .store
        .user_by_id(device.user_id)
        .await?
        .ok_or(INVALID)?;
    if !user.is_active() {
        return Err(LogicError::Forbidden("user disabled"));
    }
    let ttl = logic.cfg.token_ttl.as_millis() as i64;
    let (token, token_expires_at_ms) = if previous || expires_at - now < ttl / 2 {
        refresh(logic, &device, &presented).await?
    } else {
        if !logic.store.touch_device(device.id, &presented, now).await? {
            return Err(INVALID);
        }
        (String::new(), 0)
    };
    let session = open_session(logic, conn, user.id, &device).await?;
    let bind = Bind {
        user_id: user.id,
        device_id: device.id,
    };
    let reply = SignInReply {
        session: Some(session),
        token,
        token_expires_at_ms,
    };
    Ok((reply, bind))
}

/// Gives `device` a new token in place of the one whose hash is `from`.
pub(crate) async fn refresh(logic: &Logic, device: &Device, from: &str) -> Result<(String, i64)> {
    let (token, hash) = new_token();
    let now = now_ms();
    let expires = now + logic.cfg.token_ttl.as_millis() as i64;
    let refreshed = logic
        .store
        .refresh_device_token(device.id, from, &hash, expires, now)
        .await?;
    if !refreshed {
        return Err(LogicError::Unauthenticated("the device was signed out"));
    }
    info!(
        user_id = device.user_id,
        device_id = device.id,
        "device token refreshed"
    );
    Ok((token, expires))
}

async fn new_device_session(
    logic: &Logic,
    conn: &Connection,
    user_id: u64,
    info: &DeviceInfo,
) -> Result<(AuthReply, Bind)> {
    // A user has at most `max_devices_per_user`: the new one takes the
    // place of the one seen longest ago, whose token stops working.
    let keep = logic.cfg.max_devices_per_user.saturating_sub(1) as usize;
    let evicted = logic.store.evict_devices(user_id, keep).await?;
    for device_id in evicted {
        info!(
            user_id,
            device_id, "device limit reached; oldest device removed"
        );
        logic
            .kick_user(user_id, Devices::One(device_id), KickReason::TokenRevoked)
            .await;
    }
    let (token, token_hash) = new_token();
    let now = now_ms();
    let expires = now + logic.cfg.token_ttl.as_millis() as i64;
    let device_id = logic
        .store
        .create_device(NewDevice {
            user_id,
            platform: &info.platform,
            model: &info.model,
            os_version: &info.os_version,
            app_version: &info.app_version,
            token_hash: &token_hash,
            token_expires_at: expires,
            now_ms: now,
        })
        .await?;
    let device = logic
        .store
        .device(device_id)
        .await?
        .ok_or(LogicError::Internal("device vanished".into()))?;
    let session = open_session(logic, conn, user_id, &device).await?;
    Ok(auth_reply(user_id, device_id, token, expires, session))
}

fn auth_reply(
    user_id: u64,
    device_id: u64,
    token: String,
    expires: i64,
    session: Session,
) -> (AuthReply, Bind) {
    let reply = AuthReply {
        user_id,
        device_id,
        token,
        token_expires_at_ms: expires,
        session: Some(session),
    };
    (reply, Bind { user_id, device_id })
}

/// Marks the device online at the conn's connection, kicks a connection it
/// replaces on another node, and describes the session.
async fn open_session(
    logic: &Logic,
    conn: &Connection,
    user_id: u64,
    device: &Device,
) -> Result<Session> {
    let here = Location {
        node_id: conn.node_id.clone(),
        conn_id: conn.conn_id,
    };
    let replaced = logic
        .presence
        .online(user_id, device.id, here)
        .await
        .map_err(|e| LogicError::Unavailable(e.to_string()))?;
    if let Some(old) = replaced {
        // Same node: connect replaces the binding itself; the kick is then a
        // no-op there because it names the old conn_id.
        kick(logic, device.id, &old, KickReason::SignedInElsewhere).await;
    }
    Ok(Session {
        user_id,
        device_id: device.id,
        max_seq: logic.store.max_seq(user_id).await?,
        ack_seq: device.ack_seq,
        heartbeat_interval_secs: conn.heartbeat_interval_secs,
        server_time_ms: now_ms(),
    })
}

/// Tells the connect node at `at` to send KICKED to the device's connection
/// there and close it. A connection that has moved on is left alone (the
/// kick names its conn_id). Best effort: a lost kick leaves a connection
/// whose token no longer signs in.
pub(crate) async fn kick(logic: &Logic, device_id: u64, at: &Location, reason: KickReason) {
    let kick = NodeMessage {
        body: Some(node_message::Body::Kick(Kick {
            device_id,
            conn_id: at.conn_id,
            reason: reason as i32,
        })),
    };
    let subject = logic.cfg.subjects.node(&at.node_id);
    if let Err(e) = logic
        .bus
        .publish(&subject, kick.encode_to_vec().into())
        .await
    {
        warn!(error = %e, node = %at.node_id, device_id, "could not send a kick");
    }
}

/// Usernames: 3–32 of a-z 0-9 _ . -, starting with a letter or digit; case-insensitive.
pub(crate) fn valid_username(raw: &str) -> Result<String> {
    let name = raw.trim().to_lowercase();
    let len_ok = (3..=32).contains(&name.len());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    let start_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if len_ok && chars_ok && start_ok {
        Ok(name)
    } else {
        Err(LogicError::bad_request(
            "username must be 3-32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
        ))
    }
}

pub(crate) fn valid_password(pw: &str) -> Result<()> {
    if (8..=128).contains(&pw.len()) {
        Ok(())
    } else {
        Err(LogicError::bad_request("password must be 8-128 bytes"))
    }
}

fn valid_device(info: Option<DeviceInfo>) -> Result<DeviceInfo> {
    let info = info.unwrap_or_default();
    for (name, v) in [
        ("platform", &info.platform),
        ("model", &info.model),
        ("os_version", &info.os_version),
        ("app_version", &info.app_version),
    ] {
        if v.len() > MAX_DEVICE_FIELD {
            return Err(LogicError::bad_request(format!(
                "device {name} longer than {MAX_DEVICE_FIELD} bytes"
            )));
        }
    }
    Ok(info)
}

/// A fresh token and its stored hash.
fn new_token() -> (String, String) {
    let raw: [u8; 32] = rand::random();
    let token = hex::encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn internal(e: hasher::HashError) -> LogicError {
    LogicError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(valid_username(" Alice_1 ").unwrap(), "alice_1");
        for bad in ["ab", "-abc", "a b c", "ünï", &"x".repeat(33), ""] {
            assert!(valid_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(h1, token_hash(&t1));
        assert_ne!(h1, t1);
    }

    #[test]
    fn device_fields_are_bounded() {
        let long = DeviceInfo {
            model: "m".repeat(65),
            ..Default::default()
        };
        assert!(valid_device(Some(long)).is_err());
        assert!(valid_device(None).is_ok());
    }
}
