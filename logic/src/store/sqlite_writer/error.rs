//! The writer's errors, shaped as sqlx's.

use std::borrow::Cow;

/// A SQLite error from the writer, shaped as sqlx's so that the store
/// classifies it as it does every other: unique violations, outages
/// ([`crate::store::Outage::of`]) and retryable busy errors by their codes.
#[derive(Debug)]
pub(crate) struct WriterError {
    /// SQLite's extended result code; -1 for none.
    code: i32,
    message: String,
}

impl WriterError {
    pub(super) fn internal(message: &str) -> WriterError {
        WriterError {
            code: -1,
            message: message.to_owned(),
        }
    }

    /// SQLite's extended result code, if the error came from SQLite.
    pub(crate) fn sqlite_code(&self) -> Option<i32> {
        (self.code >= 0).then_some(self.code)
    }
}

impl From<rusqlite::Error> for WriterError {
    fn from(e: rusqlite::Error) -> WriterError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => WriterError {
                code: f.extended_code,
                message: e.to_string(),
            },
            _ => WriterError::internal(&e.to_string()),
        }
    }
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriterError {}

impl sqlx::error::DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.sqlite_code().map(|c| Cow::Owned(c.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        // SQLITE_CONSTRAINT_* extended codes (the primary code is 19).
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
