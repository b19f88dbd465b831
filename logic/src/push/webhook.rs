//! The push webhook: each notification of a WEBHOOK device is POSTed as
//! JSON to one URL, signed so that the receiver can tell it came from this
//! server and is recent, with the signature every tern webhook carries
//! ([`crate::webhooks::signing`]).
//!
//! Headers: `x-tern-timestamp: <unix secs>`, `x-tern-signature: v1=<hex
//! HMAC-SHA256(secret, "<timestamp>.<body>")>` and `x-tern-delivery: <id>`,
//! the notification's id, the same on every retry of it: the receiver's
//! dedupe key.

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use super::config::PushWebhookConfig;
use super::http::{self, kind_name, unix_secs, Answer, SetupError};
use super::provider::{Notification, Outcome, Provider};
use crate::webhooks::signing::sign;

const PROVIDER: &str = "push webhook";

/// Sends notifications to the push webhook.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

/// What the receiver gets.
#[derive(Debug, Serialize)]
struct Body<'a> {
    id: u64,
    user_id: u64,
    device_id: u64,
    token: &'a str,
    kind: &'static str,
    title: &'a str,
    body: &'a str,
    badge: u64,
    conv_type: i32,
    conv_id: u64,
    seq: u64,
    message_id: &'a str,
    expires_at_ms: i64,
}

// === impl Webhook ===

impl Webhook {
    pub fn new(cfg: &PushWebhookConfig) -> Result<Webhook, SetupError> {
        http::required(PROVIDER, "secret", &cfg.secret)?;
        Ok(Webhook {
            client: http::client(PROVIDER, false)?,
            url: http::url(PROVIDER, "url", &cfg.url)?,
            secret: cfg.secret.as_bytes().to_vec(),
        })
    }
}

#[async_trait::async_trait]
impl Provider for Webhook {
    async fn send(&self, n: &Notification) -> Outcome {
        let body = body(n);
        let timestamp = unix_secs();
        let req = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header("x-tern-timestamp", timestamp.to_string())
            .header(
                "x-tern-signature",
                sign(&self.secret, timestamp as i64, &body),
            )
            .header("x-tern-delivery", n.id.to_string())
            .body(body);
        match http::send(PROVIDER, req).await {
            Ok(answer) => outcome(&answer),
            Err(no_answer) => no_answer,
        }
    }
}

/// The JSON body: the notification, all of it.
fn body(n: &Notification) -> Vec<u8> {
    let body = Body {
        id: n.id,
        user_id: n.user_id,
        device_id: n.device_id,
        token: &n.token,
        kind: kind_name(n.kind),
        title: &n.title,
        body: &n.body,
        badge: n.badge,
        conv_type: n.conv_type,
        conv_id: n.conv_id,
        seq: n.seq,
        message_id: &n.message_id,
        expires_at_ms: n.expires_at_ms,
    };
    serde_json::to_vec(&body).expect("strings and numbers serialise")
}

/// What the receiver's answer means.
fn outcome(a: &Answer) -> Outcome {
    let code = a.status.as_u16();
    match code {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Unregistered,
        429 | 500..=599 => a.retry(format!("{PROVIDER} {code}")),
        _ => Outcome::Rejected(format!("{PROVIDER} {code}")),
    }
}

#[cfg(test)]
mod tests;
