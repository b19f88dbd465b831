//! `/api/v1/groups`: create, get, list, update, dismiss. Changes run with
//! the owner's authority, so members get the same events as when the
//! owner makes them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::actor::Actor;
use crate::groups::{self, NewGroupSpec};
use crate::store::groups::{GroupChanges as Changes, GroupRow};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/groups", post(create).get(list))
        .route(
            "/api/v1/groups/{group_id}",
            get(get_one).patch(update).delete(dismiss),
        )
}

/// A group.
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    pub group_id: u64,
    pub name: String,
    pub avatar_url: String,
    pub introduction: String,
    pub owner_id: u64,
    pub member_count: u32,
    pub max_members: u32,
    /// Only the owner and admins may send.
    pub muted_all: bool,
    /// Any member may add members.
    pub member_invite: bool,
    /// Any member may mention everyone (@all).
    pub member_mention_all: bool,
    pub created_at_ms: i64,
}

impl From<GroupRow> for Group {
    fn from(g: GroupRow) -> Group {
        Group {
            group_id: g.id,
            name: g.name,
            avatar_url: g.avatar_url,
            introduction: g.introduction,
            owner_id: g.owner_id,
            member_count: g.member_count,
            max_members: g.max_members,
            muted_all: g.muted_all,
            member_invite: g.member_invite,
            member_mention_all: g.member_mention_all,
            created_at_ms: g.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Becomes the owner; an active user.
    pub owner_id: u64,
    /// 1-64 characters.
    pub name: String,
    #[serde(default)]
    pub avatar_url: String,
    #[serde(default)]
    pub introduction: String,
    /// Members besides the owner: active users; one unknown id refuses
    /// the whole request (404), as over the client protocol. Unlike there,
    /// they need not be the owner's friends, and blocks do not refuse them.
    #[serde(default)]
    pub member_ids: Vec<u64>,
    #[serde(default)]
    pub member_invite: bool,
}

/// Fields to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub introduction: Option<String>,
    pub member_invite: Option<bool>,
    pub member_mention_all: Option<bool>,
    pub muted_all: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next` of the previous page.
    pub after: Option<u64>,
    /// 1-100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPage {
    pub groups: Vec<Group>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<u64>,
}

/// Create a group with an owner and members.
#[utoipa::path(
    post, path = "/api/v1/groups", request_body = NewGroup,
    responses(
        (status = 201, body = Group),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "More members than a group holds", body = ErrorBody),
        (status = 404, description = "No such owner, or no such member", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn create(
    _: Admin,
    State(s): State<ApiState>,
    ApiJson(g): ApiJson<NewGroup>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    let owner = s.logic.admin_user(g.owner_id).await?;
    if !owner.is_active() {
        return Err(ApiError::Unprocessable("the owner is disabled".into()));
    }
    let spec = NewGroupSpec {
        name: g.name,
        avatar_url: g.avatar_url,
        introduction: g.introduction,
        member_ids: g.member_ids,
        member_invite: g.member_invite,
    };
    let group = groups::create(&s.logic, &Actor::AdminAs(owner.id), spec).await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// Live groups by id.
#[utoipa::path(
    get, path = "/api/v1/groups", params(ListQuery),
    responses(
        (status = 200, body = GroupPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<GroupPage>, ApiError> {
    let limit = page_limit(q.limit, 20, 100)?;
    let rows = s
        .logic
        .store
        .groups_page(q.after.unwrap_or(0), limit + 1)
        .await
        .map_err(crate::LogicError::from)?;
    let (rows, more) = crate::paging::page(rows, limit);
    let next = more.then(|| rows.last().map(|g| g.id)).flatten();
    Ok(Json(GroupPage {
        groups: rows.into_iter().map(Group::from).collect(),
        next,
    }))
}

/// One live group.
#[utoipa::path(
    get, path = "/api/v1/groups/{group_id}", params(("group_id" = u64, Path)),
    responses(
        (status = 200, body = Group),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn get_one(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(group_id): ApiPath<u64>,
) -> Result<Json<Group>, ApiError> {
    let owner = s.logic.group_owner(group_id).await?;
    let group = groups::get(&s.logic, &owner, group_id).await?;
    Ok(Json(group.into()))
}

/// Change a group's settings (members get GROUP_UPDATED / GROUP_MUTED_ALL).
#[utoipa::path(
    patch, path = "/api/v1/groups/{group_id}", params(("group_id" = u64, Path)),
    request_body = GroupChanges,
    responses(
        (status = 200, body = Group),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn update(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(group_id): ApiPath<u64>,
    ApiJson(c): ApiJson<GroupChanges>,
) -> Result<Json<Group>, ApiError> {
    let owner = s.logic.group_owner(group_id).await?;
    let settings = c.name.is_some()
        || c.avatar_url.is_some()
        || c.introduction.is_some()
        || c.member_invite.is_some()
        || c.member_mention_all.is_some();
    let mut group = None;
    if settings {
        let changes = Changes {
            name: c.name,
            avatar_url: c.avatar_url,
            introduction: c.introduction,
            member_invite: c.member_invite,
            member_mention_all: c.member_mention_all,
            muted_all: None,
        };
        group = Some(groups::update(&s.logic, &owner, group_id, changes).await?);
    }
    if let Some(muted) = c.muted_all {
        group = Some(groups::set_muted_all(&s.logic, &owner, group_id, muted).await?);
    }
    let group = match group {
        Some(g) => g,
        None => groups::get(&s.logic, &owner, group_id).await?,
    };
    Ok(Json(group.into()))
}

/// Dismiss a group: every member gets GROUP_DISMISSED and no one can send to it.
#[utoipa::path(
    delete, path = "/api/v1/groups/{group_id}", params(("group_id" = u64, Path)),
    responses(
        (status = 204, description = "Dismissed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "groups"
)]
pub async fn dismiss(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(group_id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    let owner = s.logic.group_owner(group_id).await?;
    groups::dismiss(&s.logic, &owner, group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
