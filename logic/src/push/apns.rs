//! APNs with token-based authentication, as Apple's "Sending notification
//! requests to APNs" and "Establishing a token-based connection to APNs"
//! describe: HTTP/2 `POST /3/device/<token>`, authorised by an ES256 JWT
//! (the provider token) signed with the team's `.p8` key.
//!
//! Apple refuses a provider token older than an hour and throttles one
//! renewed more often than every 20 minutes, so one token serves every
//! request until it is [`TOKEN_RENEWAL`] old, or until APNs calls it
//! expired or invalid.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use super::config::ApnsConfig;
use super::http::{self, kind_name, unix_secs, Answer, SetupError};
use super::provider::{Kind, Notification, Outcome, Provider};

const PROVIDER: &str = "APNs";
/// The age at which a provider token is replaced: well inside Apple's hour,
/// well past its 20 minutes.
pub const TOKEN_RENEWAL: Duration = Duration::from_secs(45 * 60);

/// Sends notifications to APNs.
pub struct Apns {
    client: reqwest::Client,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    default_topic: String,
    url: String,
    sandbox_url: String,
    token_renewal: Duration,
    token: Mutex<Option<ProviderToken>>,
}

/// The provider token in use.
struct ProviderToken {
    jwt: Arc<str>,
    signed_at: Instant,
}

/// A provider token's claims (Apple documents exactly these two).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub iat: u64,
}

// === impl Apns ===

impl Apns {
    /// Checks `cfg` and signs a first provider token, so that a key that
    /// cannot sign stops the start with a clear message.
    pub fn new(cfg: &ApnsConfig) -> Result<Apns, SetupError> {
        http::required(PROVIDER, "key_id", &cfg.key_id)?;
        http::required(PROVIDER, "team_id", &cfg.team_id)?;
        http::required(PROVIDER, "default_topic", &cfg.default_topic)?;
        let bad_key = |why: String| SetupError::Key {
            provider: PROVIDER,
            setting: "the key (key_pem)",
            why,
        };
        let key = EncodingKey::from_ec_pem(cfg.key_pem.as_bytes()).map_err(|e| {
            bad_key(format!(
                "{e} (expected the .p8 file: a PKCS#8 PEM EC P-256 private key)"
            ))
        })?;
        let apns = Apns {
            client: http::client(PROVIDER, true)?,
            key,
            key_id: cfg.key_id.trim().to_owned(),
            team_id: cfg.team_id.trim().to_owned(),
            default_topic: cfg.default_topic.trim().to_owned(),
            url: http::base_url(PROVIDER, "url", &cfg.url)?,
            sandbox_url: http::base_url(PROVIDER, "sandbox_url", &cfg.sandbox_url)?,
            token_renewal: TOKEN_RENEWAL,
            token: Mutex::new(None),
        };
        // jsonwebtoken only unwraps the PEM; ring reads the key when it signs.
        apns.provider_token()
            .map_err(|e| bad_key(format!("{e} (expected an EC P-256 key)")))?;
        Ok(apns)
    }

    /// Renews the provider token at `age` instead of [`TOKEN_RENEWAL`]
    /// (tests shorten it).
    pub fn with_token_renewal(mut self, age: Duration) -> Apns {
        self.token_renewal = age;
        self
    }

    /// The provider token to send with: the cached one while it is younger
    /// than the renewal age, else a new one.
    fn provider_token(&self) -> jsonwebtoken::errors::Result<Arc<str>> {
        let mut cached = self.token.lock().expect("provider token lock poisoned");
        if let Some(t) = cached.as_ref() {
            if t.signed_at.elapsed() < self.token_renewal {
                return Ok(t.jwt.clone());
            }
        }
        let jwt: Arc<str> = self.sign(unix_secs())?.into();
        *cached = Some(ProviderToken {
            jwt: jwt.clone(),
            signed_at: Instant::now(),
        });
        Ok(jwt)
    }

