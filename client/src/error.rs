//! Client errors.

use bytes::Bytes;
use prost::Message as _;

use tern_public::proto::client::SendRejected;
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
    /// say how long to wait before trying again, and with REJECTED the
    /// payload says why ([`ClientError::send_rejected`]).
    #[error("server replied {code}: {message}")]
    Server {
        /// The reply code; [`ClientError::code`] reads it as a [`Code`].
        code: i32,
        /// The server's explanation, for people rather than programs.
        message: String,
        /// How long to wait before trying again, if the server said.
        retry_after: Option<std::time::Duration>,
        /// The reply's payload: empty, except for the codes that carry
        /// one (REJECTED: a `SendRejected`).
        payload: Bytes,
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

    /// The payload of a server error reply (empty for most codes).
    pub fn payload(&self) -> Option<&Bytes> {
        match self {
            ClientError::Server { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// Why the server's moderation hook refused a SEND: its own code and
    /// reason, when this is a REJECTED answer.
    pub fn send_rejected(&self) -> Option<SendRejected> {
        match self {
            ClientError::Server { code, payload, .. } if *code == Code::Rejected.as_i32() => {
                Some(SendRejected::decode(payload.clone()).unwrap_or_default())
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: Code, payload: Bytes) -> ClientError {
        ClientError::Server {
            code: code.as_i32(),
            message: "m".into(),
            retry_after: None,
            payload,
        }
    }

    #[test]
    fn a_rejected_send_says_the_hooks_code_and_reason() {
        let why = SendRejected {
            code: 42,
            reason: "no links".into(),
        };
        let e = server(Code::Rejected, why.encode_to_vec().into());
        assert_eq!(e.code(), Some(Code::Rejected));
        assert_eq!(e.send_rejected(), Some(why));
        // A REJECTED reply whose payload is missing still says it was one.
        let bare = server(Code::Rejected, Bytes::new());
        assert_eq!(bare.send_rejected(), Some(SendRejected::default()));
        assert_eq!(server(Code::Forbidden, Bytes::new()).send_rejected(), None);
        assert_eq!(ClientError::Closed.send_rejected(), None);
        assert_eq!(ClientError::Closed.payload(), None);
    }
}
