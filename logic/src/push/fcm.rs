//! FCM HTTP v1, as Google's "Authorize send requests", "Send a message
//! using FCM HTTP v1 API" and its error codes describe: an OAuth 2 access
//! token is got from the service account's token URI with a JWT-bearer
//! grant (an RS256 assertion signed with the account's key), kept until
//! shortly before it expires, and sent as `Bearer` with each `POST
//! /v1/projects/<project>/messages:send`.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tern_public::time::now_ms;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::FcmConfig;
use super::http::{self, kind_name, unix_secs, Answer, SetupError};
use super::provider::{Kind, Notification, Outcome, Provider};

const PROVIDER: &str = "FCM";
const TOKEN_ENDPOINT: &str = "FCM token endpoint";
/// The scope that sending needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// An assertion's lifetime: Google accepts at most an hour.
const ASSERTION_LIFETIME: u64 = 3600;
/// How long before its expiry an access token is replaced.
pub const TOKEN_RENEWAL: Duration = Duration::from_secs(5 * 60);

/// Sends notifications through FCM.
pub struct Fcm {
    client: reqwest::Client,
    key: EncodingKey,
    client_email: String,
    token_uri: String,
    send_url: String,
    token_renewal: Duration,
    /// The access token. Held while one is fetched, so that a burst of
    /// sends waits for one request instead of making one each.
    token: Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: Arc<str>,
    expires_at: Instant,
}

/// The assertion's claims, as Google's "Authorize send requests" lists
/// them.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub scope: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
}

// === impl Fcm ===

impl Fcm {
    /// Checks `cfg` and signs a first assertion, so that a key that cannot
    /// sign stops the start with a clear message.
    pub fn new(cfg: &FcmConfig) -> Result<Fcm, SetupError> {
        http::required(PROVIDER, "client_email", &cfg.client_email)?;
        let project_ok = !cfg.project_id.is_empty()
            && cfg
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
        if !project_ok {
            return Err(SetupError::Setting {
                provider: PROVIDER,
                setting: "project_id",
                why: format!("{:?} is not a Firebase project id", cfg.project_id),
            });
        }
        let bad_key = |why: String| SetupError::Key {
            provider: PROVIDER,
            setting: "the service account key (private_key_pem)",
            why,
        };
        let key = EncodingKey::from_rsa_pem(cfg.private_key_pem.as_bytes()).map_err(|e| {
            bad_key(format!(
                "{e} (expected the service account's private_key: a PEM RSA private key)"
            ))
        })?;
        let base = http::base_url(PROVIDER, "url", &cfg.url)?;
        let fcm = Fcm {
            client: http::client(PROVIDER, false)?,
            key,
            client_email: cfg.client_email.trim().to_owned(),
            token_uri: http::url(PROVIDER, "token_uri", &cfg.token_uri)?,
            send_url: format!("{base}/v1/projects/{}/messages:send", cfg.project_id),
            token_renewal: TOKEN_RENEWAL,
            token: Mutex::new(None),
        };
        // jsonwebtoken only unwraps the PEM; ring reads the key when it signs.
        fcm.assertion(unix_secs())
            .map_err(|e| bad_key(format!("{e} (expected an RSA key of 2048 bits or more)")))?;
        Ok(fcm)
    }

    /// Replaces access tokens `before` their expiry instead of
    /// [`TOKEN_RENEWAL`] (tests change it).
    pub fn with_token_renewal(mut self, before: Duration) -> Fcm {
        self.token_renewal = before;
        self
    }

    /// The access token to send with: the cached one unless it expires
    /// within the renewal margin, else a new one from the token endpoint.
    async fn access_token(&self) -> Result<Arc<str>, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() + self.token_renewal < t.expires_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// FCM refused `token`: the next send gets a new one (unless another
    /// send already replaced it).
    async fn forget(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &*t.value == token) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<AccessToken, Outcome> {
        let assertion = self.assertion(unix_secs()).map_err(|e| Outcome::Retry {
            after: None,
            why: format!("{TOKEN_ENDPOINT}: cannot sign the assertion: {e}"),
        })?;
        let asked_at = Instant::now();
        let req = self
            .client
            .post(&self.token_uri)
            .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)]);
        let answer = http::send(TOKEN_ENDPOINT, req).await?;
        if !answer.status.is_success() {
            // A refused grant is a setting to fix; until then every send
            // is retried, and given up when it expires.
            let json = answer.json();
            let why = format!(
                "{TOKEN_ENDPOINT} {} {} {}",
                answer.status.as_u16(),
                json["error"].as_str().unwrap_or(""),
                json["error_description"].as_str().unwrap_or("")
            );
            return Err(answer.retry(why.trim_end().to_owned()));
        }
        let granted: Granted =
            serde_json::from_slice(&answer.body).map_err(|e| Outcome::Retry {
                after: None,
                why: format!("{TOKEN_ENDPOINT}: unreadable answer: {e}"),
            })?;
        Ok(AccessToken {
            value: granted.access_token.into(),
            expires_at: asked_at + Duration::from_secs(granted.expires_in),
        })
    }

    fn assertion(&self, iat: u64) -> jsonwebtoken::errors::Result<String> {
        let claims = Claims {
            iss: self.client_email.clone(),
            scope: SCOPE.to_owned(),
            aud: self.token_uri.clone(),
            iat,
            exp: iat + ASSERTION_LIFETIME,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
    }
}

