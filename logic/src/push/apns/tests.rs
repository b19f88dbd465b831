use super::*;
use bytes::Bytes;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use tern_testkit::push::{p256_key, rsa_key};

use crate::domain::PushProvider;

fn config(key_pem: &str) -> ApnsConfig {
    ApnsConfig {
        key_pem: key_pem.to_owned(),
        key_id: "KEYID12345".into(),
        team_id: "TEAMID1234".into(),
        default_topic: "com.example.app".into(),
        // Nothing listens there: a test that reached the network fails.
        url: "http://127.0.0.1:9/".into(),
        sandbox_url: "http://127.0.0.1:9".into(),
    }
}

pub(crate) fn notification(kind: Kind) -> Notification {
    Notification {
        id: 41,
        user_id: 7,
        device_id: 70,
        provider: PushProvider::Apns,
        token: "ab".repeat(32),
        apns_topic: String::new(),
        apns_sandbox: false,
        kind,
        title: "ann".into(),
        body: "hello".into(),
        badge: 3,
        conv_type: 1,
        conv_id: 8,
        seq: 12,
        message_id: "0190f1e2-7a3b-7c4d-8e5f-061728394a5b".into(),
        expires_at_ms: 1_700_000_123_456,
    }
}

fn answer(status: u16, retry_after: Option<u64>, body: &str) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        retry_after: retry_after.map(Duration::from_secs),
        body: Bytes::from(body.to_owned()),
    }
}

#[test]
fn the_provider_token_is_an_es256_jwt_with_apples_claims() {
    let key = p256_key();
    let apns = Apns::new(&config(&key.private_pem)).unwrap();
    let jwt = apns.provider_token().unwrap();

    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("KEYID12345"));
    assert_eq!(header.typ, None, "Apple's header is {{alg, kid}}");
    let mut rules = Validation::new(Algorithm::ES256);
    rules.required_spec_claims.clear();
    rules.validate_exp = false;
    let public = DecodingKey::from_ec_pem(key.public_pem.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Claims>(&jwt, &public, &rules)
        .expect("signed with the configured key")
        .claims;
    assert_eq!(claims.iss, "TEAMID1234");
    assert!(unix_secs() - claims.iat <= 2, "iat is now: {claims:?}");
    let other = DecodingKey::from_ec_pem(p256_key().public_pem.as_bytes()).unwrap();
    assert!(jsonwebtoken::decode::<Claims>(&jwt, &other, &rules).is_err());
}

#[tokio::test(start_paused = true)]
async fn the_provider_token_is_reused_until_the_renewal_age() {
    let apns = Apns::new(&config(&p256_key().private_pem))
        .unwrap()
        .with_token_renewal(Duration::from_secs(60));
    let first = apns.provider_token().unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(apns.provider_token().unwrap(), first, "reused before 60 s");
    tokio::time::advance(Duration::from_secs(1)).await;
    let second = apns.provider_token().unwrap();
    assert_ne!(second, first, "renewed at 60 s");
    assert_eq!(apns.provider_token().unwrap(), second);

    // A refusal of an older token keeps the newer one (Apple throttles
    // renewals); a refusal of the one in use drops it.
    apns.forget(&first);
    assert_eq!(apns.provider_token().unwrap(), second);
    apns.forget(&second);
    assert_ne!(apns.provider_token().unwrap(), second);
}

#[test]
fn settings_that_cannot_work_fail_at_start() {
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    for (key, what) in [
        ("not a key".to_owned(), "text"),
        (rsa_key().private_pem, "an RSA key"),
        (p384.serialize_pem(), "a P-384 key"),
    ] {
        let err = Apns::new(&config(&key)).err().expect(what);
        assert!(
            matches!(err, SetupError::Key { .. }) && err.to_string().contains("key_pem"),
            "{what}: {err}"
        );
    }
    let key = p256_key().private_pem;
    let bad = [
        ApnsConfig {
            key_id: " ".into(),
            ..config(&key)
        },
        ApnsConfig {
            team_id: String::new(),
            ..config(&key)
        },
        ApnsConfig {
            default_topic: String::new(),
            ..config(&key)
        },
        ApnsConfig {
            url: "api.push.apple.com".into(),
            ..config(&key)
        },
        ApnsConfig {
            sandbox_url: String::new(),
            ..config(&key)
        },
    ];
    for cfg in bad {
        let shown = format!("{cfg:?}");
        let err = Apns::new(&cfg).err().expect(&shown);
        assert!(matches!(err, SetupError::Setting { .. }), "{shown}: {err}");
    }
}

