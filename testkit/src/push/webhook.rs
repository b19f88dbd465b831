//! A receiver of tern's signed push webhook: it records every delivery with
//! whether its signature verified (`x-tern-signature: v1=<hex
//! HMAC-SHA256(secret, "<x-tern-timestamp>.<body>")>`), and answers 401 to
//! one that did not, as a receiver should.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{body, headers, json, unix_secs, Recorder, Refusal, Reply, Scripts, Server};

/// How far a delivery's timestamp may be from now (replays are refused).
const TOLERANCE_SECS: u64 = 300;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// Every header, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The body as sent (what the signature covers).
    pub body: Bytes,
    /// The body parsed (`Null` when it is not JSON).
    pub json: Value,
    /// The timestamp is recent and the signature is the secret's.
    pub verified: bool,
}

/// A local webhook receiver; see the module's documentation.
pub struct WebhookReceiver {
    server: Server,
    state: Arc<State>,
}

struct State {
    secret: String,
    scripts: Scripts,
    deliveries: Recorder<WebhookDelivery>,
}

impl WebhookReceiver {
    /// Starts a receiver with a new secret.
    pub async fn start() -> WebhookReceiver {
        let secret = format!("whsec-{:032x}", rand::thread_rng().gen::<u128>());
        let state = Arc::new(State {
            secret,
            scripts: Scripts::default(),
            deliveries: Recorder::new(),
        });
        let handler = state.clone();
        let server = Server::start(false, move |req| handle(handler.clone(), req)).await;
        WebhookReceiver { server, state }
    }

    /// Where to post (`http://127.0.0.1:<port>/push`).
    pub fn url(&self) -> String {
        format!("{}/push", self.server.url())
    }

    /// The secret the receiver verifies with.
    pub fn secret(&self) -> &str {
        &self.state.secret
    }

    /// Refuses every verified delivery whose body's `token` is `token`
    /// (410 for [`Refusal::Unregistered`], 400, 429 or 503).
    pub fn refuse(&self, token: &str, refusal: Refusal) {
        self.state.scripts.set(token, refusal, None);
    }

    /// Refuses the next `times` verified deliveries to `token`.
    pub fn refuse_times(&self, token: &str, refusal: Refusal, times: usize) {
        self.state.scripts.set(token, refusal, Some(times));
    }

    /// Every delivery so far, verified or not, refused or not.
    pub fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.state.deliveries.all()
    }

    /// Waits until `n` deliveries arrived (fails the test after 10 s).
    pub async fn wait_deliveries(&self, n: usize) -> Vec<WebhookDelivery> {
        self.state.deliveries.wait(n, "webhook deliveries").await
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    if req.method() != Method::POST || req.uri().path() != "/push" {
        return json(StatusCode::NOT_FOUND, &json!({"error": "not found"}), None);
    }
    let headers = headers(&req);
    let body = body(req).await.unwrap_or_default();
    let verified = verify(&state.secret, &headers, &body);
    let parsed = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let token = parsed["token"].as_str().unwrap_or_default().to_owned();
    state.deliveries.push(WebhookDelivery {
        headers,
        body,
        json: parsed,
        verified,
    });
    if !verified {
        let why = json!({"error": "bad signature"});
        return json(StatusCode::UNAUTHORIZED, &why, None);
    }
    match state.scripts.take(&token) {
        None => json(StatusCode::OK, &json!({"ok": true}), None),
        Some(Refusal::Unregistered) => json(StatusCode::GONE, &json!({"error": "gone"}), None),
        Some(Refusal::BadToken) => json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "bad token"}),
            None,
        ),
        Some(Refusal::TooManyRequests { retry_after }) => json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "slow down"}),
            retry_after,
        ),
        Some(Refusal::Unavailable { retry_after }) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "down"}),
            retry_after,
        ),
    }
}

/// Whether the timestamp is recent and the signature is `secret`'s.
fn verify(secret: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> bool {
    let Some(ts) = headers.get("x-tern-timestamp") else {
        return false;
    };
    let Ok(at) = ts.parse::<u64>() else {
        return false;
    };
    if unix_secs().abs_diff(at) > TOLERANCE_SECS {
        return false;
    }
    let Some(sig) = headers
        .get("x-tern-signature")
        .and_then(|s| s.strip_prefix("v1="))
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}
