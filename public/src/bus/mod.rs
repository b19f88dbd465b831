//! The message bus between connect and logic nodes (DESIGN.md "Bus").
//!
//! The trait is shaped after NATS core: subjects, publish, request/reply via
//! a reply subject, and queue groups (each message of a subject goes to every
//! plain subscriber and to exactly one member of each queue group). The
//! in-process [`MemoryBus`] serves standalone mode; the NATS implementation
//! (feature `nats`) serves cluster mode. Callers never know which one they
//! hold.

mod error;
mod memory;
#[cfg(feature = "nats")]
mod nats;
mod subjects;

pub use error::{BusError, TransportError};
pub use memory::MemoryBus;
#[cfg(feature = "nats")]
pub use nats::{NatsBus, NatsOptions};
pub use subjects::{Subjects, LOGIC_QUEUE};

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;

/// One message received from a subscription.
#[derive(Debug, Clone)]
pub struct BusMessage {
    /// The subject it was published on.
    pub subject: String,
    /// The message itself (a protobuf of proto/bus.proto).
    pub payload: Bytes,
    /// Where to publish the answer, when the sender used [`Bus::request`].
    pub reply: Option<String>,
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
    inner: Box<dyn Source>,
}

/// What a bus implementation hands out for one subscription.
pub trait Source: Stream<Item = BusMessage> + Send + Unpin {
    /// Stops taking new messages; those already on their way to this
    /// subscriber still arrive, then the stream ends.
    fn drain(&mut self) -> BoxFuture<'_, Result<(), BusError>>;
}

impl Subscription {
    /// Wraps what a [`Bus`] implementation hands out for one subscription.
    pub fn new(source: impl Source + 'static) -> Subscription {
        Subscription {
            inner: Box::new(source),
        }
    }

    /// The next message; `None` once the bus is gone or a drain is done.
    pub async fn next(&mut self) -> Option<BusMessage> {
        futures::StreamExt::next(&mut self.inner).await
    }

    /// Unsubscribes without losing what the bus already handed to this
    /// subscriber: no new message arrives after this returns, the ones
    /// already buffered are still yielded by [`Subscription::next`], and
    /// then it yields `None`. A node stopping drains its queue-group
    /// subscriptions so the requests it was given are served, not dropped.
    pub async fn drain(&mut self) -> Result<(), BusError> {
        self.inner.drain().await
    }
}

impl Stream for Subscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        Pin::new(&mut self.inner).poll_next(cx)
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
