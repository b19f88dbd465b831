use super::*;
use bytes::Bytes;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use tern_testkit::push::{other_rsa_key, p256_key, rsa_key};

use crate::domain::PushProvider;
use crate::push::provider::Kind;

const TOKEN_URI: &str = "http://127.0.0.1:9/token";

fn config(key_pem: &str) -> FcmConfig {
    FcmConfig {
        project_id: "tern-test".into(),
        client_email: "push@tern-test.iam.gserviceaccount.com".into(),
        private_key_pem: key_pem.to_owned(),
        // Nothing listens there: a test that reached the network fails.
        token_uri: TOKEN_URI.into(),
        url: "http://127.0.0.1:9/".into(),
    }
}

fn notification(kind: Kind) -> Notification {
    Notification {
        id: 41,
        user_id: 7,
        device_id: 70,
        provider: PushProvider::Fcm,
        token: "fcm-token-1".into(),
        apns_topic: String::new(),
        apns_sandbox: false,
        kind,
        title: "ann".into(),
        body: "hello".into(),
        badge: 3,
        conv_type: 2,
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

/// An error as FCM writes it, with `errorCode` in its details when given.
fn fcm_error(code: u16, status: &str, error_code: Option<&str>, message: &str) -> String {
    let details = match error_code {
        Some(c) => {
            json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}])
        }
        None => json!([]),
    };
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
        .to_string()
}

