//! The push providers against local stand-ins of APNs, FCM and a webhook
//! receiver (`tern_testkit::push`), which verify what the real services
//! verify: the provider token or access token, the signature, the headers
//! and the body. Each provider must deliver, and must read the services'
//! refusals as its contract says (dead tokens, rate limits with
//! Retry-After, outages, refused credentials).

use std::time::Duration;

use tern_logic::domain::PushProvider;
use tern_logic::push::apns::Apns;
use tern_logic::push::config::{ApnsConfig, FcmConfig, PushWebhookConfig};
use tern_logic::push::fcm::Fcm;
use tern_logic::push::provider::{Kind, Notification, Outcome, Provider};
use tern_logic::push::webhook::Webhook;
use tern_testkit::push::{
    other_rsa_key, p256_key, ApnsStandIn, FcmStandIn, Refusal, WebhookReceiver,
};

const MESSAGE_ID: &str = "0190f1e2-7a3b-7c4d-8e5f-061728394a5b";

fn notification(provider: PushProvider, token: &str) -> Notification {
    Notification {
        id: 41,
        user_id: 7,
        device_id: 70,
        provider,
        token: token.to_owned(),
        apns_topic: String::new(),
        apns_sandbox: false,
        kind: Kind::Alert,
        title: "ann".into(),
        body: "hello".into(),
        badge: 3,
        conv_type: 1,
        conv_id: 8,
        seq: 12,
        message_id: MESSAGE_ID.into(),
        expires_at_ms: tern_public::time::now_ms() + 3_600_000,
    }
}

fn apns_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn apns_config(s: &ApnsStandIn) -> ApnsConfig {
    ApnsConfig {
        key_pem: s.key_pem().to_owned(),
        key_id: s.key_id().to_owned(),
        team_id: s.team_id().to_owned(),
        default_topic: s.topic().to_owned(),
        url: s.url(),
        sandbox_url: s.url(),
    }
}

fn fcm_config(s: &FcmStandIn) -> FcmConfig {
    FcmConfig {
        project_id: s.project_id().to_owned(),
        client_email: s.client_email().to_owned(),
        private_key_pem: s.private_key_pem().to_owned(),
        token_uri: s.token_uri(),
        url: s.url(),
    }
}

fn webhook_config(r: &WebhookReceiver) -> PushWebhookConfig {
    PushWebhookConfig {
        url: r.url(),
        secret: r.secret().to_owned(),
    }
}

