//! The after-send webhook: every message and event stored while it is
//! configured is POSTed to the app's backend, in batches, signed, at least
//! once, in commit order per conversation (one node sends at a time, in
//! outbox order; see `store/webhook_outbox.rs`).
//!
//! Body: `{"batch": "<first id>-<last id>", "messages": [...]}`; headers
//! `x-tern-timestamp`, `x-tern-signature` (one `v1=` per secret in use:
//! after a rotation, the new one's and, for a day, the old one's) and
//! `x-tern-delivery` (the batch, the same on a retry). A 2xx takes the
//! batch; anything else, or no answer, is tried again after a growing
//! backoff (or the `Retry-After` given), and the batches behind it wait, so
//! the order holds. Messages older than `max_age` are dropped and counted.

use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use tracing::{info, warn};

use tern_public::time::now_ms;

use super::signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::store::Queued;
use crate::tasks::Stage;
use crate::Logic;

/// Settings of the after-send webhook.
#[derive(Clone)]
pub struct AfterSendConfig {
    pub url: String,
    /// The HMAC-SHA256 key until one is rotated through the admin API.
    pub secret: String,
    /// Messages per request.
    pub batch_max: u32,
    /// Messages queued longer than this are dropped (and counted).
    pub max_age: Duration,
}

impl std::fmt::Debug for AfterSendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfterSendConfig")
            .field("url", &self.url)
            .field("batch_max", &self.batch_max)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// How long the sending node holds the lease without renewing it: above
/// one round (a POST's timeout and the outbox's reads and writes).
const LEASE: Duration = Duration::from_secs(30);
/// How often messages past the age limit are looked for.
const DROP_EVERY: Duration = Duration::from_secs(60);
/// How often an idle sender looks at the outbox.
const IDLE: Duration = Duration::from_millis(250);
const TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// How long the secret before a rotation keeps signing.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One message as the webhook receives it.
#[derive(Debug, Serialize)]
struct Delivered {
    message_id: String,
    sender_id: u64,
    sender_device_id: u64,
    conv_type: i32,
    /// The receiving user or group as sent (0: the system conversation).
    conv_id: u64,
    content_type: u32,
    /// Base64 (standard, padded).
    content: String,
    mentions: Vec<u64>,
    client_msg_id: String,
    created_at_ms: i64,
}

#[derive(Debug, Serialize)]
struct Body {
    batch: String,
    messages: Vec<Delivered>,
}

fn body(batch: &[Queued]) -> (String, Vec<u8>) {
    let id = format!(
        "{}-{}",
        batch.first().map_or(0, |q| q.id),
        batch.last().map_or(0, |q| q.id)
    );
    let messages = batch
        .iter()
        .map(|q| {
            let m = &q.entry.message;
            Delivered {
                message_id: uuid::Uuid::from_slice(&m.id)
                    .map_or_else(|_| hex::encode(&m.id), |u| u.to_string()),
                sender_id: m.sender_id,
                sender_device_id: m.sender_device_id,
                conv_type: q.conv_type,
                conv_id: q.receiver_id,
                content_type: m.content_type,
                content: base64::engine::general_purpose::STANDARD.encode(&m.content),
                mentions: m.mentions.clone(),
                client_msg_id: m.client_msg_id.clone(),
                created_at_ms: m.created_at,
            }
        })
        .collect();
    let body = Body {
        batch: id.clone(),
        messages,
    };
    let json = serde_json::to_vec(&body).expect("plain data serializes");
    (id, json)
}

/// The wait after `attempts` failures, when the webhook named none.
fn backoff(attempts: u32) -> Duration {
    let full = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
        .min(MAX_RETRY);
    full / 2 + (full / 2).mul_f64(rand::random::<f64>())
}

