//! The before-send hook: each SEND that passed tern's own checks is POSTed
//! to the app's backend, which answers allow, reject or replace. This
//! module is the HTTP side (one pooled client per node, the request, the
//! answer) and the pure decision; SEND applies it (messages/moderation.rs).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{BeforeSendConfig, FailPolicy, BEFORE_SEND_TIMEOUT_RANGE};

/// Longest reason kept from a reject, in characters; the rest is cut.
pub(crate) const MAX_REASON_CHARS: usize = 256;
/// How long an idle pooled connection to the hook is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// What the hook is sent, as JSON.
#[derive(Debug, Serialize)]
pub(crate) struct HookRequest<'a> {
    pub sender_id: u64,
    /// 0 when the admin API sends.
    pub sender_device_id: u64,
    /// `user`, `group`, or `system` (the admin API's system messages to a user).
    pub conv_type: &'static str,
    /// The receiving user or group.
    pub conv_id: u64,
    pub content_type: u32,
    /// Base64 (standard, padded).
    pub content: String,
    pub mentions: &'a [u64],
    /// Empty when the sender gave none.
    pub client_msg_id: &'a str,
}

/// The hook's answer to one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Store it as sent.
    Allow,
    /// Store nothing; the sender gets REJECTED with these.
    Reject { code: u32, reason: String },
    /// Store this content instead (and this content type, when given).
    Replace {
        content: Bytes,
        content_type: Option<u32>,
    },
}

/// Why the hook gave no usable answer; the fail policy decides what then.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HookError {
    #[error("no HTTP client: {0}")]
    Unusable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("answer does not parse: {0}")]
    Parse(String),
    #[error("replacement refused: {0}")]
    Replacement(String),
}

/// What becomes of a send, from the hook's answer and the fail policy.
#[derive(Debug)]
pub(crate) enum Decision {
    Allow,
    Replace {
        content: Bytes,
        content_type: Option<u32>,
    },
    Reject {
        code: u32,
        reason: String,
    },
    /// No usable answer; stored as sent.
    FailOpen(HookError),
    /// No usable answer; refused with UNAVAILABLE.
    FailClosed(HookError),
}

impl Decision {
    /// The metrics label.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow => "allowed",
            Decision::Replace { .. } => "replaced",
            Decision::Reject { .. } => "rejected",
            Decision::FailOpen(_) => "failed_open",
            Decision::FailClosed(_) => "failed_closed",
        }
    }
}

/// Applies the fail policy to an answer.
pub(crate) fn decide(policy: FailPolicy, answer: Result<Verdict, HookError>) -> Decision {
    match answer {
        Ok(Verdict::Allow) => Decision::Allow,
        Ok(Verdict::Reject { code, reason }) => Decision::Reject { code, reason },
        Ok(Verdict::Replace {
            content,
            content_type,
        }) => Decision::Replace {
            content,
            content_type,
        },
        Err(e) => match policy {
            FailPolicy::Open => Decision::FailOpen(e),
            FailPolicy::Closed => Decision::FailClosed(e),
        },
    }
}

/// The JSON of a 200 answer.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Answer {
    Allow,
    // A reject without a code or reason still rejects: treating it as a
    // broken answer would let the message through under `open`.
    Reject {
        #[serde(default)]
        code: u32,
        #[serde(default)]
        reason: String,
    },
    Replace {
        content: String,
        #[serde(default)]
        content_type: Option<u32>,
    },
}

/// Reads the body of a 200 answer.
pub(crate) fn parse(body: &[u8]) -> Result<Verdict, HookError> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| HookError::Parse(e.to_string()))?;
    Ok(match answer {
        Answer::Allow => Verdict::Allow,
        Answer::Reject { code, reason } => Verdict::Reject {
            code,
            reason: cut(reason, MAX_REASON_CHARS),
        },
        Answer::Replace {
            content,
            content_type,
        } => Verdict::Replace {
            content: BASE64
                .decode(content)
                .map_err(|e| HookError::Parse(format!("content is not base64: {e}")))?
                .into(),
            content_type,
        },
    })
}

