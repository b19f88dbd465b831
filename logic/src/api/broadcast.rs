//! `/api/v1/broadcast`: a live message to every signed-in connection.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, ApiJson};
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/broadcast", post(broadcast))
}

/// A live message for everyone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastMessage {
    /// Application-defined kind of content.
    #[serde(default)]
    pub content_type: u32,
    /// The content, as text.
    pub content: String,
    /// Connections per second each connect node pushes to, so a broadcast
    /// does not burst (goim's "speed"); absent: as fast as it can.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub speed: Option<u32>,
}

/// Push a live message to every signed-in connection on every node.
#[utoipa::path(
    post, path = "/api/v1/broadcast",
    request_body = BroadcastMessage,
    responses(
        (status = 202, description = "Published to every connect node"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "broadcast"
)]
pub async fn broadcast(
    _: Admin,
    State(s): State<ApiState>,
    ApiJson(m): ApiJson<BroadcastMessage>,
) -> Result<StatusCode, ApiError> {
    let speed = match m.speed {
        None => 0,
        Some(s @ 1..=1_000_000) => s,
        Some(_) => return Err(ApiError::Unprocessable("speed must be 1-1000000".into())),
    };
    s.logic
        .broadcast(m.content_type, m.content.into(), speed)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
