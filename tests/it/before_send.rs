//! The before-send moderation hook end to end, in both shapes: a hook on
//! a loopback port (axum) that checks the signature of every request it
//! gets, and answers by the message's text: "spam…" is rejected,
//! "darn…" replaced, "system…" replaced with a content type no client may
//! send, "slow…" answered only after the configured timeout, anything else
//! allowed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use prost::Message as _;
use serde_json::{json, Value};

use crate::common::groups::{create, group_text};
use crate::common::http::call;
use crate::common::*;
use tern_client::proto::{Message, SendRejected};
use tern_client::Code;
use tern_logic::webhooks::signing;
use tern_logic::{BeforeSendConfig, FailPolicy, LogicConfig};

const SECRET: &str = "before-send-test-secret";
/// The hook's answer to "slow…" comes this long after the request.
const SLOW: Duration = Duration::from_secs(3);

/// What the hook has seen.
#[derive(Default)]
struct Seen {
    /// Every request that carried a good signature, as JSON.
    requests: Mutex<Vec<Value>>,
    /// Requests whose signature or timestamp did not verify.
    forged: AtomicUsize,
}

/// A moderation hook on a loopback port; stops with the test.
struct Hook {
    url: String,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    async fn start() -> Hook {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/moderate", post(moderate))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the hook");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("hook serves");
        });
        Hook {
            url: format!("http://{addr}/moderate"),
            seen,
            task,
        }
    }

    /// Logic settings with this hook; `f` adjusts the hook's.
    fn logic(&self, f: impl FnOnce(&mut BeforeSendConfig)) -> LogicConfig {
        let mut hook = BeforeSendConfig {
            // Generous: only the timeout tests mean to hit it.
            timeout: Duration::from_secs(10),
            ..BeforeSendConfig::new(&self.url, SECRET)
        };
        f(&mut hook);
        LogicConfig {
            before_send: Some(hook),
            ..open_logic()
        }
    }

    /// The requests seen so far; fails the test if any was not signed.
    fn requests(&self) -> Vec<Value> {
        assert_eq!(
            self.seen.forged.load(Ordering::SeqCst),
            0,
            "a request to the hook did not verify"
        );
        self.seen.requests.lock().unwrap().clone()
    }

    /// The texts of the requests seen so far.
    fn texts(&self) -> Vec<String> {
        self.requests().iter().map(request_text).collect()
    }
}

fn b64(text: &str) -> String {
    BASE64.encode(text)
}

fn request_text(r: &Value) -> String {
    let content = BASE64
        .decode(r["content"].as_str().expect("content is a string"))
        .expect("content is base64");
    String::from_utf8(content).expect("test texts are UTF-8")
}

async fn moderate(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header(signing::TIMESTAMP_HEADER).and_then(|t| t.parse::<i64>().ok());
    let signed = match (timestamp, header(signing::SIGNATURE_HEADER)) {
        (Some(ts), Some(sig)) => {
            let now = tern_public::time::now_ms() / 1000;
            (now - ts).abs() <= 300 && signing::verify(SECRET.as_bytes(), ts, &body, sig)
        }
        _ => false,
    };
    let json_type = header("content-type") == Some("application/json");
    if !signed || !json_type {
        seen.forged.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: Value = serde_json::from_slice(&body).expect("the hook gets JSON");
    let text = request_text(&request);
    seen.requests.lock().unwrap().push(request);
    let answer = if text.starts_with("spam") {
        json!({"action": "reject", "code": 42, "reason": "no spam here"})
    } else if text.starts_with("darn") {
        json!({"action": "replace", "content": b64("[removed]"), "content_type": 100})
    } else if text.starts_with("system") {
        json!({"action": "replace", "content": b64("x"), "content_type": 1201})
    } else if text.starts_with("slow") {
        tokio::time::sleep(SLOW).await;
        json!({"action": "allow"})
    } else {
        json!({"action": "allow"})
    };
    Json(answer).into_response()
}

/// The chat messages (no system events) of a device's list, as texts.
async fn chat_texts(d: &Device) -> Vec<String> {
    let list = d.client.sync_all(0).await.expect("sync");
    list.iter()
        .filter(|m| m.content_type < 1000)
        .map(text)
        .collect()
}

/// The next PUSH that is a chat message.
async fn next_chat(d: &mut Device) -> Message {
    loop {
        let m = d.next_push().await;
        if m.content_type < 1000 {
            return m;
        }
    }
}

/// `tern_before_send_calls_total{outcome}` summed over the logic nodes.
async fn outcomes(server: &Server, outcome: &str) -> u64 {
    let line = format!("tern_before_send_calls_total{{outcome=\"{outcome}\"}} ");
    let mut total = 0;
    for &http in &server.http {
        let (status, _, text) = call(http, "GET", "/metrics", None).await;
        assert_eq!(status, 200);
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.trim().parse::<u64>().expect("a count"));
    }
    total
}