/// `s` cut to at most `max` characters.
fn cut(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
    }
    s
}

/// The hook of one logic node: its settings and one pooled HTTP client for
/// every call.
pub(crate) struct BeforeSend {
    cfg: BeforeSendConfig,
    /// The client and the parsed URL, or why there is none (every call
    /// then fails, and the fail policy decides).
    http: Result<(reqwest::Client, reqwest::Url), String>,
}

impl BeforeSend {
    /// The hook for `cfg`; an error says which setting is unusable.
    pub(crate) fn new(cfg: BeforeSendConfig) -> Result<BeforeSend, String> {
        let url = reqwest::Url::parse(&cfg.url)
            .map_err(|e| format!("before-send URL {:?}: {e}", cfg.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("before-send URL {:?}: not http(s)", cfg.url));
        }
        if cfg.secret.is_empty() {
            return Err("the before-send hook needs a secret".into());
        }
        if !BEFORE_SEND_TIMEOUT_RANGE.contains(&cfg.timeout) {
            return Err(format!(
                "before-send timeout {:?} is outside {:?}",
                cfg.timeout, BEFORE_SEND_TIMEOUT_RANGE
            ));
        }
        let client = reqwest::Client::builder()
            // The app's own backend, reached directly: no proxy from the
            // environment, no redirect of a signed request elsewhere.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout)
            .pool_idle_timeout(POOL_IDLE)
            .user_agent(concat!("tern/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("before-send HTTP client: {e}"))?;
        Ok(BeforeSend {
            cfg,
            http: Ok((client, url)),
        })
    }

    /// The hook for `cfg`, even if it is unusable: then every call fails
    /// and the fail policy decides, so a closed policy never lets a
    /// message through unmoderated. The command line checks first.
    pub(crate) fn start(cfg: BeforeSendConfig) -> BeforeSend {
        match BeforeSend::new(cfg.clone()) {
            Ok(hook) => hook,
            Err(e) => {
                tracing::error!(error = %e, "before-send hook unusable; every send meets its fail policy");
                BeforeSend { cfg, http: Err(e) }
            }
        }
    }

    pub(crate) fn config(&self) -> &BeforeSendConfig {
        &self.cfg
    }

    /// Asks the hook about one send; an answer body over `max_body` bytes
    /// is refused. Bounded by the configured timeout, connecting included.
    pub(crate) async fn call(
        &self,
        req: &HookRequest<'_>,
        max_body: usize,
    ) -> Result<Verdict, HookError> {
        let (client, url) = self
            .http
            .as_ref()
            .map_err(|e| HookError::Unusable(e.clone()))?;
        let body = serde_json::to_vec(req).expect("numbers and strings serialise");
        let timestamp = tern_public::time::now_ms().div_euclid(1000);
        let signature = signing::sign(self.cfg.secret.as_bytes(), timestamp, &body);
        let exchange = async {
            let mut resp = client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await
                .map_err(request_error)?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(HookError::Status(resp.status().as_u16()));
            }
            if resp.content_length().is_some_and(|n| n > max_body as u64) {
                return Err(HookError::TooLarge(max_body));
            }
            let mut answer = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(request_error)? {
                if answer.len() + chunk.len() > max_body {
                    return Err(HookError::TooLarge(max_body));
                }
                answer.extend_from_slice(&chunk);
            }
            parse(&answer)
        };
        tokio::time::timeout(self.cfg.timeout, exchange)
            .await
            .map_err(|_| HookError::Timeout(self.cfg.timeout))?
    }
}

/// A transport failure with its causes (connection refused, ...), without
/// the URL, which may carry a credential.
fn request_error(e: reqwest::Error) -> HookError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    HookError::Request(text)
}

/// The base64 of `content`, for [`HookRequest::content`].
pub(crate) fn encode(content: &[u8]) -> String {
    BASE64.encode(content)
}

#[cfg(test)]
mod tests;
