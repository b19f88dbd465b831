//! Webhook settings of a logic node: the before-send moderation hook. The
//! URL and secret are checked at start, so a typo stops the node instead
//! of failing (or, failing open, skipping) moderation of every message.

use std::time::Duration;

use clap::{Args, ValueEnum};

use tern_logic::{BeforeSendConfig, FailPolicy};

/// What a send becomes when the before-send hook gives no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Store the message as sent (logged and counted).
    Open,
    /// Store nothing; the sender gets UNAVAILABLE and retries.
    Closed,
}

#[derive(Debug, Clone, Args)]
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
