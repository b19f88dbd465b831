//! Sending: claims due outbox rows (any node may; a claim is a lease, so
//! a sender killed mid-send leaves its rows to another after the lease),
//! hands each to its device's provider, and acts on the answer: done,
//! token removed, again later, or given up once the notification is too
//! old. At least once per (device, message, kind); the message id travels
//! as the collapse id, so a receiver drops duplicates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use tern_public::time::now_ms;

use super::apns::Apns;
use super::config::PushConfig;
use super::fcm::Fcm;
use super::planner::WITHDRAW;
use super::provider::{Kind, Notification, Outcome, Provider};
use super::webhook::Webhook;
use crate::domain::PushProvider;
use crate::metrics::{LogicMetrics, ProviderLabels, PushFailureLabels};
use crate::store::{Claimed, Store};

/// The providers this node sends with.
#[derive(Clone, Default)]
pub struct Providers {
    pub apns: Option<Arc<dyn Provider>>,
    pub fcm: Option<Arc<dyn Provider>>,
    pub webhook: Option<Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .field("webhook", &self.webhook.is_some())
            .finish()
    }
}

impl Providers {
    /// The providers `cfg` configures; an error names the one whose
    /// settings are unusable (a key that does not parse).
    pub fn from_config(cfg: &PushConfig) -> Result<Providers, String> {
        let shared = |p: Arc<dyn Provider>| p;
        Ok(Providers {
            apns: match &cfg.apns {
                Some(c) => Some(shared(Arc::new(Apns::new(c).map_err(|e| e.to_string())?))),
                None => None,
            },
            fcm: match &cfg.fcm {
                Some(c) => Some(shared(Arc::new(Fcm::new(c).map_err(|e| e.to_string())?))),
                None => None,
            },
            webhook: match &cfg.webhook {
                Some(c) => Some(shared(Arc::new(
                    Webhook::new(c).map_err(|e| e.to_string())?,
                ))),
                None => None,
            },
        })
    }

    fn get(&self, p: PushProvider) -> Option<&Arc<dyn Provider>> {
        match p {
            PushProvider::Apns => self.apns.as_ref(),
            PushProvider::Fcm => self.fcm.as_ref(),
            PushProvider::Webhook => self.webhook.as_ref(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.apns.is_none() && self.fcm.is_none() && self.webhook.is_none()
    }
}

/// When a node without the device's provider leaves a notification for
/// another node to try.
const NO_PROVIDER_AGAIN: Duration = Duration::from_secs(60);

/// First wait after a retryable failure; doubles per attempt.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// The wait before attempt `attempts + 1` when the provider named none.
pub(crate) fn backoff(attempts: u32) -> Duration {
    let full = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
        .min(MAX_RETRY);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

pub(crate) fn provider_name(p: PushProvider) -> &'static str {
    match p {
        PushProvider::Apns => "apns",
        PushProvider::Fcm => "fcm",
        PushProvider::Webhook => "webhook",
    }
}

/// Claims per call, in units of `concurrency`, before it returns (and the
/// caller updates the outbox's depth).
const CLAIMS_PER_CALL: usize = 16;

/// Sends what is due, up to `concurrency` at once; returns how many rows
/// it claimed (0: nothing was due). It claims again whenever half the
/// slots are free and the last claim was full, so one slow answer (up to
/// the HTTP client's timeout) holds its own slot, not the whole claim's.
pub(crate) async fn send_due(
    store: &Store,
    providers: &Providers,
    metrics: &LogicMetrics,
    lease: Duration,
    concurrency: usize,
) -> usize {
    let concurrency = concurrency.max(1);
    let mut sends = JoinSet::new();
    // Rows answered for good, removed together before each claim and at
    // the end: one commit per claim rather than one per notification.
    let mut done: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut claimed = 0;
    let mut more = true;
    loop {
        if more && sends.len() <= concurrency / 2 {
            remove_done(store, &mut done).await;
            let free = concurrency - sends.len();
            let rows = claim(store, lease, free).await;
            claimed += rows.len();
            more = rows.len() == free && claimed < CLAIMS_PER_CALL * concurrency;
            for c in rows {
                let (store, providers, metrics) =
                    (store.clone(), providers.clone(), metrics.clone());
                sends.spawn(async move {
                    let lease = (c.id, c.lease_until);
                    (send_one(&store, &providers, &metrics, c).await, lease)
                });
            }
        }
        match sends.join_next().await {
            Some(Ok((Finished::Done, (id, lease_until)))) => {
                done.entry(lease_until).or_default().push(id);
            }
            // Kept, or a send that panicked: its row waits for the lease.
            Some(_) => {}
            None => break,
        }
    }
    remove_done(store, &mut done).await;
    claimed
}

/// Up to `limit` due rows, leased to this sender; none when the claim fails.
async fn claim(store: &Store, lease: Duration, limit: usize) -> Vec<Claimed> {
    let now = now_ms();
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    match store
        .claim_push(now, now + lease.as_millis() as i64, limit)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "push outbox: claim failed");
            Vec::new()
        }
    }
}

