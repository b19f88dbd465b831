//! What the scenarios share beyond the helpers in `mod.rs`: failures of the
//! load counted by code (so one refused request is a figure in the report,
//! not the end of the run), and setup phases that show their progress.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{stream, StreamExt, TryStreamExt};
use hyper::StatusCode;
use tokio::task::JoinHandle;

use tern_client::ClientError;

use super::{Creds, PASSWORD};

/// Registrations and logins in flight at once (each costs the server a
/// password hash).
const PARALLEL: usize = 16;

/// Failures of the load itself, counted by the server's reply code name
/// (`RATE_LIMITED`), the HTTP status (`"503"`), or, for failures without a
/// code, the error's text.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Errors(BTreeMap<String, u64>);

// === impl Errors ===

impl Errors {
    /// Counts a failed client request.
    pub(crate) fn client(&mut self, e: &ClientError) {
        let key = e
            .code()
            .map_or_else(|| e.to_string(), |c| c.name().to_owned());
        self.add(key);
    }

    /// Counts an HTTP answer that was not 2xx.
    pub(crate) fn status(&mut self, status: StatusCode) {
        self.add(status.as_u16().to_string());
    }

    /// Counts a failure under `key`.
    pub(crate) fn add(&mut self, key: String) {
        *self.0.entry(key).or_default() += 1;
    }

    pub(crate) fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `{"RATE_LIMITED": 3, "503": 1}`, for `--json`.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!(self.0)
    }
}

/// The same shape as `direct`'s `errors:` line: `{"RATE_LIMITED": 3}`.
impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

// === phases ===

/// Runs `work` bounded by `within`, with a [`super::progress`] bar counting
/// `done` against that bound (hidden when `quiet`).
pub(crate) async fn phase<T>(
    label: &'static str,
    within: Duration,
    done: Arc<AtomicU64>,
    quiet: bool,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let bar = super::progress(label, within, done, quiet);
    let result = tokio::time::timeout(within, work).await;
    stop(bar).await;
    result.with_context(|| format!("{label}: not done within {within:?} (--timeout-secs)"))?
}

/// Stops a [`super::progress`] bar and waits until it is cleared, so that
/// what is printed next is not drawn over.
pub(crate) async fn stop(bar: JoinHandle<()>) {
    bar.abort();
    let _ = bar.await;
}

/// Creates `users` users named `<prefix><n>` with `devices` devices each
/// (one from REGISTER, the rest from LOGIN), with a bar counting devices,
/// bounded by `within`: [`PARALLEL`] devices at a time, so a few users
/// with many devices move the bar (and finish sooner). The first device of
/// every user comes first, in user order.
pub(crate) async fn register_devices(
    addr: SocketAddr,
    prefix: &str,
    users: u32,
    devices: u32,
    within: Duration,
    quiet: bool,
) -> anyhow::Result<Vec<Creds>> {
    let done = Arc::new(AtomicU64::new(0));
    let names: Vec<String> = (0..users).map(|n| format!("{prefix}{n}")).collect();
    let device = |name: &String, first: bool| {
        let done = done.clone();
        let name = name.clone();
        async move {
            let (client, _events) = crate::bench::connect(addr).await?;
            let auth = if first {
                client.register(&name, PASSWORD, &name).await?
            } else {
                client.login(&name, PASSWORD, None).await?
            };
            done.fetch_add(1, Ordering::Relaxed);
            anyhow::Ok(Creds {
                user_id: auth.user_id,
                device_id: auth.device_id,
                token: auth.token,
            })
        }
    };
    let work = async {
        let mut creds: Vec<Creds> = stream::iter(&names)
            .map(|name| device(name, true))
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let logins = names
            .iter()
            .flat_map(|name| std::iter::repeat_n(name, devices.saturating_sub(1) as usize));
        let more: Vec<Creds> = stream::iter(logins)
            .map(|name| device(name, false))
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        creds.extend(more);
        anyhow::Ok(creds)
    };
    phase("devices", within, done.clone(), quiet, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_by_code_name_and_status() {
        let mut errors = Errors::default();
        errors.client(&ClientError::Server {
            code: tern_public::Code::RateLimited.as_i32(),
            message: "slow down".into(),
            retry_after: None,
            payload: Default::default(),
        });
        errors.client(&ClientError::Timeout);
        errors.status(StatusCode::SERVICE_UNAVAILABLE);
        let mut other = Errors::default();
        other.status(StatusCode::SERVICE_UNAVAILABLE);
        errors.merge(&other);
        assert_eq!(errors.total(), 4);
        assert_eq!(
            errors.json(),
            serde_json::json!({
                "RATE_LIMITED": 1,
                "503": 2,
                "no reply within the request timeout": 1,
            })
        );
        assert_eq!(Errors::default().to_string(), "{}");
    }
}