fn retry_after(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

/// `outcome` is a Retry after `after` whose reason mentions `why`.
#[track_caller]
fn assert_retry(outcome: &Outcome, after: Option<Duration>, why: &str) {
    match outcome {
        Outcome::Retry { after: a, why: w } if *a == after && w.contains(why) => {}
        other => panic!("expected Retry after {after:?} for {why:?}, got {other:?}"),
    }
}

// === APNs ===

#[tokio::test]
async fn apns_delivers_with_a_verified_provider_token_and_apples_headers() {
    let apns_prod = ApnsStandIn::start().await;
    let sandbox = ApnsStandIn::start_with_key(apns_prod.key().clone()).await;
    sandbox.allow_topic("com.example.other");
    let apns = Apns::new(&ApnsConfig {
        sandbox_url: sandbox.url(),
        ..apns_config(&apns_prod)
    })
    .unwrap();

    let n = notification(PushProvider::Apns, &apns_token(1));
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    let got = apns_prod.wait_accepted(1).await.remove(0);
    assert_eq!(got.version, hyper::Version::HTTP_2);
    assert_eq!(got.token, apns_token(1));
    let h = |name: &str| got.headers.get(name).map(String::as_str);
    assert!(h("authorization").is_some_and(|a| a.starts_with("bearer ")));
    assert_eq!(
        h("apns-topic"),
        Some(apns_prod.topic()),
        "the default topic"
    );
    assert_eq!(h("apns-push-type"), Some("alert"));
    assert_eq!(h("apns-priority"), Some("10"));
    assert_eq!(h("apns-collapse-id"), Some(MESSAGE_ID));
    let expiration = (n.expires_at_ms / 1000).to_string();
    assert_eq!(h("apns-expiration"), Some(expiration.as_str()));
    assert_eq!(
        got.body,
        serde_json::json!({
            "aps": {
                "alert": {"title": "ann", "body": "hello"},
                "badge": 3,
                "sound": "default",
                "thread-id": "1:8",
            },
            "tern": {"conv_type": 1, "conv_id": 8, "seq": 12, "message_id": MESSAGE_ID, "kind": "alert"},
        })
    );

    // A withdrawal for a sandbox device of another app goes to the
    // sandbox with the token's topic, under the same collapse id.
    let w = Notification {
        kind: Kind::Withdraw,
        body: "Message recalled".into(),
        apns_sandbox: true,
        apns_topic: "com.example.other".into(),
        ..n.clone()
    };
    assert_eq!(apns.send(&w).await, Outcome::Delivered);
    let got = sandbox.wait_accepted(1).await.remove(0);
    assert_eq!(got.headers["apns-topic"], "com.example.other");
    assert_eq!(got.headers["apns-collapse-id"], MESSAGE_ID);
    assert_eq!(got.body["tern"]["kind"], "withdraw");
    assert_eq!(got.headers["apns-push-type"], "background");
    assert!(
        got.body["aps"].get("alert").is_none(),
        "a withdrawal shows nothing"
    );
    assert_eq!(apns_prod.accepted().len(), 1, "nothing more to production");
}

#[tokio::test]
async fn apns_dead_tokens_map_to_unregistered() {
    let s = ApnsStandIn::start().await;
    let apns = Apns::new(&apns_config(&s)).unwrap();
    s.refuse(&apns_token(1), Refusal::Unregistered);
    s.refuse(&apns_token(2), Refusal::BadToken);
    for t in [1, 2] {
        let n = notification(PushProvider::Apns, &apns_token(t));
        assert_eq!(apns.send(&n).await, Outcome::Unregistered, "token {t}");
        assert_eq!(s.requests(&apns_token(t)), 1);
    }
    // A topic the team may not use is the request's fault, not the token's.
    let n = Notification {
        apns_topic: "com.example.not-ours".into(),
        ..notification(PushProvider::Apns, &apns_token(3))
    };
    assert_eq!(
        apns.send(&n).await,
        Outcome::Rejected("APNs 400 TopicDisallowed".into())
    );
    assert!(s.accepted().is_empty());
}

#[tokio::test]
async fn apns_rate_limits_and_outages_map_to_retry_with_retry_after() {
    let s = ApnsStandIn::start().await;
    let apns = Apns::new(&apns_config(&s)).unwrap();
    let n = notification(PushProvider::Apns, &apns_token(1));

    s.refuse_times(
        &n.token,
        Refusal::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    assert_retry(&apns.send(&n).await, retry_after(7), "429 TooManyRequests");
    s.refuse_times(&n.token, Refusal::Unavailable { retry_after: None }, 2);
    assert_retry(&apns.send(&n).await, None, "503 ServiceUnavailable");
    assert_retry(&apns.send(&n).await, None, "503 ServiceUnavailable");
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    assert_eq!(s.requests(&n.token), 4);
    assert_eq!(s.accepted().len(), 1);
}

#[tokio::test]
async fn apns_a_provider_token_signed_with_the_wrong_key_is_refused_and_dropped() {
    let s = ApnsStandIn::start().await;
    let wrong = ApnsConfig {
        key_pem: p256_key().private_pem,
        ..apns_config(&s)
    };
    let apns = Apns::new(&wrong).unwrap();
    let n = notification(PushProvider::Apns, &apns_token(1));
    assert_retry(&apns.send(&n).await, None, "403 InvalidProviderToken");
    assert_retry(&apns.send(&n).await, None, "403 InvalidProviderToken");
    assert_eq!(
        s.provider_tokens().len(),
        2,
        "the refused token is not sent again"
    );
    assert!(s.accepted().is_empty());
}

#[tokio::test]
async fn apns_an_expired_provider_token_is_replaced() {
    let s = ApnsStandIn::start().await;
    let apns = Apns::new(&apns_config(&s)).unwrap();
    let n = notification(PushProvider::Apns, &apns_token(1));
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    s.expire_seen_tokens();
    assert_retry(&apns.send(&n).await, None, "403 ExpiredProviderToken");
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    let tokens = s.provider_tokens();
    assert_eq!(tokens.len(), 2);
    let accepted = s.accepted();
    assert_eq!(accepted[0].jwt, tokens[0]);
    assert_eq!(accepted[1].jwt, tokens[1]);
}

#[tokio::test]
async fn apns_the_provider_token_is_reused_until_the_renewal_age() {
    let s = ApnsStandIn::start().await;
    let renewal = Duration::from_millis(1500);
    let apns = Apns::new(&apns_config(&s))
        .unwrap()
        .with_token_renewal(renewal);
    let n = notification(PushProvider::Apns, &apns_token(1));
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(apns.send(&n).await, Outcome::Delivered);
    }
    assert!(started.elapsed() < renewal, "the test machine is too slow");
    assert_eq!(
        s.provider_tokens().len(),
        1,
        "reused before the renewal age"
    );

    tokio::time::sleep(renewal).await;
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    assert_eq!(apns.send(&n).await, Outcome::Delivered);
    assert_eq!(s.provider_tokens().len(), 2, "renewed once after it");
    assert_eq!(s.accepted().len(), 5);
}

// === FCM ===

#[tokio::test]
async fn fcm_delivers_with_one_access_token_for_many_sends() {
    let s = FcmStandIn::start().await;
    let fcm = Fcm::new(&fcm_config(&s)).unwrap();

    // A burst at start makes one token request.
    let notifications: Vec<_> = (0..5)
        .map(|i| notification(PushProvider::Fcm, &format!("fcm-token-{i}")))
        .collect();
    let sent = futures::future::join_all(notifications.iter().map(|n| fcm.send(n))).await;
    assert!(sent.iter().all(|o| *o == Outcome::Delivered), "{sent:?}");
    assert_eq!(fcm.send(&notifications[0]).await, Outcome::Delivered);
    assert_eq!(s.token_requests(), 1);

    let accepted = s.wait_accepted(6).await;
    assert!(accepted
        .iter()
        .all(|m| m.access_token == accepted[0].access_token));
    let m = accepted
        .iter()
        .find(|m| m.token == "fcm-token-3")
        .unwrap()
        .message
        .clone();
    assert_eq!(m["notification"]["title"], "ann");
    assert_eq!(m["notification"]["body"], "hello");
    assert_eq!(
        m["data"],
        serde_json::json!({
            "conv_type": "1", "conv_id": "8", "seq": "12",
            "message_id": MESSAGE_ID, "kind": "alert", "badge": "3",
        })
    );
    assert_eq!(m["android"]["collapse_key"], MESSAGE_ID);
    assert_eq!(m["android"]["notification"]["tag"], MESSAGE_ID);
    assert_eq!(m["android"]["notification"]["notification_count"], 3);
    let ttl = m["android"]["ttl"].as_str().unwrap();
    let secs: u64 = ttl.strip_suffix('s').unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&secs), "{ttl}");
    assert_eq!(m["apns"]["headers"]["apns-collapse-id"], MESSAGE_ID);
    assert_eq!(m["apns"]["payload"]["aps"]["badge"], 3);
}

