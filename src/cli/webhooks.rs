//! Webhook settings of a logic node: the before-send moderation hook and
//! the after-send webhook. URLs and secrets are checked at start, so a typo
//! stops the node instead of failing (or, failing open, skipping)
//! moderation of every message.

use std::time::Duration;

use clap::{Args, ValueEnum};

use tern_logic::webhooks::after_send::AfterSendConfig;
use tern_logic::{BeforeSendConfig, FailPolicy};

/// What a send becomes when the before-send hook gives no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Store the message as sent (logged and counted).
    Open,
    /// Store nothing; the sender gets UNAVAILABLE and retries.
    Closed,
}

#[derive(Clone, Args)]
pub struct WebhookArgs {
    /// Where each SEND is POSTed for moderation before it is stored
    /// (allow, reject or replace). Turns the hook on; needs
    /// --before-send-secret.
    #[arg(long, env = "TERN_BEFORE_SEND_URL")]
    pub before_send_url: Option<String>,
    /// The HMAC-SHA256 key that signs each before-send request.
    #[arg(long, env = "TERN_BEFORE_SEND_SECRET", hide_env_values = true)]
    pub before_send_secret: Option<String>,
    /// How long one before-send call may take; then --before-send-fail decides.
    #[arg(long, env = "TERN_BEFORE_SEND_TIMEOUT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=30_000))]
    pub before_send_timeout_ms: u64,
    /// What a send becomes when the hook gives no usable answer (an error,
    /// a timeout, an answer that does not parse).
    #[arg(
        long,
        env = "TERN_BEFORE_SEND_FAIL",
        value_enum,
        default_value = "open"
    )]
    pub before_send_fail: FailMode,
    /// Also call the hook for messages the admin API sends.
    #[arg(long, env = "TERN_BEFORE_SEND_ADMIN")]
    pub before_send_admin: bool,
    /// Where every stored message and event is POSTed, in batches, after it
    /// is stored. Turns it on; needs --after-send-secret.
    #[arg(long, env = "TERN_AFTER_SEND_URL")]
    pub after_send_url: Option<String>,
    /// The HMAC-SHA256 key that signs each after-send request, until one is
    /// rotated through the admin API.
    #[arg(long, env = "TERN_AFTER_SEND_SECRET", hide_env_values = true)]
    pub after_send_secret: Option<String>,
    /// Messages per after-send request.
    #[arg(long, env = "TERN_AFTER_SEND_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub after_send_batch: u32,
    /// Messages waiting longer than this for the after-send webhook are
    /// dropped (and counted).
    #[arg(long, env = "TERN_AFTER_SEND_MAX_AGE_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub after_send_max_age_secs: u64,
}

/// Without the secrets.
impl std::fmt::Debug for WebhookArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookArgs")
            .field("before_send_url", &self.before_send_url)
            .field("before_send_timeout_ms", &self.before_send_timeout_ms)
            .field("before_send_fail", &self.before_send_fail)
            .field("after_send_url", &self.after_send_url)
            .finish_non_exhaustive()
    }
}

impl WebhookArgs {
    /// A hook call must end before connect gives up on the SEND that
    /// waits for it, or the fail policy never gets to answer.
    pub fn check_timeout(&self, request_timeout: Duration) -> anyhow::Result<()> {
        let hook = Duration::from_millis(self.before_send_timeout_ms);
        if self.before_send_url.is_some() && hook >= request_timeout {
            anyhow::bail!(
                "--before-send-timeout-ms ({}) must be below --request-timeout-secs ({})",
                self.before_send_timeout_ms,
                request_timeout.as_secs()
            );
        }
        Ok(())
    }

    /// The before-send settings, if the hook is on; an error names the
    /// flag that is wrong.
    pub fn before_send(&self) -> anyhow::Result<Option<BeforeSendConfig>> {
        let (url, secret) = match (&self.before_send_url, &self.before_send_secret) {
            (None, _) => return Ok(None),
            (Some(url), Some(secret)) if !secret.is_empty() => (url, secret),
            (Some(_), _) => anyhow::bail!("--before-send-url needs --before-send-secret"),
        };
        let cfg = BeforeSendConfig {
            timeout: Duration::from_millis(self.before_send_timeout_ms),
            fail: match self.before_send_fail {
                FailMode::Open => FailPolicy::Open,
                FailMode::Closed => FailPolicy::Closed,
            },
            admin: self.before_send_admin,
            ..BeforeSendConfig::new(url.clone(), secret.clone())
        };
        cfg.check()
            .map_err(|e| anyhow::anyhow!("--before-send-url: {e}"))?;
        Ok(Some(cfg))
    }
}

impl WebhookArgs {
    /// The after-send settings, if it is on; an error names the flag.
    pub fn after_send(&self) -> anyhow::Result<Option<AfterSendConfig>> {
        let (url, secret) = match (&self.after_send_url, &self.after_send_secret) {
            (None, _) => return Ok(None),
            (Some(url), Some(secret)) if !secret.is_empty() => (url, secret),
            (Some(_), _) => anyhow::bail!("--after-send-url needs --after-send-secret"),
        };
        let parsed = is_http_url(url);
        if !parsed {
            anyhow::bail!("--after-send-url {url:?}: an http:// or https:// URL");
        }
        Ok(Some(AfterSendConfig {
            url: url.clone(),
            secret: secret.clone(),
            batch_max: self.after_send_batch,
            max_age: Duration::from_secs(self.after_send_max_age_secs),
        }))
    }
}

/// A URL the HTTP client can POST to.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}
