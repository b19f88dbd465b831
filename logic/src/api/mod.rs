//! The HTTP side of a logic node: `/healthz`, `/readyz`, and the admin API
//! under `/api/v1` (JSON, `Authorization: Bearer <admin token>`), one module
//! per resource with its own `router()`, described by an OpenAPI document
//! at `/api/v1/openapi.json`. Bounded by a body limit, a request timeout and
//! a concurrency limit; one trace span per request.

mod broadcast;
mod conversations;
mod devices;
mod error;
mod extract;
mod friends;
mod groups;
mod members;
mod messages;
mod rooms;
mod stats;
mod users;
mod webhooks;

pub use error::{ApiError, ErrorBody};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::BoxError;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::limit::ConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use tern_public::http::HttpConfig;

use crate::Logic;
use extract::Admin;

/// Largest request body the API reads.
const MAX_BODY: usize = 256 * 1024;
/// Admin requests handled at once by this node; more wait.
const MAX_CONCURRENT: usize = 256;
/// Longest an admin request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub logic: Arc<Logic>,
    /// `None`: no token configured, every `/api/v1` route answers 401.
    pub admin_token: Option<Arc<str>>,
    /// What `/metrics` shows.
    pub metrics: Arc<Registry>,
}

impl ApiState {
    /// The state for `logic`; `/metrics` shows its metrics and whatever
    /// `more` registers (the connect node of a standalone process).
    pub fn new(
        logic: Arc<Logic>,
        admin_token: Option<Arc<str>>,
        more: impl FnOnce(&mut Registry),
    ) -> ApiState {
        let mut registry = Registry::default();
        logic.register_metrics(&mut registry);
        more(&mut registry);
        ApiState {
            logic,
            admin_token,
            metrics: Arc::new(registry),
        }
    }
}

impl FromRef<ApiState> for Arc<Logic> {
    fn from_ref(s: &ApiState) -> Arc<Logic> {
        s.logic.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tern admin API", description = "Manage a tern chat server."),
    paths(
        users::create, users::list, users::get_one, users::update, users::set_password,
        users::disable, users::enable, users::remove, devices::devices, devices::kick_device,
        devices::push_token, devices::remove_push_token,
        friends::list, friends::remove,
        groups::create, groups::list, groups::get_one, groups::update, groups::dismiss,
        members::list, members::add, members::remove, members::change,
        messages::send, messages::list, messages::recall,
        conversations::list, conversations::history,
        rooms::push, rooms::online, rooms::top,
        broadcast::broadcast,
        stats::stats,
        webhooks::status, webhooks::rotate,
    ),
    components(schemas(
        ErrorBody, error::ErrorDetail,
        users::User, users::NewUser, users::UserChanges, users::NewPassword, users::UserPage,
        devices::Device, devices::DeviceList, devices::PushToken,
        friends::Friend, friends::FriendPage,
        groups::Group, groups::NewGroup, groups::GroupChanges, groups::GroupPage,
        members::Member, members::MemberPage, members::NewMembers, members::MemberChanges,
        crate::domain::Role, crate::domain::FriendState, crate::domain::UserStatus,
        crate::domain::PushProvider,
        messages::Target, messages::NewMessage, messages::Sent, messages::Message,
        messages::MessagePage,
        conversations::ConvKind, conversations::Conversation, conversations::ConversationPage,
        conversations::HistoryPage,
        rooms::LiveMessage, rooms::RoomOnline, rooms::TopRooms, broadcast::BroadcastMessage,
        stats::Stats, stats::NodeStats,
        webhooks::WebhookStatus, webhooks::PushStatus, webhooks::AfterSendStatus,
        webhooks::RotatedSecret,
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3 document of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route a logic node serves over HTTP.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .merge(users::router())
        .merge(devices::router())
        .merge(webhooks::router())
        .merge(friends::router())
        .merge(groups::router())
        .merge(members::router())
        .merge(messages::router())
        .merge(conversations::router())
        .merge(rooms::router())
        .merge(stats::router())
        .merge(broadcast::router())
        .route("/api/v1/openapi.json", get(openapi_json));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            error::record_outages,
        ))
        // Read by the JSON extractor, so an oversized body answers 413 in
        // the API's error format.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::Unavailable("request timed out".into())
                }))
                .timeout(REQUEST_TIMEOUT)
                .layer(ConcurrencyLimitLayer::new(MAX_CONCURRENT)),
        )
        .with_state(state)
}

/// Serves [`router`] on `listener` within the bounds of `http` (header and
/// idle timeouts, a connection limit) until `shutdown` resolves, then gives
/// requests in flight `http.shutdown_grace` to finish.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    http: HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    tern_public::http::serve(listener, router(state), http, shutdown).await
}

async fn openapi_json(_: Admin) -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Prometheus text (OpenMetrics) of everything registered.
async fn metrics(State(s): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    s.logic.refresh_metrics();
    encode_metrics(&s.metrics)
}

fn encode_metrics(registry: &Registry) -> Result<impl IntoResponse, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// Every dependency answers: the database, presence (Redis in cluster)
/// and the bus (NATS in cluster). 503 names what does not.
/// 200 when this node can serve: its database takes a write (see
/// `Store::readiness`), its presence store answers and its bus is
/// connected; else 503, with each failing part's cause under `causes`, in
/// words without internals (those go to the log).
async fn readyz(State(logic): State<Arc<Logic>>) -> (StatusCode, Json<serde_json::Value>) {
    let mut causes = serde_json::Map::new();
    if let Err(cause) = logic.store.readiness().await {
        causes.insert("database".into(), cause.into());
    }
    if let Err(e) = logic.presence.ping().await {
        tracing::warn!(error = %e, "readiness: presence does not answer");
        causes.insert("presence".into(), "presence does not answer".into());
    }
    if !logic.bus.is_connected() {
        causes.insert("bus".into(), "not connected".into());
    }
    let ready = causes.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "database": !causes.contains_key("database"),
            "presence": !causes.contains_key("presence"),
            "bus": !causes.contains_key("bus"),
            "causes": causes,
        })),
    )
}

#[cfg(test)]
mod tests;