#[tokio::test]
async fn fcm_dead_tokens_map_to_unregistered() {
    let s = FcmStandIn::start().await;
    let fcm = Fcm::new(&fcm_config(&s)).unwrap();
    s.refuse("gone", Refusal::Unregistered);
    s.refuse("garbled", Refusal::BadToken);
    for token in ["gone", "garbled"] {
        let n = notification(PushProvider::Fcm, token);
        assert_eq!(fcm.send(&n).await, Outcome::Unregistered, "{token}");
        assert_eq!(s.requests(token), 1);
    }
    assert!(s.accepted().is_empty());
}

#[tokio::test]
async fn fcm_quota_and_outages_map_to_retry_with_retry_after() {
    let s = FcmStandIn::start().await;
    let fcm = Fcm::new(&fcm_config(&s)).unwrap();
    let n = notification(PushProvider::Fcm, "busy");
    s.refuse_times(
        "busy",
        Refusal::TooManyRequests {
            retry_after: Some(30),
        },
        1,
    );
    assert_retry(&fcm.send(&n).await, retry_after(30), "429 QUOTA_EXCEEDED");
    s.refuse_times(
        "busy",
        Refusal::Unavailable {
            retry_after: Some(2),
        },
        1,
    );
    assert_retry(&fcm.send(&n).await, retry_after(2), "503 UNAVAILABLE");
    assert_eq!(fcm.send(&n).await, Outcome::Delivered);
    assert_eq!(s.requests("busy"), 3);
}

#[tokio::test]
async fn fcm_a_refused_access_token_is_dropped_and_fetched_again() {
    let s = FcmStandIn::start().await;
    let fcm = Fcm::new(&fcm_config(&s)).unwrap();
    let n = notification(PushProvider::Fcm, "t");
    assert_eq!(fcm.send(&n).await, Outcome::Delivered);
    s.revoke_access_tokens();
    assert_retry(&fcm.send(&n).await, None, "401 UNAUTHENTICATED");
    assert_eq!(fcm.send(&n).await, Outcome::Delivered);
    assert_eq!(s.token_requests(), 2);
    let accepted = s.accepted();
    assert_ne!(accepted[0].access_token, accepted[1].access_token);
}

