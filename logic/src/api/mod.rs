//! The HTTP side of a logic node: health and readiness now; the REST
//! admin API grows here (DESIGN.md "logic").

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::Logic;

/// The routes a logic node serves over HTTP.
pub fn router(logic: Arc<Logic>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(logic)
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    logic: Arc<Logic>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(logic))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// Every dependency answers: the database, presence (Redis in cluster)
/// and the bus (NATS in cluster). 503 names what does not.
async fn readyz(State(logic): State<Arc<Logic>>) -> (StatusCode, Json<serde_json::Value>) {
    let database = logic.store.ping().await.is_ok();
    let presence = logic.presence.ping().await.is_ok();
    let bus = logic.bus.is_connected();
    let ready = database && presence && bus;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "database": database,
            "presence": presence,
            "bus": bus,
        })),
    )
}
