//! `/api/v1/groups/{group_id}/members`: list, add, remove, set role (owner
//! transfers the group), mute until. All with the owner's authority.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::domain::Role;
use crate::groups;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/groups/{group_id}/members", get(list).post(add))
        .route(
            "/api/v1/groups/{group_id}/members/{user_id}",
            axum::routing::delete(remove).patch(change),
        )
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: u64,
    pub username: String,
    pub nickname: String,
    /// `owner`, `admin` or `member`.
    pub role: Role,
    pub alias: String,
    /// Muted while now < this (ms since the epoch); 0 = not muted.
    pub muted_until_ms: i64,
    pub joined_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    pub members: Vec<Member>,
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMembers {
    /// Users to add (1-500).
    #[schema(min_items = 1, max_items = 500)]
    pub user_ids: Vec<u64>,
}

/// Changes to a member; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChanges {
    /// `owner` transfers the group (the old owner becomes a member).
    pub role: Option<Role>,
    /// Mute until this time (ms since the epoch); 0 unmutes.
    #[schema(minimum = 0)]
    pub muted_until_ms: Option<i64>,
}

/// Members by user id.
#[utoipa::path(
    get, path = "/api/v1/groups/{group_id}/members",
    params(("group_id" = u64, Path), ListQuery),
    responses(
        (status = 200, body = MemberPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(group_id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let owner = s.logic.group_owner(group_id).await?;
    let after = q.after.unwrap_or(0);
    let (page, more) = groups::members_page(&s.logic, &owner, group_id, after, limit).await?;
    let members: Vec<Member> = page
        .into_iter()
        .map(|groups::Member { row, user }| {
            let (username, nickname) = user.map(|u| (u.username, u.nickname)).unwrap_or_default();
            Member {
                user_id: row.user_id,
                username,
                nickname,
                role: row.role,
                alias: row.alias,
                muted_until_ms: row.muted_until,
                joined_at_ms: row.joined_at,
            }
        })
        .collect();
    let next = more.then(|| members.last().map(|m| m.user_id)).flatten();
    Ok(Json(MemberPage { members, next }))
}

/// Add members (they and the group get GROUP_MEMBERS_ADDED). Unlike
/// ADD_MEMBERS over the client protocol, they need not be friends of the
/// owner, and blocks do not refuse them.
#[utoipa::path(
    post, path = "/api/v1/groups/{group_id}/members", params(("group_id" = u64, Path)),
    request_body = NewMembers,
    responses(
        (status = 204, description = "Added"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "The group would be over its size", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn add(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(group_id): ApiPath<u64>,
    ApiJson(m): ApiJson<NewMembers>,
) -> Result<StatusCode, ApiError> {
    if m.user_ids.is_empty() || m.user_ids.len() > 500 {
        return Err(ApiError::Unprocessable(
            "user_ids must hold 1-500 ids".into(),
        ));
    }
    let owner = s.logic.group_owner(group_id).await?;
    groups::add_members(&s.logic, &owner, group_id, &m.user_ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (not the owner).
#[utoipa::path(
    delete, path = "/api/v1/groups/{group_id}/members/{user_id}",
    params(("group_id" = u64, Path), ("user_id" = u64, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "The owner cannot be removed", body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn remove(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((group_id, user_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    let owner = s.logic.group_owner(group_id).await?;
    if owner.user_id() == user_id {
        return Err(ApiError::Unprocessable(
            "the owner cannot be removed: transfer the group first".into(),
        ));
    }
    member_of(&s, group_id, user_id).await?;
    groups::remove_members(&s.logic, &owner, group_id, &[user_id]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a member's role and/or mute them.
#[utoipa::path(
    patch, path = "/api/v1/groups/{group_id}/members/{user_id}",
    params(("group_id" = u64, Path), ("user_id" = u64, Path)),
    request_body = MemberChanges,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn change(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((group_id, user_id)): ApiPath<(u64, u64)>,
    ApiJson(c): ApiJson<MemberChanges>,
) -> Result<StatusCode, ApiError> {
    let role = c.role;
    if c.muted_until_ms.is_some_and(|t| t < 0) {
        return Err(ApiError::Unprocessable(
            "muted_until_ms must be >= 0".into(),
        ));
    }
    if role.is_none() && c.muted_until_ms.is_none() {
        return Err(ApiError::Unprocessable("nothing to change".into()));
    }
    let owner = s.logic.group_owner(group_id).await?;
    member_of(&s, group_id, user_id).await?;
    if owner.user_id() == user_id && (c.muted_until_ms.is_some() || role != Some(Role::Owner)) {
        return Err(ApiError::Unprocessable(
            "the owner's role and mute cannot change: transfer the group first".into(),
        ));
    }
    if let Some(until_ms) = c.muted_until_ms {
        groups::mute_member(&s.logic, &owner, group_id, user_id, until_ms).await?;
    }
    match role {
        Some(Role::Owner) if owner.user_id() != user_id => {
            groups::transfer_owner(&s.logic, &owner, group_id, user_id).await?;
        }
        Some(r @ (Role::Member | Role::Admin)) => {
            groups::set_role(&s.logic, &owner, group_id, user_id, Some(r)).await?;
        }
        _ => {}
    }
    Ok(StatusCode::NO_CONTENT)
}

/// 404 unless `user_id` is a member of the group.
async fn member_of(s: &ApiState, group_id: u64, user_id: u64) -> Result<(), ApiError> {
    let member = s
        .logic
        .store
        .member(group_id, user_id)
        .await
        .map_err(crate::LogicError::from)?;
    member
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound("not a member".into()))
}
