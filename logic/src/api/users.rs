//! `/api/v1/users`: accounts (create, get, list, update, password,
//! disable/enable, delete). Their devices are in `devices.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::domain::UserStatus;
use crate::store::User as UserRow;

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