#[tokio::test]
async fn fcm_an_access_token_about_to_expire_is_replaced() {
    let s = FcmStandIn::start().await;
    // Tokens that live less than the 5-minute renewal margin are never
    // reused.
    s.set_expires_in(200);
    let fcm = Fcm::new(&fcm_config(&s)).unwrap();
    let n = notification(PushProvider::Fcm, "t");
    for _ in 0..3 {
        assert_eq!(fcm.send(&n).await, Outcome::Delivered);
    }
    assert_eq!(s.token_requests(), 3);
    // With a shorter margin, the same token serves.
    let fcm = Fcm::new(&fcm_config(&s))
        .unwrap()
        .with_token_renewal(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(fcm.send(&n).await, Outcome::Delivered);
    }
    assert_eq!(s.token_requests(), 4);
}

#[tokio::test]
async fn fcm_an_assertion_signed_with_the_wrong_key_gets_no_access_token() {
    let s = FcmStandIn::start().await;
    let wrong = FcmConfig {
        private_key_pem: other_rsa_key().private_pem,
        ..fcm_config(&s)
    };
    let fcm = Fcm::new(&wrong).unwrap();
    let n = notification(PushProvider::Fcm, "t");
    assert_retry(&fcm.send(&n).await, None, "400 invalid_grant");
    assert_eq!(s.token_requests(), 1);
    assert_eq!(s.requests("t"), 0, "nothing is sent without a token");
}

// === the push webhook ===

#[tokio::test]
async fn webhook_delivers_a_signed_notification() {
    let r = WebhookReceiver::start().await;
    let webhook = Webhook::new(&webhook_config(&r)).unwrap();
    let n = notification(PushProvider::Webhook, "gateway-42");
    assert_eq!(webhook.send(&n).await, Outcome::Delivered);
    let got = r.wait_deliveries(1).await.remove(0);
    assert!(got.verified, "the signature is the secret's: {got:?}");
    assert_eq!(got.headers["x-tern-delivery"], "41");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.json["token"], "gateway-42");
    assert_eq!(got.json["user_id"], 7);
    assert_eq!(got.json["device_id"], 70);
    assert_eq!(got.json["kind"], "alert");
    assert_eq!(got.json["title"], "ann");
    assert_eq!(got.json["body"], "hello");
    assert_eq!(got.json["badge"], 3);
    assert_eq!(got.json["message_id"], MESSAGE_ID);
    assert_eq!(got.json["seq"], 12);
}

#[tokio::test]
async fn webhook_signed_with_the_wrong_secret_is_refused() {
    let r = WebhookReceiver::start().await;
    let webhook = Webhook::new(&PushWebhookConfig {
        secret: "not-the-secret".into(),
        ..webhook_config(&r)
    })
    .unwrap();
    let n = notification(PushProvider::Webhook, "gateway-42");
    assert_eq!(
        webhook.send(&n).await,
        Outcome::Rejected("push webhook 401".into())
    );
    assert!(!r.wait_deliveries(1).await[0].verified);
}

#[tokio::test]
async fn webhook_refusals_map_to_outcomes() {
    let r = WebhookReceiver::start().await;
    let webhook = Webhook::new(&webhook_config(&r)).unwrap();
    r.refuse("gone", Refusal::Unregistered);
    let gone = notification(PushProvider::Webhook, "gone");
    assert_eq!(webhook.send(&gone).await, Outcome::Unregistered);

    let busy = notification(PushProvider::Webhook, "busy");
    r.refuse_times(
        "busy",
        Refusal::TooManyRequests {
            retry_after: Some(3),
        },
        1,
    );
    assert_retry(&webhook.send(&busy).await, retry_after(3), "429");
    r.refuse_times("busy", Refusal::Unavailable { retry_after: None }, 1);
    assert_retry(&webhook.send(&busy).await, None, "503");
    assert_eq!(webhook.send(&busy).await, Outcome::Delivered);
    assert_eq!(r.deliveries().len(), 4);
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_retried() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let webhook = Webhook::new(&PushWebhookConfig {
        url: format!("http://127.0.0.1:{port}/push"),
        secret: "s".into(),
    })
    .unwrap();
    let n = notification(PushProvider::Webhook, "t");
    assert_retry(&webhook.send(&n).await, None, "cannot connect");
}