async fn a_rejected_send_reaches_nobody_and_is_stored_nowhere(shape: Shape) {
    let hook = Hook::start().await;
    let server = shape.start_with(open_connect(), hook.logic(|_| {})).await;
    let ann = register(server.addr(), "ann").await;
    let mut bob = register(server.addr(), "bob").await;

    let refused = ann.client.send_text(bob.user_id, "spam spam", "m-1").await;
    let err = refused.expect_err("rejected");
    assert_eq!(err.code(), Some(Code::Rejected));
    assert_eq!(err.to_string(), "server replied 1010: no spam here");
    assert_eq!(
        err.send_rejected(),
        Some(SendRejected {
            code: 42,
            reason: "no spam here".into()
        })
    );
    let payload = err.payload().expect("a server error");
    assert_eq!(SendRejected::decode(payload.clone()).unwrap().code, 42);

    // What the hook was asked, in full.
    let asked = hook.requests();
    assert_eq!(
        asked,
        [json!({
            "sender_id": ann.user_id, "sender_device_id": ann.device_id,
            "conv_type": "user", "conv_id": bob.user_id, "content_type": 1,
            "content": b64("spam spam"), "mentions": [], "client_msg_id": "m-1",
        })]
    );

    // The next message is the first bob gets: the rejected one never came.
    ann.client
        .send_text(bob.user_id, "hello", "m-2")
        .await
        .unwrap();
    assert_eq!(text(&next_chat(&mut bob).await), "hello");

    // In a group too.
    let group = create(&ann, &[bob.user_id]).await;
    let refused = ann
        .client
        .send(&group_text(group.group_id, "spam again", "g-1"))
        .await;
    assert_eq!(refused.expect_err("rejected").code(), Some(Code::Rejected));
    let asked = hook.requests().pop().unwrap();
    assert_eq!(
        (&asked["conv_type"], &asked["conv_id"]),
        (&json!("group"), &json!(group.group_id))
    );
    ann.client
        .send(&group_text(group.group_id, "hi all", "g-2"))
        .await
        .unwrap();
    assert_eq!(text(&next_chat(&mut bob).await), "hi all");

    for d in [&ann, &bob] {
        assert_eq!(chat_texts(d).await, ["hello", "hi all"]);
    }
    assert_eq!(outcomes(&server, "rejected").await, 2);
    assert_eq!(outcomes(&server, "allowed").await, 2);
}

async fn a_replaced_send_is_stored_and_delivered_as_replaced(shape: Shape) {
    let hook = Hook::start().await;
    let server = shape.start_with(open_connect(), hook.logic(|_| {})).await;
    let ann = register(server.addr(), "ann").await;
    let mut bob = register(server.addr(), "bob").await;

    let sent = ann
        .client
        .send_text(bob.user_id, "darn it", "r-1")
        .await
        .expect("stored");
    let got = next_chat(&mut bob).await;
    assert_eq!((text(&got), got.content_type), ("[removed]".into(), 100));
    assert_eq!(got.id, sent.message_id);
    for d in [&ann, &bob] {
        let list = d.client.sync_all(0).await.unwrap();
        let m = list.iter().find(|m| m.id == sent.message_id).unwrap();
        assert_eq!((text(m), m.content_type), ("[removed]".into(), 100));
    }

    // A retry of the stored send is answered from the store: the hook is
    // not asked again, and nothing is stored twice.
    let again = ann
        .client
        .send_text(bob.user_id, "darn it", "r-1")
        .await
        .unwrap();
    assert_eq!(
        (again.message_id, again.seq),
        (sent.message_id.clone(), sent.seq)
    );
    assert_eq!(hook.texts(), ["darn it"]);
    assert_eq!(chat_texts(&bob).await, ["[removed]"]);
    assert_eq!(outcomes(&server, "replaced").await, 1);
}

