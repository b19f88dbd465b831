//! Errors of command handlers, classified into reply codes in one place.

use std::time::Duration;

use tern_public::Code;
use tracing::{error, warn};

use crate::store::{Outage, StoreError};

/// What a command handler can fail with. The text of the client-facing
/// variants is shown to the client; internal causes are logged, not sent.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFriends(&'static str),
    #[error("{0}")]
    Blocked(&'static str),
    #[error("{0}")]
    Muted(&'static str),
    /// The before-send hook refused the message, with its own code and
    /// reason (already cut to a bounded length).
    #[error("{}", if reason.is_empty() { "rejected" } else { reason })]
    Rejected { code: u32, reason: String },
    /// Over a budget; the client should wait `retry_after` before trying again.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
    /// An internal failure already logged where it was handled (a batch
    /// commit that failed for many sends at once): answered as internal,
    /// not logged again.
    #[error("internal: {0}")]
    Logged(&'static str),
    /// A shared service (presence in Redis) failed; the client may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database cannot take writes now (a full disk, read-only, a lost
    /// connection), already logged where it was seen: answered UNAVAILABLE,
    /// not logged again for each request.
    #[error("database unavailable: {0}")]
    StoreDown(Outage),
}

/// How long a client should wait before retrying after UNAVAILABLE: long
/// enough not to hammer a database that is out of space, short enough that
/// service resumes within seconds of the cause going away.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

impl LogicError {
    pub fn bad_request(msg: impl Into<String>) -> LogicError {
        LogicError::BadRequest(msg.into())
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> LogicError {
        LogicError::RateLimited {
            message: message.into(),
            retry_after,
        }
    }

    /// How long the client should wait before trying again, when this says.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LogicError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ if self.code() == Code::Unavailable => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// Records a store failure that is an outage in `health` (logged once
    /// there, counted) and turns it into [`LogicError::StoreDown`], so that
    /// it is not logged again for each request; other errors pass.
    pub(crate) fn note_outage(self, health: &crate::store::Health) -> LogicError {
        match self {
            LogicError::Store(e) => match health.failed(&e) {
                Some(o) => LogicError::StoreDown(o),
                None => LogicError::Store(e),
            },
            other => other,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            LogicError::BadRequest(_) => Code::BadRequest,
            LogicError::Unauthenticated(_) => Code::Unauthenticated,
            LogicError::Forbidden(_) => Code::Forbidden,
            LogicError::NotFound(_) | LogicError::Store(StoreError::NotFound) => Code::NotFound,
            LogicError::Conflict(_) | LogicError::Store(StoreError::Conflict) => Code::Conflict,
            LogicError::TooLarge(_) => Code::TooLarge,
            LogicError::NotFriends(_) => Code::NotFriends,
            LogicError::Blocked(_) => Code::Blocked,
            LogicError::Muted(_) => Code::Muted,
            LogicError::Rejected { .. } => Code::Rejected,
            LogicError::RateLimited { .. } => Code::RateLimited,
            LogicError::Store(e) if e.outage().is_some() => Code::Unavailable,
            LogicError::Store(_) | LogicError::Internal(_) | LogicError::Logged(_) => {
                Code::Internal
            }
            LogicError::Unavailable(_) | LogicError::StoreDown(_) => Code::Unavailable,
        }
    }

    /// The message for the client: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self.code() {
            Code::Internal if matches!(self, LogicError::Logged(_)) => "internal error".to_owned(),
            Code::Internal => {
                error!(error = %self, "internal error");
                "internal error".to_owned()
            }
            Code::Unavailable if matches!(self, LogicError::StoreDown(_)) => {
                "service unavailable, retry".to_owned()
            }
            Code::Unavailable => {
                warn!(error = %self, "dependency unavailable");
                "service unavailable, retry".to_owned()
            }
            _ => self.to_string(),
        }
    }
}

pub type Result<T, E = LogicError> = std::result::Result<T, E>;
