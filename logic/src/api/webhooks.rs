//! `/api/v1/webhooks`: where push and the webhooks stand (outboxes,
//! retries, the last error), and rotation of the after-send webhook's
//! signing secret.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Admin;
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/webhooks", get(status))
        .route("/api/v1/webhooks/after-send/secret", post(rotate))
}

/// Offline push.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushStatus {
    /// The providers configured: `apns`, `fcm`, `webhook`.
    pub providers: Vec<String>,
    /// Notifications waiting to be sent (or sent again).
    pub outbox: u64,
}

/// The after-send webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct AfterSendStatus {
    /// Null when none is configured.
    pub url: Option<String>,
    /// Messages waiting for it.
    pub queued: u64,
    /// When the oldest waiting message was stored (0: none waits).
    pub oldest_queued_at_ms: i64,
    /// Failed attempts of the batch at the head since the last success.
    pub attempts: u32,
    /// When the head batch is tried again (0: now).
    pub next_attempt_at_ms: i64,
    pub last_error: String,
    pub last_success_at_ms: i64,
    /// The logic node sending now.
    pub sender: String,
    /// Until when the secret before the last rotation signs too (0: none).
    pub previous_secret_until_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookStatus {
    pub push: PushStatus,
    pub after_send: AfterSendStatus,
    /// The before-send hook's URL; null when none is configured.
    pub before_send_url: Option<String>,
}

/// A new signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until then requests carry two signatures, the new secret's and the
    /// old one's, so the receiver can switch at its own pace.
    pub previous_secret_until_ms: i64,
}

/// Where push and the webhooks stand.
#[utoipa::path(
    get, path = "/api/v1/webhooks",
    responses(
        (status = 200, body = WebhookStatus),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "webhooks"
)]
pub async fn status(_: Admin, State(s): State<ApiState>) -> Result<Json<WebhookStatus>, ApiError> {
    let st = s.logic.admin_webhooks().await?;
    let a = st.after_send;
    Ok(Json(WebhookStatus {
        push: PushStatus {
            providers: st.push_providers.iter().map(|p| p.to_string()).collect(),
            outbox: st.push_outbox,
        },
        after_send: AfterSendStatus {
            url: st.after_send_url,
            queued: st.after_send_queued,
            oldest_queued_at_ms: st.after_send_oldest_queued_at,
            attempts: a.attempts,
            next_attempt_at_ms: a.next_attempt_at,
            last_error: a.last_error,
            last_success_at_ms: a.last_success_at,
            sender: a.holder,
            previous_secret_until_ms: if a.prev_secret.is_empty() {
                0
            } else {
                a.prev_until
            },
        },
        before_send_url: st.before_send_url,
    }))
}

/// Rotate the after-send webhook's signing secret. The new one is
/// returned once; for a day the old one signs beside it.
#[utoipa::path(
    post, path = "/api/v1/webhooks/after-send/secret",
    responses(
        (status = 200, body = RotatedSecret),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No after-send webhook is configured"),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "webhooks"
)]
pub async fn rotate(_: Admin, State(s): State<ApiState>) -> Result<Json<RotatedSecret>, ApiError> {
    let (secret, until) = s.logic.admin_rotate_after_send_secret().await?;
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_until_ms: until,
    }))
}
