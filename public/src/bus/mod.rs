//! The message bus between connect and logic nodes (DESIGN.md "Bus").
//!
//! The trait is shaped after NATS core: subjects, publish, request/reply via
//! a reply subject, and queue groups (each message of a subject goes to every
//! plain subscriber and to exactly one member of each queue group). The
//! in-process [`MemoryBus`] serves standalone mode; the NATS implementation
//! serves cluster mode. Callers never know which one they hold.

mod memory;
mod nats;
mod subjects;

pub use memory::MemoryBus;
pub use nats::{NatsBus, NatsOptions};
pub use subjects::{Subjects, LOGIC_QUEUE};

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// One message received from a subscription.
#[derive(Debug, Clone)]
pub struct BusMessage {
    pub subject: String,
    pub payload: Bytes,
    /// Where to publish the answer, when the sender used [`Bus::request`].
    pub reply: Option<String>,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus request timed out")]
    Timeout,
    #[error("no subscriber for subject {0}")]
    NoResponders(String),
    #[error("bus closed")]
    Closed,
    #[error("bus transport: {0}")]
    Transport(String),
}

/// A message bus: NATS in cluster mode, in-process in standalone mode.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `subject`; fire and forget.
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;

    /// Sends `payload` to `subject` with a fresh reply subject and waits at most
    /// `timeout` for the first answer.
    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError>;

    /// Subscribes to `subject`; with a queue group, each message goes to one
    /// member of the group. Dropping the subscription unsubscribes.
    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, BusError>;

    /// Whether the bus can carry messages right now (readiness checks).
    fn is_connected(&self) -> bool {
        true
    }

    /// Largest payload one message may carry (NATS: the server's
    /// `max_payload`, 1 MiB by default). Senders split what is larger.
    fn max_payload(&self) -> usize {
        usize::MAX
    }
}

/// A stream of messages for one subscription.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = BusMessage> + Send>>,
}

impl Subscription {
    pub fn new(stream: impl Stream<Item = BusMessage> + Send + 'static) -> Subscription {
        Subscription {
            inner: Box::pin(stream),
        }
    }

    /// The next message; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<BusMessage> {
        futures::StreamExt::next(&mut self.inner).await
    }
}

impl Stream for Subscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

/// Default time a connect node waits for logic before answering UNAVAILABLE.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
