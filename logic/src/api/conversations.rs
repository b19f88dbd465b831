//! `/api/v1/users/{user_id}/conversations`: a user's conversation index and
//! one conversation's history, as the user's devices read them
//! (docs/protocol.md "Conversations").

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use tern_public::proto::client::{self as pb, ConvHistoryRequest, ConvListRequest, ConvType};

use super::error::{ApiError, ErrorBody};
use super::extract::{page_limit, Admin, ApiPath, ApiQuery};
use super::messages::Message;
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users/{user_id}/conversations", get(list))
        .route(
            "/api/v1/users/{user_id}/conversations/{conv_type}/{conv_id}/messages",
            get(history),
        )
}

/// The kind of a conversation.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConvKind {
    User,
    Group,
    System,
}

impl ConvKind {
    fn wire(self) -> i32 {
        let conv_type = match self {
            ConvKind::User => ConvType::User,
            ConvKind::Group => ConvType::Group,
            ConvKind::System => ConvType::System,
        };
        conv_type as i32
    }
}

/// One conversation of a user's index.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    /// `user`, `group` or `system`.
    pub conv_type: String,
    /// The other party (user), the group, or as the system entries say.
    pub conv_id: u64,
    /// The seq of its newest entry in the user's list.
    pub last_seq: u64,
    /// The seq of the newest list entry reflected here.
    pub change_seq: u64,
    pub read_seq: u64,
    /// User conversations: how far the other party has read, in this list's seqs.
    pub peer_read_seq: u64,
    /// Entries after read_seq that count as unread.
    pub unread: u64,
    /// Of those, the ones that mention the user.
    pub mentions: u64,
    pub pinned: bool,
    pub muted: bool,
    pub hidden: bool,
    /// The entry at last_seq.
    pub last_message: Option<Message>,
}

impl From<pb::Conversation> for Conversation {
    fn from(c: pb::Conversation) -> Conversation {
        let conv_type = match ConvType::try_from(c.conv_type) {
            Ok(ConvType::Group) => "group",
            Ok(ConvType::System) => "system",
            _ => "user",
        };
        Conversation {
            conv_type: conv_type.to_owned(),
            conv_id: c.conv_id,
            last_seq: c.last_seq,
            change_seq: c.change_seq,
            read_seq: c.read_seq,
            peer_read_seq: c.peer_read_seq,
            unread: c.unread,
            mentions: c.mentions,
            pinned: c.pinned,
            muted: c.muted,
            hidden: c.hidden,
            last_message: c.last_message.map(Message::from),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// The last conversation of the previous page: its `pinned`.
    pub after_pinned: Option<bool>,
    /// The last conversation of the previous page: its `last_seq` (absent: the first page).
    pub after_last_seq: Option<u64>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    /// Pinned first, then by newest entry; hidden conversations are left out.
    pub conversations: Vec<Conversation>,
    pub has_more: bool,
    /// The head of the user's list, read before the page.
    pub max_seq: u64,
    /// Unread summed over the conversations that are not muted.
    pub total_unread: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Entries below this seq, which is an entry of the conversation (absent: from the newest).
    pub before_seq: Option<u64>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Descending seq.
    pub messages: Vec<Message>,
    /// The before_seq of the next page; 0 when this page reached the first entry.
    pub next_before_seq: u64,
}

/// A page of a user's conversations, as CONV_LIST answers it.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/conversations",
    params(("user_id" = u64, Path), ConversationQuery),
    responses(
        (status = 200, body = ConversationPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "conversations"
)]
pub async fn list(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath(user_id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let req = ConvListRequest {
        limit,
        after_pinned: q.after_pinned.unwrap_or(false),
        after_last_seq: q.after_last_seq.unwrap_or(0),
    };
    let page = s.logic.admin_conversations(user_id, req).await?;
    Ok(Json(ConversationPage {
        conversations: page.conversations.into_iter().map(Into::into).collect(),
        has_more: page.has_more,
        max_seq: page.max_seq,
        total_unread: page.total_unread,
    }))
}

/// A page of one conversation of a user's, newest first, as CONV_HISTORY answers it.
#[utoipa::path(
    get, path = "/api/v1/users/{user_id}/conversations/{conv_type}/{conv_id}/messages",
    params(
        ("user_id" = u64, Path),
        ("conv_type" = ConvKind, Path, description = "user, group or system"),
        ("conv_id" = u64, Path),
        HistoryQuery,
    ),
    responses(
        (status = 200, body = HistoryPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "before_seq is not an entry of this conversation", body = ErrorBody),
    ),
    security(("bearer" = [])), tag = "conversations"
)]
pub async fn history(
    _: Admin,
    State(s): State<ApiState>,
    ApiPath((user_id, conv_type, conv_id)): ApiPath<(u64, ConvKind, u64)>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = page_limit(q.limit, 50, 200)?;
    let req = ConvHistoryRequest {
        conv_type: conv_type.wire(),
        conv_id,
        before_seq: q.before_seq.unwrap_or(0),
        limit,
    };
    let page = s.logic.admin_history(user_id, req).await?;
    Ok(Json(HistoryPage {
        messages: page.messages.into_iter().map(Message::from).collect(),
        next_before_seq: page.next_before_seq,
    }))
}