async fn remove_done(store: &Store, done: &mut BTreeMap<i64, Vec<u64>>) {
    for (lease_until, ids) in std::mem::take(done) {
        if let Err(e) = store.push_done(&ids, lease_until).await {
            // Sent again after the lease: at least once, as documented.
            warn!(error = %e, rows = ids.len(), "push outbox rows not removed");
        }
    }
}

/// What becomes of a claimed row after its attempt.
enum Finished {
    /// Answered for good (delivered, dead token, refused, too old): remove it.
    Done,
    /// Scheduled again, or left to the lease.
    Kept,
}

async fn send_one(
    store: &Store,
    providers: &Providers,
    metrics: &LogicMetrics,
    c: Claimed,
) -> Finished {
    let fail = |provider: &'static str, reason: &'static str| {
        metrics
            .push_failed
            .get_or_create(&PushFailureLabels { provider, reason })
            .inc();
    };
    let now = now_ms();
    let Some(token) = c.token.clone() else {
        // Signed out, or the token was removed, since it was planned.
        fail("none", "signed_out");
        return Finished::Done;
    };
    let name = provider_name(token.provider);
    if now >= c.row.expires_at {
        fail(name, "expired");
        return Finished::Done;
    }
    let Some(provider) = providers.get(token.provider) else {
        // Another node may have it (settings differ during a rollout);
        // if none does, the notification expires.
        let at = now + NO_PROVIDER_AGAIN.as_millis() as i64;
        if at >= c.row.expires_at {
            fail(name, "no_provider");
            return Finished::Done;
        }
        if let Err(e) = store.push_retry_at(c.id, c.lease_until, at).await {
            warn!(error = %e, id = c.id, "push without its provider not rescheduled");
        }
        return Finished::Kept;
    };
    let n = Notification {
        id: c.id,
        user_id: c.row.user_id,
        device_id: c.row.device_id,
        provider: token.provider,
        token: token.token.clone(),
        apns_topic: token.apns_topic,
        apns_sandbox: token.apns_sandbox,
        kind: if c.row.kind == WITHDRAW {
            Kind::Withdraw
        } else {
            Kind::Alert
        },
        title: c.row.title.clone(),
        body: c.row.body.clone(),
        badge: c.row.badge,
        conv_type: c.row.conv_type,
        conv_id: c.row.conv_id,
        seq: c.row.seq,
        message_id: c.row.message_id.clone(),
        expires_at_ms: c.row.expires_at,
    };
    let labels = ProviderLabels { provider: name };
    match provider.send(&n).await {
        Outcome::Delivered => {
            metrics.push_sent.get_or_create(&labels).inc();
            let age = (now_ms() - c.row.created_at).max(0) as f64 / 1000.0;
            metrics.push_seconds.get_or_create(&labels).observe(age);
            Finished::Done
        }
        Outcome::Unregistered => {
            fail(name, "unregistered");
            match store.push_token_rejected(n.device_id, &n.token).await {
                Ok(true) => info!(
                    user_id = n.user_id,
                    device_id = n.device_id,
                    provider = name,
                    "push token no longer valid; removed"
                ),
                Ok(false) => {}
                Err(e) => warn!(error = %e, device_id = n.device_id, "dead push token not removed"),
            }
            Finished::Done
        }
        Outcome::Retry { after, why } => {
            let wait = after.unwrap_or_default().max(backoff(c.attempts));
            let at = now_ms() + wait.as_millis() as i64;
            if at >= n.expires_at_ms {
                debug!(
                    id = c.id,
                    provider = name,
                    why,
                    "push given up: too old to retry"
                );
                fail(name, "gave_up");
                return Finished::Done;
            }
            metrics.push_retried.get_or_create(&labels).inc();
            debug!(id = c.id, provider = name, why, ?wait, "push to be retried");
            if let Err(e) = store.push_retry_at(c.id, c.lease_until, at).await {
                // The lease runs out and another attempt follows anyway.
                warn!(error = %e, id = c.id, "push retry not scheduled");
            }
            Finished::Kept
        }
        Outcome::Rejected(why) => {
            warn!(
                id = c.id,
                provider = name,
                why,
                "push rejected by the provider"
            );
            fail(name, "rejected");
            Finished::Done
        }
    }
}

#[cfg(test)]
mod tests;
