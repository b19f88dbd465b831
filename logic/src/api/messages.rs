//! `/api/v1/messages`: send as the system or on behalf of a user (the same
//! store path and pushes as a client send, idempotent by client_msg_id),
//! read a user's list, recall.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use tern_public::proto::client::{ConvType, Message as ProtoMessage, MessageStatus};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::actor::Actor;
use crate::admin::AdminSend;
use crate::messages::Draft;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/messages", post(send))
        .route("/api/v1/messages/{message_id}", delete(recall))
        .route("/api/v1/users/{user_id}/messages", get(list))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    User,
    Group,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Send on behalf of this user (friendship and group rules apply as to
    /// their own sends); absent: from the system (sender id 0).
    pub from: Option<u64>,
    /// `user` or `group`.
    pub conv_type: Target,
    /// The user or group id.
    pub to: u64,
    /// 1-999 (1 text; 100-999 app-defined).
    #[schema(minimum = 1, maximum = 999)]
    pub content_type: u32,
    /// The content, as text.
    pub content: String,
    /// Mentioned user ids (group messages).
    #[serde(default)]
    pub mentions: Vec<u64>,
    /// Up to 64 bytes: a repeat with the same id (per sender) answers the
    /// first send and stores nothing.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub client_msg_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// 32 hex digits (a UUIDv7).
    pub message_id: String,
    /// The seq in the sender's own list; 0 for system messages.
    pub seq: u64,
    pub created_at_ms: i64,
}

/// One entry of a user's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message_id: String,
    pub seq: u64,
    /// 0 for system messages.
    pub sender_id: u64,
    pub sender_device_id: u64,
    /// `user`, `group` or `system`.
    pub conv_type: String,
    /// The other party (user), the group, or 0 (system).
    pub conv_id: u64,
    /// 1-999 chat content; 1000 and above: a system event (protobuf).
    pub content_type: u32,
    /// The content when it is UTF-8 text.
    pub content: Option<String>,
    /// The content in hex when it is not UTF-8 text.
    pub content_hex: Option<String>,
    pub mentions: Vec<u64>,
    pub client_msg_id: String,
    /// `normal` or `recalled`.
    pub status: String,
    pub created_at_ms: i64,
}

impl From<ProtoMessage> for Message {
    fn from(m: ProtoMessage) -> Message {
        let (content, content_hex) = match String::from_utf8(m.content.to_vec()) {
            Ok(text) => (Some(text), None),
            Err(_) => (None, Some(hex::encode(&m.content))),
        };
        let conv_type = match ConvType::try_from(m.conv_type) {
            Ok(ConvType::Group) => "group",
            Ok(ConvType::System) => "system",
            _ => "user",
        };
        let status = match MessageStatus::try_from(m.status) {
            Ok(MessageStatus::Recalled) => "recalled",
            _ => "normal",
        };
        Message {
            message_id: hex::encode(&m.id),
            seq: m.seq,
            sender_id: m.sender_id,
            sender_device_id: m.sender_device_id,
            conv_type: conv_type.to_owned(),
            conv_id: m.conv_id,
            content_type: m.content_type,
            content,
            content_hex,
            mentions: m.mentions,
            client_msg_id: m.client_msg_id,
            status: status.to_owned(),
            created_at_ms: m.created_at_ms,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Entries after this seq (default 0: from the start).
    pub after_seq: Option<u64>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Ascending seq.
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// Send a message as the system or on behalf of a user.
#[utoipa::path(
    post, path = "/api/v1/messages", request_body = NewMessage,
    responses(
        (status = 200, description = "Stored (or stored before under this client_msg_id)", body = Sent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "The sender may not send there", body = ErrorBody),
        (status = 404, description = "No such sender, user or group", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Invalid, or refused by the before-send hook (code `rejected`)", body = ErrorBody),
        (status = 503, description = "The database, or a before-send hook that fails closed, cannot serve now", body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "messages"
)]
pub async fn send(
    _: Admin,
    State(s): State<ApiState>,
    ApiJson(m): ApiJson<NewMessage>,
) -> Result<Json<Sent>, ApiError> {
    let sent = s
        .logic
        .admin_send(AdminSend {
            from: m.from.map_or(Actor::System, Actor::AdminAs),
            draft: Draft {
                conv_type: match m.conv_type {
                    Target::User => ConvType::User,
                    Target::Group => ConvType::Group,
                } as i32,
                to: m.to,
                content_type: m.content_type,
                content: m.content.into(),
                mentions: m.mentions,
                client_msg_id: m.client_msg_id,
            },
        })
        .await?;
    Ok(Json(Sent {
        message_id: hex::encode(&sent.message_id),
        seq: sent.seq,
        created_at_ms: sent.created_at,
    }))
}

/// A page of a user's list, as its devices sync it.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/messages",
    params(("user_id" = u64, Path), ListQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "messages"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let (messages, has_more) = s
        .logic
        .admin_list(user_id, q.after_seq.unwrap_or(0), limit)
        .await?;
    Ok(Json(MessagePage {
        messages: messages.into_iter().map(Message::from).collect(),
        has_more,
    }))
}

/// Recall a message at any age: its content is cleared and every list that
/// holds it gets MESSAGE_RECALLED.
#[utoipa::path(
    delete, path = "/api/v1/messages/{message_id}",
    params(("message_id" = String, Path, description = "32 hex digits", pattern = r"^[0-9a-fA-F]{32}$")),
    responses(
        (status = 204, description = "Recalled (or already recalled)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A system event", body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "messages"
)]
pub async fn recall(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(message_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = hex::decode(&message_id)
        .ok()
        .filter(|id| id.len() == 16)
        .ok_or_else(|| ApiError::BadRequest("message_id must be 32 hex digits".into()))?;
    s.logic.admin_recall(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
