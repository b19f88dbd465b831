//! Why a client connection ends, and what that means for the last bytes:
//! whether what is queued (a KICKED) still goes out, whether the client is
//! told why and so is given time to read it, and the `reason` label the
//! close is counted under. Every close of a connection, served or refused
//! at the door, is one [`Close`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use tern_public::proto::client::KickReason;

/// Why a client connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The client closed its side.
    ClientClosed,
    /// Reading from the client failed.
    ReadError,
    /// Writing to the client failed.
    WriteError,
    /// A write could not progress for the write timeout.
    WriteTimeout,
    /// The connection's queue was full: its device resyncs on reconnect.
    SlowConsumer,
    /// Closed from outside (signed in elsewhere, token revoked, drain…):
    /// the client gets a KICKED with this reason.
    Kicked(KickReason),
    /// The client sent a frame over the limit; it got a TOO_LARGE reply.
    FrameTooLarge,
    /// The client kept going over its frame budget.
    Flooding,
    /// A request task of the connection failed.
    InternalError,
    /// Signed in, then silent for three heartbeat intervals.
    HeartbeatTimeout,
    /// Did not sign in in time.
    HandshakeTimeout,
    /// Refused at accept: the node is at `max_connections`.
    NodeFull,
    /// Refused at accept: its address holds `max_connections_per_ip`.
    TooManyFromAddress,
    /// The TLS handshake failed or timed out.
    TlsHandshake,
}

impl Close {
    /// The `reason` label of `tern_connections_closed_total`, in snake_case.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Close::ClientClosed => "client_closed",
            Close::ReadError => "read_error",
            Close::WriteError => "write_error",
            Close::WriteTimeout => "write_timeout",
            Close::SlowConsumer => "slow_consumer",
            Close::Kicked(_) => "kicked",
            Close::FrameTooLarge => "frame_too_large",
            Close::Flooding => "flooding",
            Close::InternalError => "internal_error",
            Close::HeartbeatTimeout => "heartbeat_timeout",
            Close::HandshakeTimeout => "handshake_timeout",
            Close::NodeFull => "node_full",
            Close::TooManyFromAddress => "too_many_from_address",
            Close::TlsHandshake => "tls_handshake",
        }
    }

    /// Whether what is still queued for the client (a KICKED, say) is
    /// written before the close: not when the peer is the reason nothing
    /// can be written.
    pub(crate) fn flushes_queue(self) -> bool {
        !matches!(
            self,
            Close::SlowConsumer | Close::WriteTimeout | Close::WriteError
        )
    }

    /// Whether the client was told why (a KICKED, or a REPLY with the
    /// reason) and is still there to read it, so the close lingers until
    /// it has.
    pub(crate) fn client_told_why(self) -> bool {
        matches!(
            self,
            Close::Kicked(_)
                | Close::FrameTooLarge
                | Close::Flooding
                | Close::InternalError
                | Close::NodeFull
                | Close::TooManyFromAddress
        )
    }

    /// The reason of the KICKED frame the client gets, if it gets one.
    pub(crate) fn kick_reason(self) -> Option<KickReason> {
        match self {
            Close::Kicked(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Longest wait for a client to close its side after ours is shut.
const LINGER: Duration = Duration::from_secs(1);

/// Reads and discards what the client still sends, until it closes its
/// side or [`LINGER`] passes. Closing a socket with unread input makes the
/// kernel answer with a reset, which throws away what we wrote last and
/// the client has not read yet (the KICKED it must see to reconnect
/// elsewhere); after our FIN, a client that got the message closes too.
pub(crate) async fn linger<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = [0u8; 512];
    let until_eof = async {
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, until_eof).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kick_flushes_and_says_why_a_slow_consumer_does_neither() {
        let kicked = Close::Kicked(KickReason::Draining);
        assert!(kicked.flushes_queue() && kicked.client_told_why());
        assert_eq!(kicked.kick_reason(), Some(KickReason::Draining));
        let slow = Close::SlowConsumer;
        assert!(!slow.flushes_queue() && !slow.client_told_why());
        assert_eq!(slow.kick_reason(), None);
    }
}
