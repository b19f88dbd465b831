//! Push notifications for devices that are not connected: where each
//! device wants them (its push token, types 96-97, and the admin API), and
//! the providers that deliver them.

pub mod config;
pub mod provider;

use tracing::info;

use tern_public::proto::client::PushTokenRequest;
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::domain::PushProvider;
use crate::error::{LogicError, Result};
use crate::store::{PushToken, StoreError};
use crate::Logic;

/// APNs device tokens are hex; Apple says not to assume their length.
const APNS_TOKEN_LEN: std::ops::RangeInclusive<usize> = 16..=200;
/// FCM registration tokens are opaque and about 160 characters today.
const MAX_FCM_TOKEN: usize = 4096;
const MAX_WEBHOOK_TOKEN: usize = 1024;
/// A bundle id, possibly with APNs's suffix (".voip", ".complication").
const MAX_APNS_TOPIC: usize = 255;

/// PUSH_TOKEN_SET: this device's notifications go to `req`'s token.
pub(crate) async fn set_token(logic: &Logic, actor: &Actor, req: PushTokenRequest) -> Result<()> {
    let token = valid(actor, req)?;
    let stored = crate::retry::run(&logic.store, || async {
        logic
            .store
            .set_push_token(&token)
            .await
            .map_err(LogicError::Store)
    });
    match stored.await {
        Err(LogicError::Store(StoreError::NotFound)) => {
            Err(LogicError::Unauthenticated("the device was signed out"))
        }
        // The same token registered by two devices at the same moment.
        Err(LogicError::Store(StoreError::Conflict)) => Err(LogicError::Conflict(
            "the token is being registered by another device",
        )),
        other => other,
    }?;
    info!(
        user_id = token.user_id,
        device_id = token.device_id,
        provider = ?token.provider,
        "push token set"
    );
    Ok(())
}

/// PUSH_TOKEN_REMOVE: this device gets no more notifications. Removing
/// none is not an error.
pub(crate) async fn remove_token(logic: &Logic, actor: &Actor) -> Result<()> {
    let (user_id, device_id) = (actor.user_id(), actor.device_id());
    if logic.store.remove_push_token(user_id, device_id).await? {
        info!(user_id, device_id, "push token removed");
    }
    Ok(())
}

/// The token `req` asks for, checked as its provider documents it.
fn valid(actor: &Actor, req: PushTokenRequest) -> Result<PushToken> {
    let provider = PushProvider::from_wire(req.provider)
        .ok_or_else(|| LogicError::bad_request("provider must be APNS, FCM or WEBHOOK"))?;
    let token = req.token.trim();
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    let token = match provider {
        PushProvider::Apns => {
            let hex = token.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex || token.len() % 2 != 0 || !APNS_TOKEN_LEN.contains(&token.len()) {
                return Err(LogicError::bad_request(
                    "an APNs token is the device token in hex (16-200 digits)",
                ));
            }
            let topic_ok = req.apns_topic.len() <= MAX_APNS_TOPIC
                && req
                    .apns_topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !topic_ok {
                return Err(LogicError::bad_request(format!(
                    "apns_topic must be a bundle id: up to {MAX_APNS_TOPIC} of A-Z, a-z, 0-9, '.', '_', '-'"
                )));
            }
            token.to_ascii_lowercase()
        }
        PushProvider::Fcm | PushProvider::Webhook => {
            let max = match provider {
                PushProvider::Fcm => MAX_FCM_TOKEN,
                _ => MAX_WEBHOOK_TOKEN,
            };
            if token.is_empty() || token.len() > max || !printable(token) {
                return Err(LogicError::bad_request(format!(
                    "the token must be 1-{max} printable ASCII characters"
                )));
            }
            if !req.apns_topic.is_empty() || req.apns_sandbox {
                return Err(LogicError::bad_request(
                    "apns_topic and apns_sandbox are for APNs tokens only",
                ));
            }
            token.to_owned()
        }
    };
    Ok(PushToken {
        device_id: actor.device_id(),
        user_id: actor.user_id(),
        provider,
        token,
        apns_topic: req.apns_topic,
        apns_sandbox: req.apns_sandbox,
        updated_at: now_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_public::proto::client::PushProvider as Wire;

    fn req(provider: Wire, token: &str) -> PushTokenRequest {
        PushTokenRequest {
            provider: provider as i32,
            token: token.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_are_checked_as_their_provider_documents_them() {
        let me = Actor::AdminAs(7);
        let apns = valid(&me, req(Wire::Apns, &"AB".repeat(32))).unwrap();
        assert_eq!(
            apns.token,
            "ab".repeat(32),
            "APNs tokens are kept lower-case"
        );
        assert_eq!(apns.provider, PushProvider::Apns);
        assert!(valid(&me, req(Wire::Fcm, "fcm:token-1")).is_ok());
        assert!(valid(&me, req(Wire::Webhook, "gateway-42")).is_ok());
        for bad in [
            req(Wire::Unspecified, "x"),
            req(Wire::Apns, "not hex at all"),
            req(Wire::Apns, "abc"),
            req(Wire::Apns, &"ab".repeat(101)),
            req(Wire::Fcm, ""),
            req(Wire::Fcm, "has space"),
            req(Wire::Fcm, &"x".repeat(MAX_FCM_TOKEN + 1)),
            req(Wire::Webhook, &"x".repeat(MAX_WEBHOOK_TOKEN + 1)),
            PushTokenRequest {
                apns_topic: "com.example.app".into(),
                ..req(Wire::Fcm, "t")
            },
            PushTokenRequest {
                apns_topic: "com example".into(),
                ..req(Wire::Apns, &"ab".repeat(32))
            },
            PushTokenRequest {
                provider: 99,
                ..req(Wire::Fcm, "t")
            },
        ] {
            let shown = format!("{bad:?}");
            let err = valid(&me, bad).expect_err(&shown);
            assert!(matches!(err, LogicError::BadRequest(_)), "{shown}: {err}");
        }
    }
}
