//! `/api/v1/stats`: who is online, across all connect nodes.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Admin;
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/stats", get(stats))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeStats {
    pub node_id: String,
    /// Signed-in connections on this connect node.
    pub connections: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Signed-in connections on all connect nodes.
    pub online_connections: u64,
    /// Distinct users with at least one signed-in connection.
    pub online_users: u64,
    /// Connect nodes serving at least one signed-in connection.
    pub nodes: Vec<NodeStats>,
}

/// Online connections and users, in total and per connect node.
#[utoipa::path(
    get, path = "/api/v1/stats",
    responses(
        (status = 200, body = Stats),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "stats"
)]
pub async fn stats(_: Admin, State(s): State<ApiState>) -> Result<Json<Stats>, ApiError> {
    let online = s
        .logic
        .presence
        .online_stats()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(Stats {
        online_connections: online.nodes.iter().map(|(_, n)| n).sum(),
        online_users: online.users,
        nodes: online
            .nodes
            .into_iter()
            .map(|(node_id, connections)| NodeStats {
                node_id,
                connections,
            })
            .collect(),
    }))
}
