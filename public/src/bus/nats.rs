//! The bus on NATS core (async-nats), for cluster mode.
//!
//! async-nats keeps reconnecting for ever and re-subscribes every live
//! subscription on the new connection, so a node keeps its subjects across
//! a NATS restart. While NATS is away, requests fail after their timeout
//! (connect answers UNAVAILABLE) and publishes wait at most `op_timeout`,
//! so nothing hangs and no queue grows without bound.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::client::{RequestErrorKind, SubscribeError};
use async_nats::{ConnectOptions, Event, Request};
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tracing::{info, warn};

use super::{Bus, BusError, BusMessage, Source, Subscription, TransportError};

/// Messages buffered per subscription before NATS counts this node as a slow consumer.
const SUBSCRIPTION_CAPACITY: usize = 16 * 1024;

/// Settings of a NATS connection.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// One or more server URLs, comma separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Name shown by the NATS server's monitoring, e.g. the node id.
    pub name: String,
    /// Longest wait for a publish or a subscribe while NATS is unreachable.
    pub op_timeout: Duration,
}

/// A [`Bus`] on a NATS connection.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    op_timeout: Duration,
}

impl NatsBus {
    /// Connects to NATS. Start-up fails when no server answers within the
    /// connection timeout; later outages are ridden out by reconnecting.
    pub async fn connect(opts: NatsOptions) -> Result<NatsBus, BusError> {
        let urls: Vec<async_nats::ServerAddr> = opts
            .url
            .split(',')
            .map(|u| u.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|e| TransportError::new(format!("bad NATS url {:?}", opts.url), e))?;
        let client = ConnectOptions::new()
            .name(&opts.name)
            .max_reconnects(None)
            // Back on its feet soon after NATS is: 100 ms steps up to 2 s.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(2_000))
            })
            .connection_timeout(Duration::from_secs(5))
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .event_callback(|event| async move {
                match event {
                    Event::Connected => info!("NATS connected"),
                    Event::Disconnected => warn!("NATS disconnected; reconnecting"),
                    Event::SlowConsumer(sid) => {
                        warn!(sid, "NATS slow consumer: messages dropped")
                    }
                    other => info!(event = %other, "NATS event"),
                }
            })
            .connect(urls)
            .await
            .map_err(|e| TransportError::new(format!("connecting to NATS at {}", opts.url), e))?;
        Ok(NatsBus {
            client,
            op_timeout: opts.op_timeout,
        })
    }

    /// Waits until the server has processed everything this connection
    /// sent so far. async-nats's flush only empties the socket buffer, so
    /// this sends a message to a fresh inbox of ours and waits for it: the
    /// server handles one connection's operations in order.
    async fn round_trip(&self) -> Result<(), BusError> {
        let inbox = self.client.new_inbox();
        let mut probe = self
            .bounded("NATS subscribe", self.client.subscribe(inbox.clone()))
            .await?;
        self.bounded("NATS publish", self.client.publish(inbox, Bytes::new()))
            .await?;
        match tokio::time::timeout(self.op_timeout, probe.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn bounded<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(TransportError::new(what, e).into()),
            Err(_) => Err(BusError::Timeout),
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.bounded(
            "NATS publish",
            self.client.publish(subject.to_owned(), payload),
        )
        .await
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let req = Request::new().payload(payload).timeout(Some(timeout));
        // The client's own timeout covers the wait for the answer; this one
        // also covers a publish stuck behind a lost connection.
        let sent = self.client.send_request(subject.to_owned(), req);
        match tokio::time::timeout(timeout + Duration::from_millis(100), sent).await {
            Ok(Ok(msg)) => Ok(msg.payload),
            Ok(Err(e)) => Err(match e.kind() {
                RequestErrorKind::TimedOut => BusError::Timeout,
                RequestErrorKind::NoResponders => BusError::NoResponders(subject.to_owned()),
                RequestErrorKind::InvalidSubject
                | RequestErrorKind::MaxPayloadExceeded
                | RequestErrorKind::Other => TransportError::new("NATS request", e).into(),
            }),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let subscriber = self
            .bounded::<_, SubscribeError>("NATS subscribe", async {
                match queue_group {
                    Some(q) => {
                        self.client
                            .queue_subscribe(subject.to_owned(), q.to_owned())
                            .await
                    }
                    None => self.client.subscribe(subject.to_owned()).await,
                }
            })
            .await?;
        // Once subscribe returns, the server must know: a request sent right
        // after it (from any connection) has to find this subscriber.
        self.round_trip().await?;
        Ok(Subscription::new(NatsSubscription {
            subscriber,
            bus: self.clone(),
        }))
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// A NATS subscriber as a bus [`Source`].
struct NatsSubscription {
    subscriber: async_nats::Subscriber,
    /// Its connection, to wait for the server at a drain.
    bus: NatsBus,
}

impl Stream for NatsSubscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        self.subscriber.poll_next_unpin(cx).map(|m| {
            m.map(|m| BusMessage {
                subject: m.subject.to_string(),
                payload: m.payload,
                reply: m.reply.map(|r| r.to_string()),
            })
        })
    }
}

impl Source for NatsSubscription {
    /// UNSUB at the server; what is already buffered here is still
    /// yielded, then the subscriber's stream ends. Returns once the server
    /// has applied the UNSUB (async-nats only queues it), so whatever is
    /// published from then on goes to the other members of a queue group.
    fn drain(&mut self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            self.subscriber
                .drain()
                .await
                .map_err(|e| BusError::from(TransportError::new("NATS drain", e)))?;
            // The UNSUB is on its way and the stream will end: the caller
            // must still read what is buffered, so a slow server is only
            // worth a warning here, not an error that would skip that.
            if let Err(e) = self.bus.round_trip().await {
                warn!(error = %e, "NATS drain: the server did not confirm the UNSUB in time");
            }
            Ok(())
        })
    }
}
