//! Outbound webhooks: calls a logic node makes to the app's own backend.
//! Every request is signed the same way ([`signing`]), so one receiver
//! check serves them all. The before-send hook ([`BeforeSend`]) lets the
//! backend allow, reject or rewrite each message before it is stored.

pub mod after_send;
mod before_send;
mod retry_after;
pub mod signing;

pub(crate) use before_send::{
    decide, encode as before_send_content, BeforeSend, Decision, HookError, HookRequest, Verdict,
};
pub(crate) use retry_after::retry_after;

use std::time::Duration;

/// What a send becomes when the before-send hook gives no usable answer
/// (an error status, a body that does not parse, a timeout, no connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPolicy {
    /// Store the message as it was sent (logged and counted): a hook
    /// outage does not stop the chat.
    Open,
    /// Store nothing and answer UNAVAILABLE (retry later): nothing is
    /// stored unmoderated.
    Closed,
}

/// Settings of the before-send hook.
#[derive(Clone)]
pub struct BeforeSendConfig {
    /// Where each send is POSTed (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key of the request signature.
    pub secret: String,
    /// How long one call may take, connecting included; past it the fail
    /// policy decides.
    pub timeout: Duration,
    /// What happens when the hook gives no usable answer.
    pub fail: FailPolicy,
    /// Also call it for sends of the admin API (as a user or as the system).
    pub admin: bool,
}

/// The default of [`BeforeSendConfig::timeout`].
pub const DEFAULT_BEFORE_SEND_TIMEOUT: Duration = Duration::from_millis(1000);
/// The shortest and longest [`BeforeSendConfig::timeout`] accepted.
pub const BEFORE_SEND_TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_millis(30_000);

impl BeforeSendConfig {
    /// A hook at `url` signed with `secret`, with the defaults: a 1 s
    /// timeout, failing open, not called for the admin API.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> BeforeSendConfig {
        BeforeSendConfig {
            url: url.into(),
            secret: secret.into(),
            timeout: DEFAULT_BEFORE_SEND_TIMEOUT,
            fail: FailPolicy::Open,
            admin: false,
        }
    }

    /// Checks the settings and that an HTTP client can be made for them,
    /// so that a bad URL stops a node at start instead of failing sends.
    pub fn check(&self) -> Result<(), String> {
        BeforeSend::new(self.clone()).map(drop)
    }
}

impl std::fmt::Debug for BeforeSendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeforeSendConfig")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("fail", &self.fail)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}
