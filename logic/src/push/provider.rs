//! What the push sender hands a provider, and what it hears back. Each
//! provider (APNs, FCM, the push webhook) turns a [`Notification`] into its
//! own HTTP request and its answer into an [`Outcome`], as its public
//! documentation describes; the sender does the rest (retries, giving up,
//! removing dead tokens, metrics).

use std::time::Duration;

use crate::domain::PushProvider;

/// What a notification asks the device to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new entry: show `title` and `body`, set the badge.
    Alert,
    /// The entry `message_id` was recalled: replace (or withdraw) the
    /// notification shown for it, where the provider allows it (APNs and
    /// FCM replace it through the collapse id with `title`/`body`).
    Withdraw,
}

/// One notification for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The outbox row: unique per (device, message, kind).
    pub id: u64,
    pub user_id: u64,
    pub device_id: u64,
    pub provider: PushProvider,
    /// The device's push token (APNs: lower-case hex).
    pub token: String,
    /// APNs: the bundle id to send with ("" = the provider's default topic).
    pub apns_topic: String,
    /// APNs: the development environment.
    pub apns_sandbox: bool,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    /// The user's total unread (the app badge).
    pub badge: u64,
    /// The conversation, so the app can open it (client protocol numbers).
    pub conv_type: i32,
    pub conv_id: u64,
    /// The entry's seq in the user's list.
    pub seq: u64,
    /// The message's id as a UUID string: the collapse id, and the id a
    /// receiver drops duplicates by.
    pub message_id: String,
    /// After this (ms since the epoch) the notification is worth nothing:
    /// the provider should not deliver it (APNs `apns-expiration`, FCM
    /// `ttl`), and the sender gives up retrying.
    pub expires_at_ms: i64,
}

/// How a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the provider.
    Delivered,
    /// The token is no longer valid (APNs 410 Unregistered or 400
    /// BadDeviceToken; FCM UNREGISTERED or an invalid token): remove it.
    Unregistered,
    /// Try again later (429, 5xx, a network error, an expired auth token):
    /// after `after` when the provider said (Retry-After), else the
    /// sender's backoff.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Refused for good (a malformed request, a wrong topic): drop it.
    Rejected(String),
}

/// A push provider.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Sends `n`; never panics, never blocks longer than its own timeout.
    async fn send(&self, n: &Notification) -> Outcome;
}
