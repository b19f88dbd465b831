//! `/api/v1/users`: accounts (create, get, list, update, password,
//! disable/enable, delete) and their devices (list, kick, push token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::domain::{PushProvider, UserStatus};
use crate::store::{DeviceRow, PushToken as PushTokenRow, User as UserRow};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users", post(create).get(list))
        .route(
            "/api/v1/users/{user_id}",
            get(get_one).patch(update).delete(remove),
        )
        .route("/api/v1/users/{user_id}/password", put(set_password))
        .route("/api/v1/users/{user_id}/disable", post(disable))
        .route("/api/v1/users/{user_id}/enable", post(enable))
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

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub user_id: u64,
    pub username: String,
    pub nickname: String,
    pub avatar_url: String,
    /// `active` or `disabled`.
    pub status: UserStatus,
    pub created_at_ms: i64,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> User {
        User {
            user_id: u.id,
            username: u.username,
            nickname: u.nickname,
            avatar_url: u.avatar_url,
            status: u.status,
            created_at_ms: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3-32 of a-z 0-9 _ . -, starting with a letter or digit; case-insensitive.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")]
    pub username: String,
    /// 8-128 bytes.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Defaults to the username; 1-64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub nickname: Option<String>,
}

/// Fields to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    /// 1-64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub nickname: Option<String>,
    /// Up to 1024 bytes.
    #[schema(max_length = 1024)]
    pub avatar_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// 8-128 bytes.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only usernames starting with this (up to 32 of a-z 0-9 _ . -).
    #[param(pattern = r"^[a-z0-9_.-]{0,32}$")]
    pub prefix: Option<String>,
    /// The `next` of the previous page.
    #[param(max_length = 32)]
    pub after: Option<String>,
    /// 1-100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
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

/// Create a user that can log in with the password.
#[utoipa::path(
    post, path = "/api/v1/users", request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn create(
    _: Admin,
    State(s): State<ApiState>,
    ApiJson(u): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = s
        .logic
        .admin_create_user(&u.username, u.password, u.nickname.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Users in username order, optionally by username prefix.
#[utoipa::path(
    get, path = "/api/v1/users", params(ListQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = page_limit(q.limit, 20, 100)?;
    let page = s
        .logic
        .admin_list_users(
            q.prefix.as_deref().unwrap_or(""),
            q.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    Ok(Json(UserPage {
        users: page.users.into_iter().map(User::from).collect(),
        next: page.next,
    }))
}

/// One user.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}", params(("user_id" = u64, Path)),
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn get_one(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(s.logic.admin_user(user_id).await?.into()))
}

/// Change a user's profile.
#[utoipa::path(
    patch, path = "/api/v1/users/{user_id}", params(("user_id" = u64, Path)),
    request_body = UserChanges,
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn update(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
    ApiJson(c): ApiJson<UserChanges>,
) -> Result<Json<User>, ApiError> {
    let user = s
        .logic
        .admin_update_user(user_id, c.nickname.as_deref(), c.avatar_url.as_deref())
        .await?;
    Ok(Json(user.into()))
}

/// Set a new password: every token of the user is revoked and its devices
/// are kicked (KICKED, token revoked).
#[utoipa::path(
    put, path = "/api/v1/users/{user_id}/password", params(("user_id" = u64, Path)),
    request_body = NewPassword,
    responses(
        (status = 204, description = "Password set, tokens revoked"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn set_password(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
    ApiJson(p): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    s.logic.admin_set_password(user_id, p.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a user: tokens revoked, every device kicked (KICKED, user
/// disabled), sign-in and login refused until enabled.
#[utoipa::path(
    post, path = "/api/v1/users/{user_id}/disable", params(("user_id" = u64, Path)),
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn disable(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        s.logic.admin_set_disabled(user_id, true).await?.into(),
    ))
}

/// Enable a disabled user; its devices log in again.
#[utoipa::path(
    post, path = "/api/v1/users/{user_id}/enable", params(("user_id" = u64, Path)),
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn enable(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        s.logic.admin_set_disabled(user_id, false).await?.into(),
    ))
}

/// Delete a user: it cannot sign in, its username is free again, its
/// friendships and group memberships are gone, its devices are kicked.
/// Messages it sent stay in other users' lists.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}", params(("user_id" = u64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The user owns groups", body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "users"
)]
pub async fn remove(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    s.logic.admin_delete_user(user_id).await?;
    Ok(StatusCode::NO_CONTENT)
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
