//! `/api/v1/broadcast`: a live message to every signed-in connection.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, ApiJson};
use super::rooms::LiveMessage;
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/broadcast", post(broadcast))
}

/// Push a live message to every signed-in connection on every node.
#[utoipa::path(
    post, path = "/api/v1/broadcast",
    request_body = LiveMessage,
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
    ApiJson(m): ApiJson<LiveMessage>,
) -> Result<StatusCode, ApiError> {
    s.logic.broadcast(m.content_type, m.content.into()).await?;
    Ok(StatusCode::ACCEPTED)
}
