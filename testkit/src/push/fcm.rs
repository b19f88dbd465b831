//! A stand-in of FCM HTTP v1 and of the Google OAuth token endpoint that
//! authorises it, checking what Google's "Authorize send requests" and
//! "Send a message using FCM HTTP v1 API" ask: `POST /token` with the
//! JWT-bearer grant (an RS256 assertion from the service account: `iss`,
//! `scope`, `aud` = this token URL, `iat`/`exp` an hour apart at most) issues
//! an access token; `POST /v1/projects/<project>/messages:send` needs it and
//! a well-formed message. Errors are Google's JSON errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde_json::{json, Value};

use super::{bearer, body, headers, json, unix_secs, Recorder, Refusal, Reply, Scripts, Server};

mod message;

use message::check_message;

const PROJECT_ID: &str = "tern-test";
const CLIENT_EMAIL: &str = "tern-push@tern-test.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const CLOUD_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const FCM_ERROR: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// A message FCM accepted.
#[derive(Debug, Clone)]
pub struct FcmMessage {
    /// `message.token`.
    pub token: String,
    /// The whole `message` object.
    pub message: Value,
    /// Every header, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The access token it was sent with.
    pub access_token: String,
}

/// A local FCM and OAuth token endpoint; see the module's documentation.
pub struct FcmStandIn {
    server: Server,
    state: Arc<State>,
}

struct State {
    key: super::TestKey,
    public: DecodingKey,
    /// This stand-in's token URL: the assertion's audience.
    token_uri: OnceLock<String>,
    expires_in: AtomicU64,
    issued: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    scripts: Scripts,
    accepted: Recorder<FcmMessage>,
}

impl FcmStandIn {
    /// Starts a stand-in that trusts the process's test service account
    /// key ([`rsa_key`](super::rsa_key)).
    pub async fn start() -> FcmStandIn {
        let key = super::rsa_key();
        let public =
            DecodingKey::from_rsa_pem(key.public_pem.as_bytes()).expect("an RSA public key in PEM");
        let state = Arc::new(State {
            key,
            public,
            token_uri: OnceLock::new(),
            expires_in: AtomicU64::new(3599),
            issued: Mutex::new(HashMap::new()),
            token_requests: AtomicUsize::new(0),
            scripts: Scripts::default(),
            accepted: Recorder::new(),
        });
        let handler = state.clone();
        let server = Server::start(false, move |req| handle(handler.clone(), req)).await;
        let token_uri = format!("{}/token", server.url());
        state.token_uri.set(token_uri).expect("set once");
        FcmStandIn { server, state }
    }

    /// The FCM base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The OAuth token endpoint (`<url>/token`).
    pub fn token_uri(&self) -> String {
        self.state.token_uri.get().expect("set at start").clone()
    }

    pub fn project_id(&self) -> &str {
        PROJECT_ID
    }

    pub fn client_email(&self) -> &str {
        CLIENT_EMAIL
    }

    /// The service account's private key (PKCS#8 PEM).
    pub fn private_key_pem(&self) -> &str {
        &self.state.key.private_pem
    }

    /// How long access tokens issued from now on last (`expires_in`;
    /// Google's is 3599 s).
    pub fn set_expires_in(&self, secs: u64) {
        self.state.expires_in.store(secs, Ordering::Relaxed);
    }

    /// Makes every access token issued so far invalid (401), as if it
    /// expired or was revoked.
    pub fn revoke_access_tokens(&self) {
        self.state
            .issued
            .lock()
            .expect("issued lock poisoned")
            .clear();
    }

    /// Requests to the token endpoint, whatever their answer.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::Relaxed)
    }

    /// Refuses every valid send to the registration token `token`.
    pub fn refuse(&self, token: &str, refusal: Refusal) {
        self.state.scripts.set(token, refusal, None);
    }

    /// Refuses the next `times` valid sends to `token`, then accepts.
    pub fn refuse_times(&self, token: &str, refusal: Refusal, times: usize) {
        self.state.scripts.set(token, refusal, Some(times));
    }

    /// Sends to `token` (authorised or not, valid or not) so far.
    pub fn requests(&self, token: &str) -> usize {
        self.state.scripts.requests(token)
    }

    pub fn accepted(&self) -> Vec<FcmMessage> {
        self.state.accepted.all()
    }

    /// Waits until `n` messages are accepted (fails the test after 10 s).
    pub async fn wait_accepted(&self, n: usize) -> Vec<FcmMessage> {
        self.state
            .accepted
            .wait(n, "messages accepted by FCM")
            .await
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.", None);
    }
    if path == "/token" {
        state.token_requests.fetch_add(1, Ordering::Relaxed);
        return state.token(req).await;
    }
    let project = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"));
    match project {
        Some(PROJECT_ID) => state.send(req).await,
        Some(_) => error(
            StatusCode::FORBIDDEN,
            "Permission 'cloudmessaging.messages.create' denied on resource.",
            None,
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            None,
        ),
    }
}