#[test]
fn the_payload_is_an_alert_with_the_conversation() {
    let n = notification(Kind::Alert);
    assert_eq!(
        payload(&n),
        json!({
            "aps": {
                "alert": {"title": "ann", "body": "hello"},
                "badge": 3,
                "sound": "default",
                "thread-id": "1:8",
            },
            "tern": {
                "conv_type": 1,
                "conv_id": 8,
                "seq": 12,
                "message_id": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
                "kind": "alert",
            },
        })
    );
    let withdraw = payload(&notification(Kind::Withdraw));
    assert_eq!(withdraw["tern"]["kind"], "withdraw");
    assert_eq!(
        withdraw["aps"],
        json!({"content-available": 1}),
        "shows nothing"
    );
    assert_eq!(
        (push_type(Kind::Withdraw), priority(Kind::Withdraw)),
        ("background", "5")
    );
    assert_eq!(
        (push_type(Kind::Alert), priority(Kind::Alert)),
        ("alert", "10")
    );
}

#[test]
fn answers_map_to_outcomes() {
    let retry = |after: Option<u64>, why: &str| Outcome::Retry {
        after: after.map(Duration::from_secs),
        why: why.into(),
    };
    let cases = [
        (answer(200, None, ""), Outcome::Delivered, false),
        (
            answer(
                410,
                None,
                r#"{"reason":"Unregistered","timestamp":1700000000000}"#,
            ),
            Outcome::Unregistered,
            false,
        ),
        (
            answer(410, None, r#"{"reason":"ExpiredToken"}"#),
            Outcome::Unregistered,
            false,
        ),
        (
            answer(400, None, r#"{"reason":"BadDeviceToken"}"#),
            Outcome::Unregistered,
            false,
        ),
        (
            answer(400, None, r#"{"reason":"DeviceTokenNotForTopic"}"#),
            Outcome::Unregistered,
            false,
        ),
        (
            answer(400, None, r#"{"reason":"BadTopic"}"#),
            Outcome::Rejected("APNs 400 BadTopic".into()),
            false,
        ),
        (
            answer(403, None, r#"{"reason":"ExpiredProviderToken"}"#),
            retry(None, "APNs 403 ExpiredProviderToken"),
            true,
        ),
        (
            answer(403, None, r#"{"reason":"InvalidProviderToken"}"#),
            retry(None, "APNs 403 InvalidProviderToken"),
            true,
        ),
        (
            answer(403, None, r#"{"reason":"Forbidden"}"#),
            Outcome::Rejected("APNs 403 Forbidden".into()),
            false,
        ),
        (
            answer(413, None, r#"{"reason":"PayloadTooLarge"}"#),
            Outcome::Rejected("APNs 413 PayloadTooLarge".into()),
            false,
        ),
        (
            answer(429, Some(7), r#"{"reason":"TooManyRequests"}"#),
            retry(Some(7), "APNs 429 TooManyRequests"),
            false,
        ),
        (
            answer(503, None, r#"{"reason":"ServiceUnavailable"}"#),
            retry(None, "APNs 503 ServiceUnavailable"),
            false,
        ),
        (answer(502, None, "<html>"), retry(None, "APNs 502"), false),
    ];
    for (a, want, refused) in cases {
        let shown = format!("{} {:?}", a.status, a.body);
        assert_eq!(outcome(&a), (want, refused), "{shown}");
    }
}

#[tokio::test]
async fn a_token_that_is_not_hex_is_never_sent() {
    let apns = Apns::new(&config(&p256_key().private_pem)).unwrap();
    for token in ["../../x", "", "zz"] {
        let n = Notification {
            token: token.into(),
            ..notification(Kind::Alert)
        };
        assert_eq!(apns.send(&n).await, Outcome::Unregistered, "{token:?}");
    }
    // A hex token is sent: nothing listens at the URL, so it is retried.
    let sent = apns.send(&notification(Kind::Alert)).await;
    assert!(
        matches!(&sent, Outcome::Retry { why, .. } if why.starts_with("APNs: ")),
        "{sent:?}"
    );
}