#[test]
fn the_assertion_is_an_rs256_jwt_with_googles_claims() {
    let key = rsa_key();
    let fcm = Fcm::new(&config(&key.private_pem)).unwrap();
    let jwt = fcm.assertion(1_700_000_000).unwrap();

    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let mut rules = Validation::new(Algorithm::RS256);
    rules.validate_exp = false;
    rules.set_audience(&[TOKEN_URI]);
    let public = DecodingKey::from_rsa_pem(key.public_pem.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Claims>(&jwt, &public, &rules)
        .expect("signed with the service account's key")
        .claims;
    assert_eq!(
        claims,
        Claims {
            iss: "push@tern-test.iam.gserviceaccount.com".into(),
            scope: "https://www.googleapis.com/auth/firebase.messaging".into(),
            aud: TOKEN_URI.into(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
        }
    );
    let other = DecodingKey::from_rsa_pem(other_rsa_key().public_pem.as_bytes()).unwrap();
    assert!(jsonwebtoken::decode::<Claims>(&jwt, &other, &rules).is_err());
}

#[test]
fn settings_that_cannot_work_fail_at_start() {
    for (key, what) in [
        ("not a key".to_owned(), "text"),
        (p256_key().private_pem, "an EC key"),
    ] {
        let err = Fcm::new(&config(&key)).err().expect(what);
        assert!(
            matches!(err, SetupError::Key { .. }) && err.to_string().contains("private_key_pem"),
            "{what}: {err}"
        );
    }
    let key = rsa_key().private_pem;
    let bad = [
        FcmConfig {
            project_id: "a/b".into(),
            ..config(&key)
        },
        FcmConfig {
            project_id: String::new(),
            ..config(&key)
        },
        FcmConfig {
            client_email: String::new(),
            ..config(&key)
        },
        FcmConfig {
            token_uri: "oauth2.googleapis.com/token".into(),
            ..config(&key)
        },
        FcmConfig {
            url: "ftp://fcm.googleapis.com".into(),
            ..config(&key)
        },
    ];
    for cfg in bad {
        let shown = format!("{cfg:?}");
        let err = Fcm::new(&cfg).err().expect(&shown);
        assert!(matches!(err, SetupError::Setting { .. }), "{shown}: {err}");
    }
    let fcm = Fcm::new(&config(&key)).unwrap();
    assert_eq!(
        fcm.send_url,
        "http://127.0.0.1:9/v1/projects/tern-test/messages:send"
    );
}

#[test]
fn the_message_carries_the_notification_for_android_and_ios() {
    let n = notification(Kind::Alert);
    let now = n.expires_at_ms - 3_600_000;
    assert_eq!(
        message(&n, now),
        json!({"message": {
            "token": "fcm-token-1",
            "notification": {"title": "ann", "body": "hello"},
            "data": {
                "conv_type": "2",
                "conv_id": "8",
                "seq": "12",
                "message_id": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
                "kind": "alert",
                "badge": "3",
            },
            "android": {
                "collapse_key": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
                "ttl": "3600s",
                "notification": {
                    "tag": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
                    "notification_count": 3,
                },
            },
            "apns": {
                "headers": {
                    "apns-collapse-id": "0190f1e2-7a3b-7c4d-8e5f-061728394a5b",
                    "apns-expiration": "1700000123",
                },
                "payload": {"aps": {"badge": 3}},
            },
        }})
    );
    let w = message(&notification(Kind::Withdraw), now);
    assert_eq!(w["message"]["data"]["kind"], "withdraw");
    assert!(
        w["message"].get("notification").is_none(),
        "a data message: shows nothing"
    );
    assert_eq!(
        w["message"]["apns"]["headers"]["apns-push-type"],
        "background"
    );
    // The time left, rounded up; none once expired.
    assert_eq!(
        message(&n, n.expires_at_ms - 1_500)["message"]["android"]["ttl"],
        "2s"
    );
    assert_eq!(
        message(&n, n.expires_at_ms + 5)["message"]["android"]["ttl"],
        "0s"
    );
    let huge = Notification {
        badge: u64::MAX,
        ..notification(Kind::Alert)
    };
    let count = &message(&huge, now)["message"]["android"]["notification"]["notification_count"];
    assert_eq!(count, &json!(i32::MAX), "an int32 in FCM");
}

#[test]
fn answers_map_to_outcomes() {
    let retry = |after: Option<u64>, why: &str| Outcome::Retry {
        after: after.map(Duration::from_secs),
        why: why.into(),
    };
    let bad_token = json!({"error": {
        "code": 400,
        "message": "The registration token is not a valid FCM registration token",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}],
    }})
    .to_string();
    let bad_field = json!({"error": {
        "code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}],
    }})
    .to_string();
    let cases = [
        (
            answer(200, None, r#"{"name":"projects/p/messages/1"}"#),
            Outcome::Delivered,
            false,
        ),
        (
            answer(
                404,
                None,
                &fcm_error(
                    404,
                    "NOT_FOUND",
                    Some("UNREGISTERED"),
                    "Requested entity was not found.",
                ),
            ),
            Outcome::Unregistered,
            false,
        ),
        (
            answer(
                400,
                None,
                &fcm_error(400, "INVALID_ARGUMENT", Some("UNREGISTERED"), "x"),
            ),
            Outcome::Unregistered,
            false,
        ),
        (answer(400, None, &bad_token), Outcome::Unregistered, false),
        (answer(400, None, &bad_field), Outcome::Unregistered, false),
        (
            answer(
                400,
                None,
                &fcm_error(
                    400,
                    "INVALID_ARGUMENT",
                    Some("INVALID_ARGUMENT"),
                    "Invalid value at 'message.android.ttl'",
                ),
            ),
            Outcome::Rejected(
                "FCM 400 INVALID_ARGUMENT: Invalid value at 'message.android.ttl'".into(),
            ),
            false,
        ),
        // A 404 that does not name the token (a wrong URL or project) must
        // not remove every token.
        (
            answer(404, None, "<html>Not Found</html>"),
            Outcome::Rejected("FCM 404".into()),
            false,
        ),
        (
            answer(
                401,
                None,
                &fcm_error(
                    401,
                    "UNAUTHENTICATED",
                    None,
                    "Request had invalid authentication credentials.",
                ),
            ),
            retry(
                None,
                "FCM 401 UNAUTHENTICATED: Request had invalid authentication credentials.",
            ),
            true,
        ),
        (
            answer(
                403,
                None,
                &fcm_error(
                    403,
                    "PERMISSION_DENIED",
                    Some("SENDER_ID_MISMATCH"),
                    "SenderId mismatch",
                ),
            ),
            Outcome::Rejected("FCM 403 SENDER_ID_MISMATCH: SenderId mismatch".into()),
            false,
        ),
        (
            answer(
                429,
                Some(30),
                &fcm_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    Some("QUOTA_EXCEEDED"),
                    "Quota exceeded.",
                ),
            ),
            retry(Some(30), "FCM 429 QUOTA_EXCEEDED: Quota exceeded."),
            false,
        ),
        (
            answer(
                503,
                None,
                &fcm_error(503, "UNAVAILABLE", Some("UNAVAILABLE"), "down"),
            ),
            retry(None, "FCM 503 UNAVAILABLE: down"),
            false,
        ),
        (
            answer(
                500,
                Some(5),
                &fcm_error(500, "INTERNAL", Some("INTERNAL"), "oops"),
            ),
            retry(Some(5), "FCM 500 INTERNAL: oops"),
            false,
        ),
    ];
    for (a, want, refused) in cases {
        let shown = format!("{} {:?}", a.status, a.body);
        assert_eq!(outcome(&a), (want, refused), "{shown}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_access_token_is_kept_until_shortly_before_it_expires() {
    let fcm = Fcm::new(&config(&rsa_key().private_pem))
        .unwrap()
        .with_token_renewal(Duration::from_secs(300));
    *fcm.token.lock().await = Some(AccessToken {
        value: "ya29.cached".into(),
        expires_at: Instant::now() + Duration::from_secs(600),
    });
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(&*fcm.access_token().await.unwrap(), "ya29.cached");

    // Forgetting another token keeps this one.
    fcm.forget("ya29.older").await;
    assert_eq!(&*fcm.access_token().await.unwrap(), "ya29.cached");

    // 5 minutes before its expiry a new one is asked for (and nothing
    // answers here).
    tokio::time::advance(Duration::from_secs(1)).await;
    let renewed = fcm.access_token().await;
    assert!(
        matches!(&renewed, Err(Outcome::Retry { why, .. }) if why.starts_with("FCM token endpoint: ")),
        "{renewed:?}"
    );

    *fcm.token.lock().await = Some(AccessToken {
        value: "ya29.cached".into(),
        expires_at: Instant::now() + Duration::from_secs(3600),
    });
    fcm.forget("ya29.cached").await;
    assert!(
        fcm.token.lock().await.is_none(),
        "a refused token is dropped"
    );
}
