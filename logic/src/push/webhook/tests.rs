use super::*;
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

use crate::domain::PushProvider;
use crate::push::provider::Kind;

fn notification() -> Notification {
    Notification {
        id: 41,
        user_id: 7,
        device_id: 70,
        provider: PushProvider::Webhook,
        token: "gateway-42".into(),
        apns_topic: String::new(),
        apns_sandbox: false,
        kind: Kind::Withdraw,
        title: "ann".into(),
        body: "Message recalled".into(),
        badge: 3,
        conv_type: 1,
        conv_id: 8,
        seq: 12,
        message_id: "0190f1e2-7a3b-7c4d-8e5f-061728394a5b".into(),
        expires_at_ms: 1_700_000_123_456,
    }
}

#[test]
fn the_body_is_the_whole_notification() {
    let body: serde_json::Value = serde_json::from_slice(&body(&notification())).unwrap();
    assert_eq!(
        body,
        json!({
            "id": 41,
            "user_id": 7,
            "device_id": 70,
            "token": "gateway-42",
            "kind": "withdraw",
            "title": "ann",
            "body": "Message recalled",
            "badge": 3,
            "conv_type": 1,
            "conv_id": 8,
            "seq": 12,
            "message_id": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
            "expires_at_ms": 1_700_000_123_456i64,
        })
    );
}

#[test]
fn answers_map_to_outcomes() {
    let answer = |status: u16, retry_after: Option<u64>| Answer {
        status: StatusCode::from_u16(status).unwrap(),
        retry_after: retry_after.map(Duration::from_secs),
        body: Bytes::new(),
    };
    let retry = |after: Option<u64>, why: &str| Outcome::Retry {
        after: after.map(Duration::from_secs),
        why: why.into(),
    };
    let cases = [
        (answer(200, None), Outcome::Delivered),
        (answer(204, None), Outcome::Delivered),
        (answer(410, None), Outcome::Unregistered),
        (answer(429, Some(9)), retry(Some(9), "push webhook 429")),
        (answer(503, None), retry(None, "push webhook 503")),
        (answer(500, None), retry(None, "push webhook 500")),
        (
            answer(401, None),
            Outcome::Rejected("push webhook 401".into()),
        ),
        (
            answer(404, None),
            Outcome::Rejected("push webhook 404".into()),
        ),
        (
            answer(302, None),
            Outcome::Rejected("push webhook 302".into()),
        ),
    ];
    for (a, want) in cases {
        assert_eq!(outcome(&a), want, "{}", a.status);
    }
}

#[test]
fn settings_that_cannot_work_fail_at_start() {
    let ok = PushWebhookConfig {
        url: "https://push.example.com/tern".into(),
        secret: "s3cret".into(),
    };
    assert!(Webhook::new(&ok).is_ok());
    for bad in [
        PushWebhookConfig {
            secret: String::new(),
            ..ok.clone()
        },
        PushWebhookConfig {
            url: "push.example.com".into(),
            ..ok.clone()
        },
    ] {
        let shown = format!("{bad:?}");
        let err = Webhook::new(&bad).err().expect(&shown);
        assert!(matches!(err, SetupError::Setting { .. }), "{shown}: {err}");
    }
}