async fn a_hook_past_its_timeout_fails_open_and_the_message_is_stored(shape: Shape) {
    let hook = Hook::start().await;
    let logic = hook.logic(|h| {
        h.timeout = Duration::from_millis(300);
        h.fail = FailPolicy::Open;
    });
    let server = shape.start_with(open_connect(), logic).await;
    let ann = register(server.addr(), "ann").await;
    let mut bob = register(server.addr(), "bob").await;

    let started = std::time::Instant::now();
    ann.client
        .send_text(bob.user_id, "slow one", "t-1")
        .await
        .expect("stored as sent");
    assert!(
        started.elapsed() < SLOW,
        "the send did not wait for the hook"
    );
    assert_eq!(text(&next_chat(&mut bob).await), "slow one");

    // A replacement a client could not send is no usable answer either.
    ann.client
        .send_text(bob.user_id, "system says", "t-2")
        .await
        .expect("stored as sent");
    let got = next_chat(&mut bob).await;
    assert_eq!((text(&got), got.content_type), ("system says".into(), 1));

    assert_eq!(hook.texts(), ["slow one", "system says"]);
    assert_eq!(chat_texts(&bob).await, ["slow one", "system says"]);
    assert_eq!(outcomes(&server, "failed_open").await, 2);
}

async fn a_hook_past_its_timeout_fails_closed_and_nothing_is_stored(shape: Shape) {
    let hook = Hook::start().await;
    let logic = hook.logic(|h| {
        h.timeout = Duration::from_millis(300);
        h.fail = FailPolicy::Closed;
    });
    let server = shape.start_with(open_connect(), logic).await;
    let ann = register(server.addr(), "ann").await;
    let mut bob = register(server.addr(), "bob").await;

    let err = ann
        .client
        .send_text(bob.user_id, "slow one", "t-1")
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(Code::Unavailable));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    let err = ann
        .client
        .send_text(bob.user_id, "system says", "t-2")
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(Code::Unavailable));

    ann.client
        .send_text(bob.user_id, "hello", "t-3")
        .await
        .unwrap();
    assert_eq!(text(&next_chat(&mut bob).await), "hello");
    for d in [&ann, &bob] {
        assert_eq!(chat_texts(d).await, ["hello"]);
    }
    assert_eq!(hook.texts(), ["slow one", "system says", "hello"]);
    assert_eq!(outcomes(&server, "failed_closed").await, 2);
}

/// POST /api/v1/messages; (status, body).
async fn admin_send(server: &Server, from: Option<u64>, to: u64, text: &str) -> (u16, Value) {
    let mut body = json!({"conv_type": "user", "to": to, "content_type": 1, "content": text});
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    let (status, json, _) = call(server.http[0], "POST", "/api/v1/messages", Some(body)).await;
    (status, json)
}

async fn admin_sends_skip_the_hook_by_default(shape: Shape) {
    let hook = Hook::start().await;
    let server = shape.start_with(open_connect(), hook.logic(|_| {})).await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;

    let (status, body) = admin_send(&server, Some(ann.user_id), bob.user_id, "spam as ann").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_send(&server, None, bob.user_id, "spam from us").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(chat_texts(&bob).await, ["spam as ann", "spam from us"]);
    assert!(
        hook.texts().is_empty(),
        "the admin API's sends skip the hook"
    );

    // The hook is on for the users' own sends.
    let err = ann
        .client
        .send_text(bob.user_id, "spam", "")
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), Some(Code::Rejected));
    assert_eq!(hook.texts(), ["spam"]);
}

async fn admin_sends_ask_the_hook_when_configured(shape: Shape) {
    let hook = Hook::start().await;
    let server = shape
        .start_with(open_connect(), hook.logic(|h| h.admin = true))
        .await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;

    let (status, body) = admin_send(&server, Some(ann.user_id), bob.user_id, "spam as ann").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "rejected");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no spam here") && message.contains("42"),
        "{message}"
    );
    let (status, body) = admin_send(&server, None, bob.user_id, "spam from us").await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = admin_send(&server, None, bob.user_id, "darn, from us").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(chat_texts(&bob).await, ["[removed]"]);

    let asked = hook.requests();
    let who: Vec<_> = asked
        .iter()
        .map(|r| {
            (
                r["sender_id"].as_u64().unwrap(),
                r["sender_device_id"].as_u64().unwrap(),
                r["conv_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            (ann.user_id, 0, "user".into()),
            (0, 0, "system".into()),
            (0, 0, "system".into()),
        ]
    );
}

in_both_shapes! {
    #[tokio::test] a_rejected_send_reaches_nobody_and_is_stored_nowhere,
    #[tokio::test] a_replaced_send_is_stored_and_delivered_as_replaced,
    #[tokio::test] a_hook_past_its_timeout_fails_open_and_the_message_is_stored,
    #[tokio::test] a_hook_past_its_timeout_fails_closed_and_nothing_is_stored,
    #[tokio::test] admin_sends_skip_the_hook_by_default,
    #[tokio::test] admin_sends_ask_the_hook_when_configured,
}
