//! The after-send webhook end to end, in both shapes: every stored message
//! and event reaches the app's backend, signed, in batches, at least once
//! and in order per conversation, through failures of the receiver; the
//! admin API shows its state and rotates its secret.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

use tern_logic::webhooks::after_send::AfterSendConfig;
use tern_logic::webhooks::signing::verify;

use crate::common::http::call;
use crate::common::*;

const SECRET: &str = "after-send-test-secret";

/// A receiver of the app's backend: checks every signature against the
/// secrets it knows, fails the first `fail` requests with 503.
#[derive(Default)]
struct Receiver {
    batches: Mutex<Vec<Value>>,
    secrets: Mutex<Vec<String>>,
    unsigned: Mutex<usize>,
    fail: Mutex<usize>,
    arrived: Notify,
}

impl Receiver {
    /// Which of the known secrets signed the request.
    fn signed_by(&self, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
        let ts: i64 = headers["x-tern-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sigs = headers["x-tern-signature"].to_str().unwrap().to_owned();
        let secrets = self.secrets.lock().unwrap().clone();
        secrets
            .into_iter()
            .filter(|s| {
                sigs.split(", ")
                    .any(|sig| verify(s.as_bytes(), ts, body, sig))
            })
            .collect()
    }
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if r.signed_by(&headers, &body).is_empty() {
        *r.unsigned.lock().unwrap() += 1;
        return (StatusCode::UNAUTHORIZED, [("retry-after", "1")]);
    }
    {
        let mut fail = r.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]);
        }
    }
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        headers["x-tern-delivery"].to_str().unwrap(),
        json["batch"].as_str().unwrap()
    );
    r.batches.lock().unwrap().push(json);
    r.arrived.notify_waiters();
    (StatusCode::OK, [("retry-after", "0")])
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    r.secrets.lock().unwrap().push(SECRET.into());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

/// Every message id delivered, in delivery order (repeats kept).
fn delivered(r: &Receiver) -> Vec<(String, Value)> {
    r.batches
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b["messages"].as_array().unwrap().clone())
        .map(|m| (m["message_id"].as_str().unwrap().to_owned(), m))
        .collect()
}

/// Waits until every id of `want` was delivered.
async fn until_delivered(r: &Receiver, want: &BTreeSet<String>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let arrived = r.arrived.notified();
        let got: BTreeSet<String> = delivered(r).into_iter().map(|(id, _)| id).collect();
        if want.is_subset(&got) {
            return;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "{} of {} delivered", got.len(), want.len());
        let _ = tokio::time::timeout(left, arrived).await;
    }
}

fn uuid(id: &[u8]) -> String {
    let h = hex::encode(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn logic(url: &str) -> tern_logic::LogicConfig {
    tern_logic::LogicConfig {
        after_send: Some(AfterSendConfig {
            url: url.into(),
            secret: SECRET.into(),
            batch_max: 10,
            max_age: Duration::from_secs(600),
        }),
        ..open_logic()
    }
}

async fn every_message_and_event_arrives_signed_and_in_order(shape: Shape) {
    let (r, url) = start_receiver().await;
    // The first two attempts fail: the batch is held, then sent again.
    *r.fail.lock().unwrap() = 2;
    let server = shape.start_with(open_connect(), logic(&url)).await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let bob = register(addr, "bob").await;
    let cat = register(addr, "cat").await;
    let mut want = BTreeSet::new();
    let mut order: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for i in 0..15 {
        for (to, who) in [(&bob, "bob"), (&cat, "cat")] {
            let text = format!("{who}{i}");
            let sent = ann
                .client
                .send_text(to.user_id, &text, &text)
                .await
                .unwrap();
            let id = uuid(&sent.message_id);
            want.insert(id.clone());
            order.entry(to.user_id).or_default().push(id);
        }
    }
    // An event is stored as well: a friend request.
    bob.client.friend_request(cat.user_id, "hi").await.unwrap();
    until_delivered(&r, &want).await;

    // The friend request's event follows its own commit.
    let is_event = |m: &Value| m["content_type"].as_u64().unwrap() >= 1000;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !delivered(&r).iter().any(|(_, m)| is_event(m)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the friend event never came"
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), r.arrived.notified()).await;
    }
    let got = delivered(&r);
    assert_eq!(*r.unsigned.lock().unwrap(), 0, "every request signed");
    // Per conversation, first arrivals come in the order sent.
    for (to, ids) in &order {
        let seen: Vec<&String> = {
            let mut firsts = Vec::new();
            let mut known = BTreeSet::new();
            for (id, m) in &got {
                let chat = !is_event(m) && m["conv_id"].as_u64() == Some(*to);
                if chat && known.insert(id.clone()) {
                    firsts.push(id);
                }
            }
            firsts
        };
        assert_eq!(seen, ids.iter().collect::<Vec<_>>(), "order to {to}");
    }
    let sample = &got
        .iter()
        .find(|(_, m)| m["conv_id"] == bob.user_id)
        .unwrap()
        .1;
    assert_eq!(sample["sender_id"], ann.user_id);
    assert_eq!(
        sample["content"], "Ym9iMA==",
        "base64 of the first text, bob0"
    );
    assert!(r
        .batches
        .lock()
        .unwrap()
        .iter()
        .all(|b| b["messages"].as_array().unwrap().len() <= 10));

    // The admin API shows it healthy: nothing queued, a success recorded.
    let (status, body, _) = call(server.http[0], "GET", "/api/v1/webhooks", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["after_send"]["url"], url.as_str());
    assert!(body["after_send"]["last_success_at_ms"].as_i64().unwrap() > 0);
    assert!(
        body["after_send"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
            || body["after_send"]["attempts"] == 0,
        "{body}"
    );
}

async fn a_rotated_secret_signs_beside_the_old_one(shape: Shape) {
    let (r, url) = start_receiver().await;
    let server = shape.start_with(open_connect(), logic(&url)).await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let bob = register(addr, "bob").await;

    let (status, body, _) = call(
        server.http[0],
        "POST",
        "/api/v1/webhooks/after-send/secret",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new = body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, SECRET);
    assert!(body["previous_secret_until_ms"].as_i64().unwrap() > tern_public::time::now_ms());
    // The receiver still knows only the old secret: it verifies.
    let sent = ann
        .client
        .send_text(bob.user_id, "after", "a1")
        .await
        .unwrap();
    until_delivered(&r, &BTreeSet::from([uuid(&sent.message_id)])).await;
    // It switches to the new one alone: that verifies too.
    *r.secrets.lock().unwrap() = vec![new];
    let sent = ann
        .client
        .send_text(bob.user_id, "again", "a2")
        .await
        .unwrap();
    until_delivered(&r, &BTreeSet::from([uuid(&sent.message_id)])).await;
    assert_eq!(
        *r.unsigned.lock().unwrap(),
        0,
        "both signatures on each request"
    );
}

/// Without an after-send webhook, rotating is refused and nothing queues.
#[tokio::test]
async fn rotation_needs_a_configured_webhook() {
    let server = start().await;
    let (status, body, _) = call(
        server.http[0],
        "POST",
        "/api/v1/webhooks/after-send/secret",
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    ann.client.send_text(bob.user_id, "x", "x").await.unwrap();
    let (_, body, _) = call(server.http[0], "GET", "/api/v1/webhooks", None).await;
    assert_eq!(body["after_send"]["queued"], 0, "{body}");
    assert!(body["after_send"]["url"].is_null());
}

in_both_shapes! {
    #[tokio::test] every_message_and_event_arrives_signed_and_in_order,
    #[tokio::test] a_rotated_secret_signs_beside_the_old_one,
}