/// Starts the sender on `stage`: it sends while this node holds the lease.
pub(crate) fn start(logic: &Arc<Logic>, cfg: AfterSendConfig, stage: &Stage) {
    let weak = Arc::downgrade(logic);
    let node = format!("logic-{:016x}", rand::random::<u64>());
    // Like the other webhooks: no redirect (it would re-post the signed
    // batch elsewhere), no proxy from the environment.
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "after-send webhook: no HTTP client; not sending");
            return;
        }
    };
    logic.store.record_after_send(true);
    stage.spawn(|stop| async move {
        let mut dropped_at: Option<tokio::time::Instant> = None;
        loop {
            let drop_old = dropped_at.is_none_or(|at| at.elapsed() >= DROP_EVERY);
            if drop_old {
                dropped_at = Some(tokio::time::Instant::now());
            }
            // A stop abandons a round: its batch is sent again later.
            let wait = tokio::select! {
                () = stop.cancelled() => return,
                wait = round(&weak, &cfg, &node, &client, drop_old) => wait,
            };
            let Some(wait) = wait else { return };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// One step: returns how long to wait before the next (`None`: the
/// logic is gone).
async fn round(
    weak: &Weak<Logic>,
    cfg: &AfterSendConfig,
    node: &str,
    client: &reqwest::Client,
    drop_old: bool,
) -> Option<Duration> {
    let logic = weak.upgrade()?;
    let store = &logic.store;
    let now = now_ms();
    match store
        .webhook_lease(node, now, now + LEASE.as_millis() as i64)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Some(Duration::from_secs(1)),
        Err(e) => {
            warn!(error = %e, "after-send webhook: lease not taken");
            return Some(Duration::from_secs(1));
        }
    }
    let state = match store.webhook_state().await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "after-send webhook: state not read");
            return Some(Duration::from_secs(1));
        }
    };
    if state.next_attempt_at > now {
        let wait = Duration::from_millis((state.next_attempt_at - now) as u64);
        return Some(wait.min(Duration::from_secs(1)));
    }
    let m = &logic.metrics;
    if drop_old {
        // Once a minute, with the age check: a count scans the outbox.
        if let Ok((depth, _)) = store.webhook_depth().await {
            m.after_send_outbox_depth.set(depth as i64);
        }
    }
    let cutoff = match drop_old {
        true => now - cfg.max_age.as_millis() as i64,
        false => i64::MIN,
    };
    match store.webhook_drop_before(cutoff).await {
        Ok(0) => {}
        Ok(n) => {
            warn!(
                dropped = n,
                "after-send webhook: messages older than the age limit dropped"
            );
            m.after_send_dropped.inc_by(n);
        }
        Err(e) => warn!(error = %e, "after-send webhook: old messages not dropped"),
    }
    let batch = match store.webhook_batch(cfg.batch_max).await {
        Ok(b) if b.is_empty() => return Some(IDLE),
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "after-send webhook: outbox not read");
            return Some(Duration::from_secs(1));
        }
    };
    let (delivery, json) = body(&batch);
    let secret = match state.secret.as_str() {
        "" => cfg.secret.as_str(),
        s => s,
    };
    let timestamp = (now / 1000).max(0);
    let mut signature = sign(secret.as_bytes(), timestamp, &json);
    if !state.prev_secret.is_empty() && state.prev_until > now {
        signature.push_str(", ");
        signature.push_str(&sign(state.prev_secret.as_bytes(), timestamp, &json));
    }
    let sent = client
        .post(&cfg.url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .header("x-tern-delivery", &delivery)
        .body(json)
        .send()
        .await;
    let failure = match sent {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => {
            let after = super::retry_after(r.headers());
            Some((format!("HTTP {}", r.status().as_u16()), after))
        }
        // Without the URL: it may carry a credential.
        Err(e) => Some((format!("no answer: {}", e.without_url()), None)),
    };
    let ids: Vec<u64> = batch.iter().map(|q| q.id).collect();
    match failure {
        None => {
            let done = now_ms();
            if let Err(e) = store.webhook_delivered(node, &ids, done).await {
                // Sent again: at least once, and the receiver dedupes.
                warn!(error = %e, "after-send webhook: delivered batch not removed");
            }
            m.after_send_delivered.inc_by(ids.len() as u64);
            for q in &batch {
                m.after_send_seconds
                    .observe((done - q.queued_at).max(0) as f64 / 1000.0);
            }
            if state.attempts > 0 {
                info!(delivery, "after-send webhook answered again");
            }
            Some(Duration::ZERO)
        }
        Some((why, after)) => {
            let wait = after.unwrap_or_default().max(backoff(state.attempts + 1));
            warn!(
                delivery,
                why,
                ?wait,
                "after-send webhook failed; trying again"
            );
            m.after_send_retried.inc();
            let at = now_ms() + wait.as_millis() as i64;
            if let Err(e) = store.webhook_failed(node, at, &why).await {
                warn!(error = %e, "after-send webhook: failure not recorded");
            }
            Some(wait.min(Duration::from_secs(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        assert!(backoff(1) <= FIRST_RETRY && backoff(1) >= FIRST_RETRY / 2);
        assert!(backoff(30) <= MAX_RETRY && backoff(30) >= MAX_RETRY / 2);
    }
}
