//! Local stand-ins of the push services, so that tern's push providers are
//! tested against servers that check what the real ones check: an APNs that
//! speaks only HTTP/2 and verifies the ES256 provider token, an FCM with its
//! OAuth token endpoint and HTTP v1 send endpoint, and a webhook receiver
//! that verifies the signature. Each listens on a free loopback port, records
//! what it accepted, and can be told to refuse a device token (dead, rate
//! limited, down) always or a number of times.
//!
//! This crate does not depend on tern-logic (tern-logic's tests depend on
//! it), so each stand-in hands out the parts of the provider's settings
//! (URL, key, ids) rather than the settings type.

mod apns;
mod fcm;
mod keys;
mod webhook;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use apns::{ApnsRequest, ApnsStandIn};
pub use fcm::{FcmMessage, FcmStandIn};
pub use keys::{other_rsa_key, p256_key, rsa_key, TestKey};
pub use webhook::{WebhookDelivery, WebhookReceiver};

/// How long `wait_*` waits for what a test expects before failing it.
const WAIT: Duration = Duration::from_secs(10);
/// Request bodies above this are refused (APNs allows 4 KiB, FCM 4 KiB of
/// data: this only keeps a broken client from filling memory).
const MAX_BODY: usize = 1024 * 1024;

/// What a stand-in answers for a device token instead of accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token is dead: APNs 410 `Unregistered`, FCM 404 `UNREGISTERED`,
    /// the webhook 410.
    Unregistered,
    /// The token is malformed: APNs 400 `BadDeviceToken`, FCM 400
    /// `INVALID_ARGUMENT` on `message.token`, the webhook 400.
    BadToken,
    /// Rate limited: 429 (APNs `TooManyRequests`, FCM `QUOTA_EXCEEDED`),
    /// with `Retry-After: <secs>` when given.
    TooManyRequests { retry_after: Option<u64> },
    /// Down: 503 (APNs `ServiceUnavailable`, FCM `UNAVAILABLE`), with
    /// `Retry-After: <secs>` when given.
    Unavailable { retry_after: Option<u64> },
}

/// Per device token: what to refuse, how often, and how many requests came.
#[derive(Default)]
struct Scripts {
    inner: Mutex<ScriptsInner>,
}

#[derive(Default)]
struct ScriptsInner {
    /// The refusal, and how many more times (`None`: always).
    refusals: HashMap<String, (Refusal, Option<usize>)>,
    requests: HashMap<String, usize>,
}

impl Scripts {
    fn set(&self, token: &str, refusal: Refusal, times: Option<usize>) {
        let mut s = self.inner.lock().expect("scripts lock poisoned");
        s.refusals.insert(token.to_owned(), (refusal, times));
    }

    /// Counts a request for `token`, whatever its answer.
    fn count(&self, token: &str) {
        let mut s = self.inner.lock().expect("scripts lock poisoned");
        *s.requests.entry(token.to_owned()).or_default() += 1;
    }

    /// The refusal this request for `token` gets, if any; uses one up.
    fn take(&self, token: &str) -> Option<Refusal> {
        let mut s = self.inner.lock().expect("scripts lock poisoned");
        let (refusal, left) = s.refusals.get_mut(token)?;
        let refusal = *refusal;
        match left {
            None => return Some(refusal),
            Some(0) => {}
            Some(n) => {
                *n -= 1;
                return Some(refusal);
            }
        }
        s.refusals.remove(token);
        None
    }

    fn requests(&self, token: &str) -> usize {
        let s = self.inner.lock().expect("scripts lock poisoned");
        s.requests.get(token).copied().unwrap_or(0)
    }
}

/// What a stand-in recorded, with a way to wait for it.
struct Recorder<T> {
    items: Mutex<Vec<T>>,
    count: watch::Sender<usize>,
}

impl<T: Clone> Recorder<T> {
    fn new() -> Recorder<T> {
        Recorder {
            items: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }
    }

    fn push(&self, item: T) {
        let mut items = self.items.lock().expect("recorder lock poisoned");
        items.push(item);
        self.count.send_replace(items.len());
    }

    fn all(&self) -> Vec<T> {
        self.items.lock().expect("recorder lock poisoned").clone()
    }

    /// Waits until at least `n` are recorded; fails the test after [`WAIT`].
    async fn wait(&self, n: usize, what: &str) -> Vec<T> {
        let mut rx = self.count.subscribe();
        // `wait_for` answers with a read guard on the count: let it go
        // before taking the items' lock, which `push` holds while it
        // updates the count (the other order deadlocks).
        let reached = tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok());
        if !reached {
            panic!(
                "waited {WAIT:?} for {n} {what}, got {}",
                self.items.lock().expect("recorder lock poisoned").len()
            );
        }
        self.all()
    }
}

type Reply = Response<Full<Bytes>>;

/// A stand-in's listening task; stops when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `handle` on a free loopback port: HTTP/2 with prior knowledge
    /// only when `http2_only` (a client speaking HTTP/1.1 gets no answer),
    /// else HTTP/1.1 and HTTP/2.
    async fn start<F, Fut>(http2_only: bool, handle: F) -> Server
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for a push stand-in");
        let addr = listener.local_addr().expect("a bound listener's address");
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with the stand-in.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let handle = handle.clone();
                let service = service_fn(move |req| {
                    let reply = handle(req);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                let io = TokioIo::new(stream);
                conns.spawn(async move {
                    // A connection that breaks is the client's business.
                    if http2_only {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await;
                    } else {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Server { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request's body, or `None` when it is unreadable or too large.
async fn body(req: Request<Incoming>) -> Option<Bytes> {
    let collected = Limited::new(req.into_body(), MAX_BODY).collect().await;
    collected.ok().map(|c| c.to_bytes())
}

/// A JSON answer, with `Retry-After` when given.
fn json(status: StatusCode, body: &serde_json::Value, retry_after: Option<u64>) -> Reply {
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(secs) = retry_after {
        resp = resp.header("retry-after", secs.to_string());
    }
    resp.body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// A request's headers, lower-case names, as text.
fn headers(req: &Request<Incoming>) -> std::collections::BTreeMap<String, String> {
    req.headers()
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_owned(), v)
        })
        .collect()
}

/// Seconds since the epoch, as JWTs count them.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token of an `authorization: Bearer <token>` header (the scheme is
/// case-insensitive).
fn bearer(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

#[cfg(test)]
mod tests;
