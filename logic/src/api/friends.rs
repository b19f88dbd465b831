//! `/api/v1/users/{user_id}/friends`: a user's relations, and removing a
//! friendship (both sides get the same FRIEND_DELETED event as when one of
//! them deletes the other).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiPath, ApiQuery};
use super::ApiState;
use crate::actor::Actor;
use crate::domain::FriendState;
use crate::friends::{self, Relation};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users/{user_id}/friends", get(list))
        .route(
            "/api/v1/users/{user_id}/friends/{friend_id}",
            delete(remove),
        )
}

/// One relation of the user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Friend {
    pub user_id: u64,
    pub username: String,
    pub nickname: String,
    /// `accepted`, `requested` (the user asked), `pending` (the user was
    /// asked) or `blocked` (the user blocked them).
    pub state: FriendState,
    /// The user's private name for them.
    pub remark: String,
    pub updated_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FriendPage {
    pub friends: Vec<Friend>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next` of the previous page.
    pub after: Option<u64>,
    /// 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A user's friends, requests and blocks, by user id.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/friends",
    params(("user_id" = u64, Path), ListQuery),
    responses(
        (status = 200, body = FriendPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "friends"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<FriendPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    s.logic.admin_user(user_id).await?;
    let (page, more) = friends::relations(
        &s.logic,
        &Actor::AdminAs(user_id),
        q.after.unwrap_or(0),
        limit,
    )
    .await?;
    let friends: Vec<Friend> = page
        .into_iter()
        .map(|Relation { row, user }| Friend {
            user_id: user.id,
            username: user.username,
            nickname: user.nickname,
            state: row.state,
            remark: row.remark,
            updated_at_ms: row.updated_at,
        })
        .collect();
    let next = more.then(|| friends.last().map(|f| f.user_id)).flatten();
    Ok(Json(FriendPage { friends, next }))
}

/// End a friendship, as if the user had deleted the friend.
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/friends/{friend_id}",
    params(("user_id" = u64, Path), ("friend_id" = u64, Path)),
    responses(
        (status = 204, description = "Friendship removed on both sides"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such user, or not friends", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "friends"
)]
pub async fn remove(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((user_id, friend_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    s.logic.admin_user(user_id).await?;
    friends::unfriend(&s.logic, &Actor::AdminAs(user_id), friend_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
