//! `/api/v1/users/{user_id}/devices`: a user's devices (list, kick) and
//! their push tokens (view, remove).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, ApiPath};
use super::ApiState;
use crate::domain::PushProvider;
use crate::store::{DeviceRow, PushToken as PushTokenRow};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users/{user_id}/devices", get(devices))
        .route(
            "/api/v1/users/{user_id}/devices/{device_id}",
            delete(kick_device),
        )
        .route(
            "/api/v1/users/{user_id}/devices/{device_id}/push-token",
            get(push_token).delete(remove_push_token),
        )
}

/// A device (app installation) of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    pub device_id: u64,
    pub platform: String,
    pub model: String,
    pub os_version: String,
    pub app_version: String,
    /// Holds a token that has not expired.
    pub signed_in: bool,
    /// Highest seq the device acknowledged.
    pub ack_seq: u64,
    pub last_seen_at_ms: i64,
    pub created_at_ms: i64,
    /// The provider of its push token; null when it has none.
    pub push_provider: Option<PushProvider>,
}

impl From<DeviceRow> for Device {
    fn from(d: DeviceRow) -> Device {
        Device {
            device_id: d.id,
            platform: d.platform,
            model: d.model,
            os_version: d.os_version,
            app_version: d.app_version,
            signed_in: d.signed_in,
            ack_seq: d.ack_seq,
            last_seen_at_ms: d.last_seen_at,
            created_at_ms: d.created_at,
            push_provider: d.push,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// Where a device's notifications go, as the device registered it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushToken {
    pub device_id: u64,
    /// `apns`, `fcm` or `webhook`.
    pub provider: PushProvider,
    /// APNs: the device token in hex; FCM: the registration token;
    /// webhook: what the app registered.
    pub token: String,
    /// APNs: the app's bundle id; empty for the server's default topic.
    pub apns_topic: String,
    /// APNs: the development environment.
    pub apns_sandbox: bool,
    pub updated_at_ms: i64,
}

impl From<PushTokenRow> for PushToken {
    fn from(t: PushTokenRow) -> PushToken {
        PushToken {
            device_id: t.device_id,
            provider: t.provider,
            token: t.token,
            apns_topic: t.apns_topic,
            apns_sandbox: t.apns_sandbox,
            updated_at_ms: t.updated_at,
        }
    }
}

/// A user's devices, oldest first.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/devices", params(("user_id" = u64, Path)),
    responses(
        (status = 200, body = DeviceList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn devices(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = s.logic.admin_devices(user_id).await?;
    Ok(Json(DeviceList {
        devices: devices.into_iter().map(Device::from).collect(),
    }))
}

/// Kick a device: its token is revoked and its connection closed (KICKED,
/// token revoked). It must log in again with the password.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/devices/{device_id}",
    params(("user_id" = u64, Path), ("device_id" = u64, Path)),
    responses(
        (status = 204, description = "Token revoked, connection closed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn kick_device(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((user_id, device_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    s.logic.admin_kick_device(user_id, device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A device's push token.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/devices/{device_id}/push-token",
    params(("user_id" = u64, Path), ("device_id" = u64, Path)),
    responses(
        (status = 200, body = PushToken),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such user or device, or the device has no push token",
         body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn push_token(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((user_id, device_id)): ApiPath<(u64, u64)>,
) -> Result<Json<PushToken>, ApiError> {
    Ok(Json(
        s.logic.admin_push_token(user_id, device_id).await?.into(),
    ))
}

/// Remove a device's push token: it gets no notifications until it
/// registers one again. It stays signed in.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/devices/{device_id}/push-token",
    params(("user_id" = u64, Path), ("device_id" = u64, Path)),
    responses(
        (status = 204, description = "Push token removed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such user or device, or the device has no push token",
         body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn remove_push_token(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((user_id, device_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    s.logic.admin_remove_push_token(user_id, device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
