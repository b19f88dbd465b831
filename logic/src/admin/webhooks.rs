//! The state of push and the webhooks as admins see it, and rotation of
//! the after-send webhook's signing secret.

use tracing::info;

use tern_public::time::now_ms;

use crate::error::{LogicError, Result};
use crate::push::sender::provider_name;
use crate::store::WebhookState;
use crate::webhooks::after_send::ROTATION_GRACE;
use crate::Logic;

/// Where push and the webhooks stand.
pub(crate) struct Status {
    pub push_providers: Vec<&'static str>,
    pub push_outbox: u64,
    pub after_send_url: Option<String>,
    pub after_send_queued: u64,
    pub after_send_oldest_queued_at: i64,
    pub after_send: WebhookState,
    pub before_send_url: Option<String>,
}

impl Logic {
    pub(crate) async fn admin_webhooks(&self) -> Result<Status> {
        use crate::domain::PushProvider::*;
        let p = &self.cfg.push;
        let push_providers = [
            (p.apns.is_some(), Apns),
            (p.fcm.is_some(), Fcm),
            (p.webhook.is_some(), Webhook),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, provider)| provider_name(provider))
        .collect();
        let (queued, oldest) = self.store.webhook_depth().await?;
        Ok(Status {
            push_providers,
            push_outbox: self.store.push_outbox_depth().await?,
            after_send_url: self.cfg.after_send.as_ref().map(|c| c.url.clone()),
            after_send_queued: queued,
            after_send_oldest_queued_at: oldest,
            after_send: self.store.webhook_state().await?,
            before_send_url: self.cfg.before_send.as_ref().map(|c| c.url.clone()),
        })
    }

    /// A new signing secret for the after-send webhook, shown once; the
    /// one it replaces keeps signing beside it for [`ROTATION_GRACE`], so
    /// the receiver can switch without dropping a request. Returns the
    /// secret and until when the old one signs too.
    pub(crate) async fn admin_rotate_after_send_secret(&self) -> Result<(String, i64)> {
        let Some(cfg) = &self.cfg.after_send else {
            return Err(LogicError::Conflict("no after-send webhook is configured"));
        };
        let state = self.store.webhook_state().await?;
        let current = match state.secret.as_str() {
            "" => cfg.secret.clone(),
            s => s.to_owned(),
        };
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
        let until = now_ms() + ROTATION_GRACE.as_millis() as i64;
        let rotated = self
            .store
            .webhook_rotate(&state.secret, &secret, &current, until)
            .await?;
        if !rotated {
            return Err(LogicError::Conflict(
                "rotated by another request just now; try again",
            ));
        }
        info!("after-send webhook secret rotated by admin");
        Ok((secret, until))
    }
}