#[async_trait::async_trait]
impl Provider for Fcm {
    async fn send(&self, n: &Notification) -> Outcome {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(no_token) => return no_token,
        };
        let req = self
            .client
            .post(&self.send_url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(message(n, now_ms()).to_string());
        let answer = match http::send(PROVIDER, req).await {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        let (outcome, token_refused) = outcome(&answer);
        if token_refused {
            self.forget(&token).await;
        }
        outcome
    }
}

/// The send request's body at `now_ms`. A withdrawal is a data message
/// only (nothing shown): the app removes the notification tagged with the
/// message id.
fn message(n: &Notification, now_ms: i64) -> serde_json::Value {
    // What is left of the notification's life, rounded up: "0s" would
    // mean "now or never" for one that still has a moment.
    let ttl_secs = ((n.expires_at_ms - now_ms).max(0) + 999) / 1000;
    let expiration = (n.expires_at_ms.max(0) / 1000).to_string();
    // FCM data values are strings.
    let data = json!({
        "conv_type": n.conv_type.to_string(),
        "conv_id": n.conv_id.to_string(),
        "seq": n.seq.to_string(),
        "message_id": n.message_id,
        "kind": kind_name(n.kind),
        "badge": n.badge.to_string(),
    });
    if n.kind == Kind::Withdraw {
        return json!({ "message": {
            "token": n.token,
            "data": data,
            "android": { "collapse_key": n.message_id, "ttl": format!("{ttl_secs}s") },
            "apns": {
                "headers": {
                    "apns-push-type": "background",
                    "apns-priority": "5",
                    "apns-expiration": expiration,
                },
                "payload": { "aps": { "content-available": 1 } },
            },
        }});
    }
    json!({ "message": {
        "token": n.token,
        "notification": { "title": n.title, "body": n.body },
        "data": data,
        "android": {
            "collapse_key": n.message_id,
            "ttl": format!("{ttl_secs}s"),
            "notification": {
                "tag": n.message_id,
                "notification_count": n.badge.min(i32::MAX as u64),
            },
        },
        "apns": {
            "headers": {
                "apns-collapse-id": n.message_id,
                "apns-expiration": expiration,
            },
            "payload": { "aps": { "badge": n.badge } },
        },
    }})
}

/// What FCM's answer means, and whether it refused the access token.
fn outcome(a: &Answer) -> (Outcome, bool) {
    let json = a.json();
    let error = &json["error"];
    let status = error["status"].as_str().unwrap_or("");
    let message = error["message"].as_str().unwrap_or("");
    let details = error["details"].as_array().map_or(&[][..], Vec::as_slice);
    let error_code = details
        .iter()
        .find_map(|d| d["errorCode"].as_str())
        .unwrap_or(status);
    let names_token = message.contains("registration token")
        || details.iter().any(|d| {
            let violations = d["fieldViolations"].as_array();
            violations.is_some_and(|v| v.iter().any(|f| f["field"] == "message.token"))
        });
    let code = a.status.as_u16();
    let why = || {
        let mut why = format!("{PROVIDER} {code} {error_code}")
            .trim_end()
            .to_owned();
        if !message.is_empty() {
            why = format!("{why}: {message}");
        }
        why
    };
    let outcome = match code {
        200..=299 => Outcome::Delivered,
        _ if error_code == "UNREGISTERED" => Outcome::Unregistered,
        400 if error_code == "INVALID_ARGUMENT" && names_token => Outcome::Unregistered,
        401 => return (a.retry(why()), true),
        429 | 500..=599 => a.retry(why()),
        _ => Outcome::Rejected(why()),
    };
    (outcome, false)
}

#[cfg(test)]
mod tests;
