//! Push notification settings of a logic node: which providers, with
//! which credentials, and how notifications read. Credentials come from
//! files (an APNs `.p8` key, an FCM service account JSON) and are checked
//! at start, so a bad key stops the node instead of dropping pushes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use tern_logic::push::config::{ApnsConfig, FcmConfig, PushConfig, PushWebhookConfig};

#[derive(Clone, Args)]
pub struct PushArgs {
    /// APNs: the `.p8` signing key (token-based authentication). With
    /// --apns-key-id, --apns-team-id and --apns-topic, turns APNs on.
    #[arg(long, env = "TERN_APNS_KEY_FILE", value_name = "P8")]
    pub apns_key_file: Option<PathBuf>,
    /// APNs: the key's 10-character Key ID.
    #[arg(long, env = "TERN_APNS_KEY_ID")]
    pub apns_key_id: Option<String>,
    /// APNs: the 10-character Team ID.
    #[arg(long, env = "TERN_APNS_TEAM_ID")]
    pub apns_team_id: Option<String>,
    /// APNs: the app's bundle id, for tokens registered without a topic.
    #[arg(long, env = "TERN_APNS_TOPIC")]
    pub apns_topic: Option<String>,
    /// APNs production endpoint.
    #[arg(
        long,
        env = "TERN_APNS_URL",
        default_value = "https://api.push.apple.com"
    )]
    pub apns_url: String,
    /// APNs development endpoint (tokens registered with apns_sandbox).
    #[arg(
        long,
        env = "TERN_APNS_SANDBOX_URL",
        default_value = "https://api.sandbox.push.apple.com"
    )]
    pub apns_sandbox_url: String,
    /// FCM: the service account's JSON key file. Turns FCM on.
    #[arg(long, env = "TERN_FCM_SERVICE_ACCOUNT", value_name = "JSON")]
    pub fcm_service_account: Option<PathBuf>,
    /// FCM endpoint.
    #[arg(
        long,
        env = "TERN_FCM_URL",
        default_value = "https://fcm.googleapis.com"
    )]
    pub fcm_url: String,
    /// Where WEBHOOK devices' notifications are POSTed. Turns it on; needs
    /// --push-webhook-secret.
    #[arg(long, env = "TERN_PUSH_WEBHOOK_URL")]
    pub push_webhook_url: Option<String>,
    /// The HMAC-SHA256 key that signs each push webhook request.
    #[arg(long, env = "TERN_PUSH_WEBHOOK_SECRET", hide_env_values = true)]
    pub push_webhook_secret: Option<String>,
    /// Show the message's text in notifications (default: "New message").
    #[arg(long, env = "TERN_PUSH_PREVIEW")]
    pub push_preview: bool,
    /// How long a notification is worth sending (its expiry at the
    /// provider, and when retries stop).
    #[arg(long, env = "TERN_PUSH_MAX_AGE_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(10..=2_419_200))]
    pub push_max_age_secs: u64,
    /// How long a node owns the notifications it took to send: if it dies
    /// sending them, another node sends them after this. Under 20 s (twice
    /// a request's timeout), a slow answer can have one sent twice.
    #[arg(long, env = "TERN_PUSH_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub push_lease_secs: u64,
    /// How often a node looks for lists ahead of their push cursor (what a
    /// node that died between a commit and its planning left): up to
    /// 20,000 cursors and 500 such lists a look, going on where the last
    /// stopped. With N push-enabled users, one is found within N / 20,000
    /// looks.
    #[arg(long, env = "TERN_PUSH_SWEEP_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub push_sweep_ms: u64,
    /// Notifications in flight at once on this node.
    #[arg(long, env = "TERN_PUSH_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub push_concurrency: u32,
}

/// Without the webhook's secret (the key files are paths).
impl std::fmt::Debug for PushArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushArgs")
            .field("apns_key_file", &self.apns_key_file)
            .field("apns_topic", &self.apns_topic)
            .field("fcm_service_account", &self.fcm_service_account)
            .field("push_webhook_url", &self.push_webhook_url)
            .field("push_preview", &self.push_preview)
            .finish_non_exhaustive()
    }
}

/// The fields of a service account key file that FCM needs.
#[derive(serde::Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl PushArgs {
    /// The push settings; an error names the flag or file that is wrong.
    pub fn config(&self) -> anyhow::Result<PushConfig> {
        let apns = match &self.apns_key_file {
            None => None,
            Some(path) => {
                let key_pem = std::fs::read_to_string(path)
                    .with_context(|| format!("--apns-key-file {}", path.display()))?;
                let need = |v: &Option<String>, flag: &str| {
                    v.clone()
                        .filter(|v| !v.trim().is_empty())
                        .with_context(|| format!("--apns-key-file needs {flag}"))
                };
                Some(ApnsConfig {
                    key_pem,
                    key_id: need(&self.apns_key_id, "--apns-key-id")?,
                    team_id: need(&self.apns_team_id, "--apns-team-id")?,
                    default_topic: need(&self.apns_topic, "--apns-topic")?,
                    url: self.apns_url.trim_end_matches('/').to_owned(),
                    sandbox_url: self.apns_sandbox_url.trim_end_matches('/').to_owned(),
                })
            }
        };
        let fcm = match &self.fcm_service_account {
            None => None,
            Some(path) => {
                let what = || format!("--fcm-service-account {}", path.display());
                let text = std::fs::read_to_string(path).with_context(what)?;
                let sa: ServiceAccount = serde_json::from_str(&text).with_context(what)?;
                Some(FcmConfig {
                    project_id: sa.project_id,
                    client_email: sa.client_email,
                    private_key_pem: sa.private_key,
                    token_uri: sa.token_uri,
                    url: self.fcm_url.trim_end_matches('/').to_owned(),
                })
            }
        };
        let webhook = match (&self.push_webhook_url, &self.push_webhook_secret) {
            (None, _) => None,
            (Some(url), Some(secret)) if !secret.is_empty() => Some(PushWebhookConfig {
                url: url.clone(),
                secret: secret.clone(),
            }),
            (Some(_), _) => anyhow::bail!("--push-webhook-url needs --push-webhook-secret"),
        };
        let cfg = PushConfig {
            apns,
            fcm,
            webhook,
            preview: self.push_preview,
            max_age: Duration::from_secs(self.push_max_age_secs),
            concurrency: self.push_concurrency as usize,
            lease: Duration::from_secs(self.push_lease_secs),
            sweep: Duration::from_millis(self.push_sweep_ms),
        };
        // The keys must parse now, not at the first notification.
        tern_logic::push::Providers::from_config(&cfg).map_err(anyhow::Error::msg)?;
        if cfg.enabled() && cfg.lease < 2 * tern_logic::push::http::TIMEOUT {
            tracing::warn!(
                lease_secs = self.push_lease_secs,
                "--push-lease-secs is under twice a push request's timeout (10 s): \
                 a notification whose provider is slow to answer may be claimed \
                 and sent again meanwhile (devices drop the repeat by message id)"
            );
        }
        Ok(cfg)
    }
}
