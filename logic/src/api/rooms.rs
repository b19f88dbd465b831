//! `/api/v1/rooms`: push to a room, a room's online count, the top rooms.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, ApiJson};
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/rooms", get(top))
        .route("/api/v1/rooms/{room_id}", get(online))
        .route("/api/v1/rooms/{room_id}/messages", post(push))
}

/// A live message: not stored, pushed as ROOM_PUSH.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveMessage {
    /// Application-defined kind of content.
    #[serde(default)]
    pub content_type: u32,
    /// The content, as text.
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomOnline {
    pub room_id: String,
    /// Connections in the room across all connect nodes.
    pub online: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopRooms {
    pub rooms: Vec<RoomOnline>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    /// How many rooms, 1-100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Push a live message to every member of a room.
#[utoipa::path(
    post, path = "/api/v1/rooms/{room_id}/messages",
    params(("room_id" = String, Path, description = "1-64 of a-z A-Z 0-9 _ -", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    request_body = LiveMessage,
    responses(
        (status = 202, description = "Published to the room's connect nodes"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "rooms"
)]
pub async fn push(
    _: Admin,
    State(s): State<ApiState>,
    Path(room_id): Path<String>,
    ApiJson(m): ApiJson<LiveMessage>,
) -> Result<StatusCode, ApiError> {
    s.logic
        .room_push(&room_id, m.content_type, m.content.into())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Connections in a room across all connect nodes.
#[utoipa::path(
    get, path = "/api/v1/rooms/{room_id}",
    params(("room_id" = String, Path, description = "1-64 of a-z A-Z 0-9 _ -", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, body = RoomOnline),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "rooms"
)]
pub async fn online(
    _: Admin,
    State(s): State<ApiState>,
    Path(room_id): Path<String>,
) -> Result<Json<RoomOnline>, ApiError> {
    let online = s.logic.room_online(&room_id).await?;
    Ok(Json(RoomOnline { room_id, online }))
}

/// The rooms with the most connections, most first.
#[utoipa::path(
    get, path = "/api/v1/rooms",
    params(TopQuery),
    responses(
        (status = 200, body = TopRooms),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "rooms"
)]
pub async fn top(
    _: Admin,
    State(s): State<ApiState>,
    q: Result<Query<TopQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TopRooms>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Unprocessable("limit must be 1-100".into()));
    }
    let rooms = s.logic.top_rooms(limit as usize).await?;
    Ok(Json(TopRooms {
        rooms: rooms
            .into_iter()
            .map(|(room_id, online)| RoomOnline { room_id, online })
            .collect(),
    }))
}
