//! A stand-in of APNs's provider API, checking what Apple's "Sending
//! notification requests to APNs" and "Establishing a token-based
//! connection to APNs" ask of a request: HTTP/2 only, `POST
//! /3/device/<hex token>`, a valid ES256 provider token (right key, `kid`,
//! `iss`, not older than an hour), `apns-topic`, `apns-push-type`, and a
//! JSON payload with `aps`. Errors are Apple's: a status and
//! `{"reason": …}`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, Version};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::{bearer, body, headers, json, unix_secs, Recorder, Refusal, Reply, Scripts, Server};

const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";
const TOPIC: &str = "com.example.tern";
/// Apple refuses provider tokens older than this.
const MAX_TOKEN_AGE: u64 = 3600;
/// APNs's payload limit for alerts.
const MAX_PAYLOAD: usize = 4096;
const PUSH_TYPES: &[&str] = &[
    "alert",
    "background",
    "complication",
    "fileprovider",
    "liveactivity",
    "location",
    "mdm",
    "pushtotalk",
    "voip",
    "widgets",
];

/// A notification APNs accepted.
#[derive(Debug, Clone)]
pub struct ApnsRequest {
    /// The device token of the path.
    pub token: String,
    /// Every header, lower-case names (`apns-collapse-id`, …).
    pub headers: BTreeMap<String, String>,
    /// The parsed payload.
    pub body: Value,
    /// The provider token it was sent with.
    pub jwt: String,
    pub version: Version,
}

/// A local APNs; see the module's documentation.
pub struct ApnsStandIn {
    server: Server,
    state: Arc<State>,
}

struct State {
    key: super::TestKey,
    public: DecodingKey,
    topics: Mutex<HashSet<String>>,
    scripts: Scripts,
    accepted: Recorder<ApnsRequest>,
    /// Provider tokens presented so far, in order, each once.
    seen: Mutex<Vec<String>>,
    /// Provider tokens to call expired.
    expired: Mutex<HashSet<String>>,
}

impl ApnsStandIn {
    /// Starts a stand-in with a new signing key of its own.
    pub async fn start() -> ApnsStandIn {
        ApnsStandIn::start_with_key(super::p256_key()).await
    }

    /// Starts a stand-in that trusts `key` (e.g. another stand-in's
    /// [`key`](Self::key), as production and sandbox trust the same key).
    pub async fn start_with_key(key: super::TestKey) -> ApnsStandIn {
        let public =
            DecodingKey::from_ec_pem(key.public_pem.as_bytes()).expect("a P-256 public key in PEM");
        let state = Arc::new(State {
            key,
            public,
            topics: Mutex::new(HashSet::from([TOPIC.to_owned()])),
            scripts: Scripts::default(),
            accepted: Recorder::new(),
            seen: Mutex::new(Vec::new()),
            expired: Mutex::new(HashSet::new()),
        });
        let handler = state.clone();
        let server = Server::start(true, move |req| handle(handler.clone(), req)).await;
        ApnsStandIn { server, state }
    }

    /// The base URL (`http://127.0.0.1:<port>`): APNs's `url` and
    /// `sandbox_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The `.p8` key the provider must sign with (PKCS#8 PEM).
    pub fn key_pem(&self) -> &str {
        &self.state.key.private_pem
    }

    /// The key it trusts.
    pub fn key(&self) -> &super::TestKey {
        &self.state.key
    }

    /// The key's id (`kid`).
    pub fn key_id(&self) -> &str {
        KEY_ID
    }

    /// The team id (`iss`).
    pub fn team_id(&self) -> &str {
        TEAM_ID
    }

    /// The app's bundle id: the one topic accepted until [`allow_topic`](Self::allow_topic).
    pub fn topic(&self) -> &str {
        TOPIC
    }

    /// Accepts notifications for another of the team's apps.
    pub fn allow_topic(&self, topic: &str) {
        let mut topics = self.state.topics.lock().expect("topics lock poisoned");
        topics.insert(topic.to_owned());
    }

    /// Refuses every request for `token`.
    pub fn refuse(&self, token: &str, refusal: Refusal) {
        self.state.scripts.set(token, refusal, None);
    }

    /// Refuses the next `times` valid requests for `token`, then accepts.
    pub fn refuse_times(&self, token: &str, refusal: Refusal, times: usize) {
        self.state.scripts.set(token, refusal, Some(times));
    }

    /// Calls every provider token presented so far expired
    /// (`ExpiredProviderToken`), as Apple does after an hour.
    pub fn expire_seen_tokens(&self) {
        let seen = self.state.seen.lock().expect("seen lock poisoned").clone();
        let mut expired = self.state.expired.lock().expect("expired lock poisoned");
        expired.extend(seen);
    }

    /// Requests for `token`, whatever their answer.
    pub fn requests(&self, token: &str) -> usize {
        self.state.scripts.requests(token)
    }

    /// The distinct provider tokens presented, first seen first.
    pub fn provider_tokens(&self) -> Vec<String> {
        self.state.seen.lock().expect("seen lock poisoned").clone()
    }

    /// The notifications accepted so far.
    pub fn accepted(&self) -> Vec<ApnsRequest> {
        self.state.accepted.all()
    }