    /// APNs refused `jwt`: the next request signs a new one. Only `jwt`
    /// is dropped: requests that were in flight with it must not drop the
    /// one signed after it (Apple throttles renewals).
    fn forget(&self, jwt: &str) {
        let mut cached = self.token.lock().expect("provider token lock poisoned");
        if cached.as_ref().is_some_and(|t| &*t.jwt == jwt) {
            *cached = None;
        }
    }

    fn sign(&self, iat: u64) -> jsonwebtoken::errors::Result<String> {
        // Apple's header is exactly {alg, kid}.
        let header = Header {
            typ: None,
            kid: Some(self.key_id.clone()),
            ..Header::new(Algorithm::ES256)
        };
        let claims = Claims {
            iss: self.team_id.clone(),
            iat,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

#[async_trait::async_trait]
impl Provider for Apns {
    async fn send(&self, n: &Notification) -> Outcome {
        // Checked at registration; never let anything else into the path.
        if n.token.is_empty() || !n.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Outcome::Unregistered;
        }
        let jwt = match self.provider_token() {
            Ok(jwt) => jwt,
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    why: format!("{PROVIDER}: cannot sign the provider token: {e}"),
                }
            }
        };
        let base = if n.apns_sandbox {
            &self.sandbox_url
        } else {
            &self.url
        };
        let topic = match n.apns_topic.as_str() {
            "" => &self.default_topic,
            topic => topic,
        };
        let req = self
            .client
            .post(format!("{base}/3/device/{}", n.token))
            .header(AUTHORIZATION, format!("bearer {jwt}"))
            .header("apns-topic", topic)
            // A withdrawal is a background notification: the app removes the
            // one it shows for the message, and nothing new appears.
            .header("apns-push-type", push_type(n.kind))
            .header("apns-priority", priority(n.kind))
            .header("apns-collapse-id", &n.message_id)
            .header(
                "apns-expiration",
                (n.expires_at_ms.max(0) / 1000).to_string(),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(payload(n).to_string());
        let answer = match http::send(PROVIDER, req).await {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        let (outcome, token_refused) = outcome(&answer);
        if token_refused {
            self.forget(&jwt);
        }
        outcome
    }
}

/// `apns-push-type`: Apple requires `background` for a notification that
/// shows nothing.
fn push_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Alert => "alert",
        Kind::Withdraw => "background",
    }
}

/// `apns-priority`: Apple requires 5 for background notifications.
fn priority(kind: Kind) -> &'static str {
    match kind {
        Kind::Alert => "10",
        Kind::Withdraw => "5",
    }
}

/// The JSON payload: what the device shows (an alert), or only what the
/// app needs (a withdrawal: `content-available`, no alert, badge or
/// sound); and what the app needs to open the conversation.
fn payload(n: &Notification) -> serde_json::Value {
    let aps = match n.kind {
        Kind::Alert => json!({
            "alert": { "title": n.title, "body": n.body },
            "badge": n.badge,
            "sound": "default",
            "thread-id": format!("{}:{}", n.conv_type, n.conv_id),
        }),
        Kind::Withdraw => json!({ "content-available": 1 }),
    };
    json!({
        "aps": aps,
        "tern": {
            "conv_type": n.conv_type,
            "conv_id": n.conv_id,
            "seq": n.seq,
            "message_id": n.message_id,
            "kind": kind_name(n.kind),
        },
    })
}

/// What APNs's answer means, and whether it refused the provider token.
fn outcome(a: &Answer) -> (Outcome, bool) {
    let json = a.json();
    let reason = json["reason"].as_str().unwrap_or("");
    let status = a.status.as_u16();
    let why = || {
        format!("{PROVIDER} {status} {reason}")
            .trim_end()
            .to_owned()
    };
    let outcome = match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Unregistered,
        400 if matches!(reason, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            Outcome::Unregistered
        }
        403 if matches!(reason, "ExpiredProviderToken" | "InvalidProviderToken") => {
            return (a.retry(why()), true);
        }
        429 | 500..=599 => a.retry(why()),
        _ => Outcome::Rejected(why()),
    };
    (outcome, false)
}

#[cfg(test)]
mod tests;
