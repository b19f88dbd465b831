//! Push settings: which providers are configured, and how notifications
//! read. A provider that is not configured is not used: its devices'
//! notifications are dropped (and counted).

use std::time::Duration;

/// How push notifications are sent; `Default`: none configured.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
    pub webhook: Option<PushWebhookConfig>,
    /// Show the message's text in the notification; otherwise "New
    /// message" (the default: a lock screen shows no content).
    pub preview: bool,
    /// How long a notification is worth sending: the provider's expiry,
    /// and when the sender stops retrying.
    pub max_age: Duration,
    /// How long a sender owns the notifications it claimed: one that died
    /// while sending leaves them to another sender after this.
    pub lease: Duration,
    /// Notifications in flight at once per logic node.
    pub concurrency: usize,
    /// How often a node looks for users whose list is ahead of their push
    /// cursor (what a node that died between commit and planning left).
    pub sweep: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            apns: None,
            fcm: None,
            webhook: None,
            preview: false,
            max_age: Duration::from_secs(3600),
            lease: Duration::from_secs(30),
            concurrency: 64,
            sweep: Duration::from_secs(5),
        }
    }
}

impl PushConfig {
    /// Whether any provider is configured (else nothing is planned).
    pub fn enabled(&self) -> bool {
        self.apns.is_some() || self.fcm.is_some() || self.webhook.is_some()
    }
}

/// APNs with token-based authentication (a `.p8` key).
#[derive(Clone)]
pub struct ApnsConfig {
    /// The `.p8` file's contents: a PKCS#8 PEM EC P-256 private key.
    pub key_pem: String,
    /// The key's 10-character Key ID (the JWT's `kid`).
    pub key_id: String,
    /// The 10-character Team ID (the JWT's `iss`).
    pub team_id: String,
    /// `apns-topic` for tokens registered without one (the app's bundle id).
    pub default_topic: String,
    /// Production endpoint; `https://api.push.apple.com`.
    pub url: String,
    /// Development endpoint; `https://api.sandbox.push.apple.com`.
    pub sandbox_url: String,
}

impl std::fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("default_topic", &self.default_topic)
            .field("url", &self.url)
            .field("sandbox_url", &self.sandbox_url)
            .finish_non_exhaustive()
    }
}

/// FCM HTTP v1 with a service account.
#[derive(Clone)]
pub struct FcmConfig {
    pub project_id: String,
    pub client_email: String,
    /// The service account's RSA private key (PEM, as in its JSON file).
    pub private_key_pem: String,
    /// Where access tokens come from; `https://oauth2.googleapis.com/token`.
    pub token_uri: String,
    /// The FCM endpoint; `https://fcm.googleapis.com`.
    pub url: String,
}

impl std::fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmConfig")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A generic signed webhook that receives WEBHOOK devices' notifications.
#[derive(Clone)]
pub struct PushWebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key of the signature header.
    pub secret: String,
}

impl std::fmt::Debug for PushWebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushWebhookConfig")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
