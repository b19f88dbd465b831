//! Bus errors. A transport failure keeps the error that caused it, so a
//! caller can tell a refused connection from a bad subject.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why a bus operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// No answer, or the transport did not take the message, in time.
    #[error("bus request timed out")]
    Timeout,
    /// A request found nobody subscribed to its subject.
    #[error("no subscriber for subject {0}")]
    NoResponders(String),
    /// The bus, or the subscription awaited, is gone.
    #[error("bus closed")]
    Closed,
    /// The transport under the bus failed (cluster mode: the NATS
    /// connection); the cause is its source.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A failure of the transport under a bus: what the bus was doing, and the
/// transport's own error as [`Error::source`].
///
/// The message also ends with the cause, because tern logs errors by their
/// `Display` alone.
#[derive(Debug, Clone)]
pub struct TransportError {
    what: String,
    // Shared, not boxed, so that `BusError` stays `Clone`.
    source: Arc<dyn Error + Send + Sync>,
}

impl TransportError {
    /// `what` failed (e.g. "NATS publish") because of `source`; for [`Bus`]
    /// implementations.
    ///
    /// [`Bus`]: super::Bus
    pub fn new(what: impl Into<String>, source: impl Error + Send + Sync + 'static) -> Self {
        TransportError {
            what: what.into(),
            source: Arc::new(source),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bus transport: {}: {}", self.what, self.source)
    }
}

impl Error for TransportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Equal when it is the same failure: a clone of one error, not another
/// error with the same text.
impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source) && self.what == other.what
    }
}

impl Eq for TransportError {}
