//! The one error type of the admin API: every failure becomes
//! `{"error": {"code": "...", "message": "..."}}` with its HTTP status.
//! 5xx bodies never carry internals; those go to the log.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracing::{error, warn};
use utoipa::ToSchema;

use crate::error::LogicError;
use crate::store::{Outage, StoreError};
use crate::Logic;

/// A failed admin request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The before-send hook refused a message the admin API sent.
    #[error("rejected by the before-send hook (code {code}): {reason}")]
    Rejected { code: u32, reason: String },
    #[error("{0}")]
    RateLimited(String, std::time::Duration),
    #[error("internal: {0}")]
    Internal(String),
    /// An internal failure already logged where it was handled (a failed
    /// batch commit logs once for all its sends).
    #[error("internal: {0}")]
    Logged(&'static str),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database cannot serve: answered 503 like [`ApiError::Unavailable`],
    /// but logged and counted once by the store's health, not per request.
    /// `detail` is the store's error when the health has not seen it yet;
    /// [`record_outages`] hands it over.
    #[error("unavailable: database unavailable: {outage}")]
    DatabaseDown {
        outage: Outage,
        detail: Option<String>,
    },
}

/// An outage an answer carries to [`record_outages`].
#[derive(Clone, Debug)]
struct Unrecorded(Outage, String);

/// Hands the outage of a 503 answer to the store's health, which counts it
/// (`tern_store_failures_total`) and logs it once when it begins, as it
/// does for client commands.
pub(super) async fn record_outages(
    State(logic): State<Arc<Logic>>,
    mut response: Response,
) -> Response {
    if let Some(Unrecorded(outage, detail)) = response.extensions_mut().remove() {
        logic.store.health().record(outage, detail);
    }
    response
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: bad_request, unauthorized, forbidden, not_found,
    /// method_not_allowed, conflict, too_large, unprocessable, rejected
    /// (by the before-send hook), rate_limited, internal, unavailable.
    pub code: String,
    /// For people; never internals.
    pub message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Rejected { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "rejected"),
            ApiError::RateLimited(..) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Internal(_) | ApiError::Logged(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Unavailable(_) | ApiError::DatabaseDown { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(_) => {
                error!(error = %self, "admin API internal error");
                "internal error".to_owned()
            }
            ApiError::Logged(_) => "internal error".to_owned(),
            ApiError::Unavailable(_) => {
                warn!(error = %self, "admin API dependency unavailable");
                "service unavailable, retry".to_owned()
            }
            ApiError::DatabaseDown { .. } => "service unavailable, retry".to_owned(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let wait = match &self {
            ApiError::RateLimited(_, wait) => Some(*wait),
            ApiError::Unavailable(_) | ApiError::DatabaseDown { .. } => {
                Some(crate::error::UNAVAILABLE_RETRY_AFTER)
            }
            _ => None,
        };
        if let Some(wait) = wait {
            // Retry-After is in whole seconds; round up so a client that
            // obeys it is not refused again.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if let ApiError::DatabaseDown {
            outage,
            detail: Some(detail),
        } = self
        {
            response.extensions_mut().insert(Unrecorded(outage, detail));
        }
        response
    }
}

impl From<LogicError> for ApiError {
    fn from(e: LogicError) -> ApiError {
        match e {
            LogicError::BadRequest(m) => ApiError::Unprocessable(m),
            LogicError::Unauthenticated(m) => ApiError::Forbidden(m.into()),
            LogicError::Forbidden(m) | LogicError::NotFriends(m) | LogicError::Blocked(m) => {
                ApiError::Forbidden(m.into())
            }
            LogicError::Muted(m) => ApiError::Forbidden(m.into()),
            LogicError::Rejected { code, reason } => ApiError::Rejected { code, reason },
            LogicError::RateLimited {
                message,
                retry_after,
            } => ApiError::RateLimited(message, retry_after),
            LogicError::NotFound(m) => ApiError::NotFound(m.into()),
            LogicError::Conflict(m) => ApiError::Conflict(m.into()),
            LogicError::TooLarge(m) => ApiError::TooLarge(m),
            LogicError::Store(StoreError::NotFound) => ApiError::NotFound("not found".into()),
            LogicError::Store(StoreError::Conflict) => ApiError::Conflict("already exists".into()),
            LogicError::Store(e) => match e.outage() {
                Some(outage) => ApiError::DatabaseDown {
                    outage,
                    detail: Some(e.to_string()),
                },
                None => ApiError::Internal(e.to_string()),
            },
            // Already recorded where it was turned into StoreDown.
            LogicError::StoreDown(outage) => ApiError::DatabaseDown {
                outage,
                detail: None,
            },
            LogicError::Internal(m) => ApiError::Internal(m),
            LogicError::Logged(m) => ApiError::Logged(m),
            LogicError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            // Well-formed JSON of the wrong shape or with values out of range.
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::BytesRejection(e) => {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge("request body too large".into())
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}
