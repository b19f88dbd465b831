//! What the push providers share: their HTTP client (rustls with ring, the
//! system's roots, no proxy from the environment), a timeout on every
//! request, bounded reading of answers, `Retry-After`, the mapping of a
//! request that never got an answer to [`Outcome::Retry`], the error a
//! provider's construction reports for a bad setting, and the names the
//! payloads give a notification's kind.

use std::error::Error as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{RequestBuilder, StatusCode, Url};

use super::provider::{Kind, Outcome};

/// How long one request may take, answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers are small JSON documents; a provider's answer longer than this
/// is cut there (it can only be an error page).
const MAX_ANSWER: usize = 64 * 1024;

/// A provider's setting that cannot work; reported at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The signing key cannot sign.
    #[error("{provider}: {setting} is not usable: {why}")]
    Key {
        provider: &'static str,
        setting: &'static str,
        why: String,
    },
    /// Another setting is missing or malformed.
    #[error("{provider}: {setting} {why}")]
    Setting {
        provider: &'static str,
        setting: &'static str,
        why: String,
    },
    /// The TLS or HTTP stack cannot start (e.g. no usable root certificate).
    #[error("{provider}: cannot build the HTTP client")]
    Client {
        provider: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

/// A provider's HTTP client. `http2_only`: speak HTTP/2 and nothing else
/// (APNs): ALPN `h2` over TLS, prior knowledge over plain TCP.
pub(crate) fn client(
    provider: &'static str,
    http2_only: bool,
) -> Result<reqwest::Client, SetupError> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        // Where the providers are reached from is a deployment's setting,
        // not something HTTPS_PROXY in the environment changes unseen.
        .no_proxy()
        // A provider that redirects is misconfigured; a POST must not
        // silently become a GET elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tern/", env!("CARGO_PKG_VERSION")))
        .tcp_keepalive(Duration::from_secs(60));
    if http2_only {
        builder = builder.http2_prior_knowledge();
    }
    builder
        .build()
        .map_err(|source| SetupError::Client { provider, source })
}

/// A URL from the settings, checked: http(s) with a host.
pub(crate) fn url(
    provider: &'static str,
    setting: &'static str,
    url: &str,
) -> Result<String, SetupError> {
    let bad = |why: String| SetupError::Setting {
        provider,
        setting,
        why,
    };
    let url = url.trim();
    let parsed = Url::parse(url).map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return Err(bad(format!("{url:?} is not an http(s) URL")));
    }
    Ok(url.to_owned())
}

/// A base URL from the settings, checked, without its trailing `/`.
pub(crate) fn base_url(
    provider: &'static str,
    setting: &'static str,
    base: &str,
) -> Result<String, SetupError> {
    Ok(url(provider, setting, base)?
        .trim_end_matches('/')
        .to_owned())
}

/// A setting that must not be empty.
pub(crate) fn required(
    provider: &'static str,
    setting: &'static str,
    value: &str,
) -> Result<(), SetupError> {
    if value.trim().is_empty() {
        return Err(SetupError::Setting {
            provider,
            setting,
            why: "is empty".into(),
        });
    }
    Ok(())
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON; `Null` when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Retry later, after Retry-After when the provider said.
    pub fn retry(&self, why: String) -> Outcome {
        Outcome::Retry {
            after: self.retry_after,
            why,
        }
    }
}

/// Sends `req` and reads the answer; a request that got no answer (no
/// connection, a timeout, a broken stream) is `Err(Outcome::Retry)`.
pub(crate) async fn send(provider: &str, req: RequestBuilder) -> Result<Answer, Outcome> {
    let failed = |e: reqwest::Error| Outcome::Retry {
        after: None,
        why: format!("{provider}: {}", describe(&e)),
    };
    let mut resp = req.send().await.map_err(failed)?;
    let status = resp.status();
    let retry_after = crate::webhooks::retry_after(resp.headers());
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(Answer {
        status,
        retry_after,
        body: body.freeze(),
    })
}

/// Why a request got no answer, with the causes reqwest wraps.
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("no answer within {}s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A notification's kind in payloads: `alert` or `withdraw`.
pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Alert => "alert",
        Kind::Withdraw => "withdraw",
    }
}

/// The time now in whole seconds since the epoch, as JWTs and the
/// webhook's timestamp count it.
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_trimmed() {
        assert_eq!(
            base_url("APNs", "url", "https://api.push.apple.com/").unwrap(),
            "https://api.push.apple.com"
        );
        for bad in ["", "api.push.apple.com", "ftp://x", "https://"] {
            let err = base_url("APNs", "url", bad).expect_err(bad);
            assert!(err.to_string().starts_with("APNs: url "), "{err}");
        }
        assert!(required("FCM", "project_id", " ").is_err());
    }
}