impl State {
    /// The token endpoint: a JWT-bearer grant for an access token.
    async fn token(&self, req: Request<Incoming>) -> Reply {
        let form = body(req).await.unwrap_or_default();
        let form: HashMap<String, String> = form_urlencoded::parse(&form).into_owned().collect();
        if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
            return oauth_error("unsupported_grant_type", "Invalid grant_type.");
        }
        let Some(assertion) = form.get("assertion") else {
            return oauth_error("invalid_request", "Missing required parameter: assertion");
        };
        if let Err((error, why)) = self.verify_assertion(assertion) {
            return oauth_error(error, why);
        }
        let token = format!("ya29.test-{:032x}", rand::thread_rng().gen::<u128>());
        let expires_in = self.expires_in.load(Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(expires_in);
        let mut issued = self.issued.lock().expect("issued lock poisoned");
        issued.insert(token.clone(), until);
        let body = json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"});
        json(StatusCode::OK, &body, None)
    }

    fn verify_assertion(&self, jwt: &str) -> Result<(), (&'static str, &'static str)> {
        let invalid = ("invalid_grant", "Invalid JWT Signature.");
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid);
        }
        let mut rules = Validation::new(Algorithm::RS256);
        rules.set_required_spec_claims(&["exp", "iss", "aud"]);
        rules.set_issuer(&[CLIENT_EMAIL]);
        rules.set_audience(&[self.token_uri.get().expect("set at start")]);
        let claims = jsonwebtoken::decode::<Value>(jwt, &self.public, &rules)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    ("invalid_grant", "Invalid JWT: Failed audience check.")
                }
                _ => ("invalid_grant", "Invalid JWT."),
            })?
            .claims;
        let short_lived = (
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
        let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
            return Err(short_lived);
        };
        if iat > unix_secs() + 60 || exp <= iat || exp - iat > 3600 {
            return Err(short_lived);
        }
        let scopes = claims["scope"].as_str().unwrap_or("");
        if !scopes.split(' ').any(|s| s == SCOPE || s == CLOUD_SCOPE) {
            return Err((
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            ));
        }
        Ok(())
    }

    /// `messages:send`.
    async fn send(&self, req: Request<Incoming>) -> Reply {
        let access_token = bearer(&req);
        let headers = headers(&req);
        let body = body(req).await.unwrap_or_default();
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        let token = parsed.as_ref().and_then(|b| b["message"]["token"].as_str());
        if let Some(token) = token {
            self.scripts.count(token);
        }
        let authorised = access_token.as_ref().is_some_and(|t| {
            let issued = self.issued.lock().expect("issued lock poisoned");
            issued.get(t).is_some_and(|until| Instant::now() < *until)
        });
        if !authorised {
            return error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                None,
            );
        }
        let Some(mut parsed) = parsed else {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid JSON payload received.",
                None,
            );
        };
        if let Err(why) = check_message(&parsed["message"]) {
            return error(StatusCode::BAD_REQUEST, &why, None);
        }
        let message = parsed["message"].take();
        let token = message["token"].as_str().unwrap_or_default().to_owned();
        if let Some(refusal) = self.scripts.take(&token) {
            return refused(refusal);
        }
        self.accepted.push(FcmMessage {
            token,
            message,
            headers,
            access_token: access_token.unwrap_or_default(),
        });
        let id = rand::thread_rng().gen::<u64>();
        let name = format!("projects/{PROJECT_ID}/messages/0:{id}");
        json(StatusCode::OK, &json!({ "name": name }), None)
    }
}

fn refused(refusal: Refusal) -> Reply {
    match refusal {
        Refusal::Unregistered => fcm_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "UNREGISTERED",
            None,
        ),
        Refusal::BadToken => {
            let body = json!({"error": {
                "code": 400,
                "message": "The registration token is not a valid FCM registration token",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
                    {"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]},
                ],
            }});
            json(StatusCode::BAD_REQUEST, &body, None)
        }
        Refusal::TooManyRequests { retry_after } => fcm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Quota exceeded for quota metric 'Send requests'.",
            "QUOTA_EXCEEDED",
            retry_after,
        ),
        Refusal::Unavailable { retry_after } => fcm_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "UNAVAILABLE",
            retry_after,
        ),
    }
}

/// A Google API error: `{"error": {code, message, status}}`.
fn error(status: StatusCode, message: &str, retry_after: Option<u64>) -> Reply {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": rpc_status(status),
    }});
    json(status, &body, retry_after)
}

/// A Google API error with FCM's `errorCode` in its details.
fn fcm_error(status: StatusCode, message: &str, code: &str, retry_after: Option<u64>) -> Reply {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": rpc_status(status),
        "details": [{"@type": FCM_ERROR, "errorCode": code}],
    }});
    json(status, &body, retry_after)
}

fn rpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// An OAuth 2 error of the token endpoint.
fn oauth_error(error: &str, description: &str) -> Reply {
    let body = json!({"error": error, "error_description": description});
    json(StatusCode::BAD_REQUEST, &body, None)
}
