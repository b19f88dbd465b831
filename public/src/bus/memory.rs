//! In-process bus for standalone mode: the same semantics as NATS core
//! (subjects, queue groups, request/reply through reply subjects), with
//! back-pressure instead of drops: a full subscriber slows the publisher.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use super::{Bus, BusError, BusMessage, Source, Subscription};

/// Messages buffered per subscription before publishers wait.
const SUBSCRIPTION_CAPACITY: usize = 1024;
const INBOX_PREFIX: &str = "_INBOX.";

/// The in-process bus. Cheap to clone; clones share the same subjects.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    subs: Mutex<HashMap<String, Vec<Sub>>>,
    inboxes: Mutex<HashMap<String, oneshot::Sender<Bytes>>>,
    next_id: AtomicU64,
}

struct Sub {
    id: u64,
    queue: Option<String>,
    tx: mpsc::Sender<BusMessage>,
}

impl MemoryBus {
    /// A bus with no subscription yet.
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// Subscriptions and pending requests still registered (for leak checks).
    #[cfg(test)]
    pub(crate) fn registered(&self) -> (usize, usize) {
        let subs = self.inner.subs.lock().expect("bus lock poisoned").len();
        let inboxes = self.inner.inboxes.lock().expect("bus lock poisoned").len();
        (subs, inboxes)
    }

    /// Picks the receivers of one message: every plain subscriber and one
    /// member of each queue group (spread by the message counter).
    fn targets(&self, subject: &str) -> Vec<mpsc::Sender<BusMessage>> {
        let subs = self.inner.subs.lock().expect("bus lock poisoned");
        let Some(list) = subs.get(subject) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut groups: HashMap<&str, Vec<&Sub>> = HashMap::new();
        for s in list {
            match &s.queue {
                None => out.push(s.tx.clone()),
                Some(q) => groups.entry(q.as_str()).or_default().push(s),
            }
        }
        let turn = self.inner.next_id.fetch_add(1, Ordering::Relaxed) as usize;
        for members in groups.values() {
            out.push(members[turn % members.len()].tx.clone());
        }
        out
    }

    async fn publish_with_reply(
        &self,
        subject: &str,
        payload: Bytes,
        reply: Option<String>,
    ) -> Result<usize, BusError> {
        if subject.starts_with(INBOX_PREFIX) {
            let waiter = self
                .inner
                .inboxes
                .lock()
                .expect("bus lock poisoned")
                .remove(subject);
            // A reply nobody waits for any more (timed out) is dropped, as in NATS.
            if let Some(tx) = waiter {
                let _ = tx.send(payload);
            }
            return Ok(1);
        }
        let targets = self.targets(subject);
        let n = targets.len();
        for tx in targets {
            let msg = BusMessage {
                subject: subject.to_owned(),
                payload: payload.clone(),
                reply: reply.clone(),
            };
            // A closed receiver is a subscription being dropped: skip it.
            let _ = tx.send(msg).await;
        }
        Ok(n)
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_with_reply(subject, payload, None).await?;
        Ok(())
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("{INBOX_PREFIX}{id}");
        let (tx, rx) = oneshot::channel();
        self.inner
            .inboxes
            .lock()
            .expect("bus lock poisoned")
            .insert(inbox.clone(), tx);
        let _cleanup = InboxGuard {
            inner: &self.inner,
            inbox: &inbox,
        };
        let sent = tokio::time::timeout(
            timeout,
            self.publish_with_reply(subject, payload, Some(inbox.clone())),
        )
        .await
        .map_err(|_| BusError::Timeout)??;
        if sent == 0 {
            return Err(BusError::NoResponders(subject.to_owned()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        self.inner
            .subs
            .lock()
            .expect("bus lock poisoned")
            .entry(subject.to_owned())
            .or_default()
            .push(Sub {
                id,
                queue: queue_group.map(str::to_owned),
                tx,
            });
        Ok(Subscription::new(MemorySubscription {
            rx,
            bus: Arc::downgrade(&self.inner),
            subject: subject.to_owned(),
            id,
        }))
    }
}

/// Removes a request's inbox however the request ends (reply, timeout, cancel).
struct InboxGuard<'a> {
    inner: &'a Inner,
    inbox: &'a str,
}

impl Drop for InboxGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut inboxes) = self.inner.inboxes.lock() {
            inboxes.remove(self.inbox);
        }
    }
}

struct MemorySubscription {
    rx: mpsc::Receiver<BusMessage>,
    bus: Weak<Inner>,
    subject: String,
    id: u64,
}

impl Stream for MemorySubscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        self.rx.poll_recv(cx)
    }
}

impl MemorySubscription {
    /// Takes this subscriber off its subject: no publish picks it any more.
    fn unregister(&self) {
        let Some(inner) = self.bus.upgrade() else {
            return;
        };
        let Ok(mut subs) = inner.subs.lock() else {
            return;
        };
        if let Some(list) = subs.get_mut(&self.subject) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subs.remove(&self.subject);
            }
        }
    }
}

impl Source for MemorySubscription {
    /// Once unregistered, the channel ends when the publishes that already
    /// picked this subscriber have handed over their message.
    fn drain(&mut self) -> BoxFuture<'_, Result<(), BusError>> {
        self.unregister();
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.unregister();
    }
}
