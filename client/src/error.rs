//! Client errors.

use tern_public::{Code, FrameError};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed (connect, read or write).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A frame broke the framing (e.g. longer than the maximum).
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The server answered with a non-OK code; with RATE_LIMITED it may
    /// say how long to wait before trying again.
    #[error("server replied {code}: {message}")]
    Server {
        /// The reply code; [`ClientError::code`] reads it as a [`Code`].
        code: i32,
        /// The server's explanation, for people rather than programs.
        message: String,
        /// How long to wait before trying again, if the server said.
        retry_after: Option<std::time::Duration>,
    },
    /// The connection is closed; requests in flight fail with this.
    #[error("connection closed")]
    Closed,
    /// No reply within the request timeout.
    #[error("no reply within the request timeout")]
    Timeout,
    /// TLS could not be set up (bad CA file, bad server name) or the
    /// handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The reply's payload is not the message the command answers with.
    #[error("reply does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

impl ClientError {
    /// The server's reply code, if this is a server error.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Server { code, .. } => Code::from_i32(*code),
            _ => None,
        }
    }

    /// How long the server asked to wait before trying again (RATE_LIMITED).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClientError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