    /// Waits until `n` notifications are accepted (fails the test after 10 s).
    pub async fn wait_accepted(&self, n: usize) -> Vec<ApnsRequest> {
        self.state
            .accepted
            .wait(n, "notifications accepted by APNs")
            .await
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let Some(token) = req
        .uri()
        .path()
        .strip_prefix("/3/device/")
        .map(str::to_owned)
    else {
        return reason(StatusCode::NOT_FOUND, "BadPath");
    };
    state.scripts.count(&token);
    if req.method() != Method::POST {
        return reason(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    }
    let version = req.version();
    if version != Version::HTTP_2 {
        // Unreachable over the HTTP/2-only listener; kept as the rule.
        return reason(StatusCode::BAD_REQUEST, "BadRequest");
    }
    if token.is_empty() {
        return reason(StatusCode::BAD_REQUEST, "MissingDeviceToken");
    }
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reason(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    let Some(jwt) = bearer(&req) else {
        return reason(StatusCode::FORBIDDEN, "MissingProviderToken");
    };
    if let Err(why) = state.verify(&jwt) {
        return reason(StatusCode::FORBIDDEN, why);
    }
    let headers = headers(&req);
    if let Err(why) = state.check_headers(&headers) {
        return reason(StatusCode::BAD_REQUEST, why);
    }
    let Some(payload) = body(req).await else {
        return reason(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    };
    if payload.is_empty() {
        return reason(StatusCode::BAD_REQUEST, "PayloadEmpty");
    }
    if payload.len() > MAX_PAYLOAD {
        return reason(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&payload) else {
        return reason(StatusCode::BAD_REQUEST, "BadRequest");
    };
    if !body["aps"].is_object() {
        return reason(StatusCode::BAD_REQUEST, "PayloadEmpty");
    }
    match state.scripts.take(&token) {
        None => {}
        Some(Refusal::Unregistered) => {
            let at = unix_secs() * 1000;
            let body = json!({"reason": "Unregistered", "timestamp": at});
            return json(StatusCode::GONE, &body, None);
        }
        Some(Refusal::BadToken) => return reason(StatusCode::BAD_REQUEST, "BadDeviceToken"),
        Some(Refusal::TooManyRequests { retry_after }) => {
            let body = json!({"reason": "TooManyRequests"});
            return json(StatusCode::TOO_MANY_REQUESTS, &body, retry_after);
        }
        Some(Refusal::Unavailable { retry_after }) => {
            let body = json!({"reason": "ServiceUnavailable"});
            return json(StatusCode::SERVICE_UNAVAILABLE, &body, retry_after);
        }
    }
    let apns_id = headers.get("apns-id").cloned();
    state.accepted.push(ApnsRequest {
        token,
        headers,
        body,
        jwt,
        version,
    });
    // Success is a 200 with no body, and the request's apns-id.
    let mut reply = Reply::new(Default::default());
    if let Some(id) = apns_id.and_then(|id| id.parse().ok()) {
        reply.headers_mut().insert("apns-id", id);
    }
    reply
}

impl State {
    /// Checks a provider token as APNs does; the error is its reason.
    fn verify(&self, jwt: &str) -> Result<(), &'static str> {
        {
            let mut seen = self.seen.lock().expect("seen lock poisoned");
            if !seen.iter().any(|s| s == jwt) {
                seen.push(jwt.to_owned());
            }
        }
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "InvalidProviderToken")?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
            return Err("InvalidProviderToken");
        }
        let mut rules = Validation::new(Algorithm::ES256);
        rules.required_spec_claims.clear();
        rules.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(jwt, &self.public, &rules)
            .map_err(|_| "InvalidProviderToken")?
            .claims;
        if claims["iss"].as_str() != Some(TEAM_ID) {
            return Err("InvalidProviderToken");
        }
        let Some(iat) = claims["iat"].as_u64() else {
            return Err("InvalidProviderToken");
        };
        let now = unix_secs();
        if iat > now {
            return Err("InvalidProviderToken");
        }
        let expired = self.expired.lock().expect("expired lock poisoned");
        if now - iat > MAX_TOKEN_AGE || expired.contains(jwt) {
            return Err("ExpiredProviderToken");
        }
        Ok(())
    }

    /// Checks the `apns-*` headers; the error is APNs's reason.
    fn check_headers(&self, h: &BTreeMap<String, String>) -> Result<(), &'static str> {
        let topic = h.get("apns-topic").ok_or("MissingTopic")?;
        if !self
            .topics
            .lock()
            .expect("topics lock poisoned")
            .contains(topic)
        {
            return Err("TopicDisallowed");
        }
        let push_type = h.get("apns-push-type").ok_or("InvalidPushType")?;
        if !PUSH_TYPES.contains(&push_type.as_str()) {
            return Err("InvalidPushType");
        }
        if let Some(p) = h.get("apns-priority") {
            if !matches!(p.as_str(), "1" | "5" | "10") {
                return Err("BadPriority");
            }
        }
        if let Some(e) = h.get("apns-expiration") {
            if e.parse::<u64>().is_err() {
                return Err("BadExpirationDate");
            }
        }
        if h.get("apns-collapse-id").is_some_and(|c| c.len() > 64) {
            return Err("BadCollapseId");
        }
        if let Some(id) = h.get("apns-id") {
            let dash = |i| matches!(i, 8 | 13 | 18 | 23);
            let shape = id.len() == 36
                && id.bytes().enumerate().all(|(i, b)| {
                    if dash(i) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            if !shape {
                return Err("BadMessageId");
            }
        }
        Ok(())
    }
}

/// An APNs error: the status and `{"reason": …}`.
fn reason(status: StatusCode, reason: &str) -> Reply {
    json(status, &json!({ "reason": reason }), None)
}
