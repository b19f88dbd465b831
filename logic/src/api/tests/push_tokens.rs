//! Devices' push tokens through the admin API: shown, listed, removed, and
//! 404s that tell a wrong user or device from a missing token.

use axum::http::StatusCode;
use serde_json::json;

use super::users::{create, login, PASSWORD};
use super::{admin, api, code, Api};
use crate::domain::PushProvider;
use crate::store::PushToken;

const UPDATED_AT: i64 = 1_700_000_000_000;

fn uri(user_id: u64, device_id: u64) -> String {
    format!("/api/v1/users/{user_id}/devices/{device_id}/push-token")
}

/// Registers a push token for a signed-in device, as PUSH_TOKEN_SET does.
async fn set(api: &Api, user_id: u64, device_id: u64, provider: PushProvider, token: &str) {
    let apns = provider == PushProvider::Apns;
    api.state
        .logic
        .store
        .set_push_token(&PushToken {
            device_id,
            user_id,
            provider,
            token: token.into(),
            apns_topic: if apns { "com.example.tern" } else { "" }.into(),
            apns_sandbox: apns,
            updated_at: UPDATED_AT,
        })
        .await
        .unwrap();
}

/// The push provider each device of `user_id` shows in the device list.
async fn listed(api: &Api, user_id: u64) -> Vec<(u64, serde_json::Value)> {
    let (status, v) = admin(
        api,
        "GET",
        &format!("/api/v1/users/{user_id}/devices"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["device_id"].as_u64().unwrap(), d["push_provider"].clone()))
        .collect()
}

/// A 404 with `message`.
fn assert_not_found(got: (StatusCode, serde_json::Value), message: &str, what: &str) {
    let (status, v) = got;
    assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {v}");
    assert_eq!(code(&v), "not_found", "{what}");
    assert_eq!(v["error"]["message"], message, "{what}");
}

#[tokio::test]
async fn a_push_token_is_shown_listed_and_removed() {
    let api = api().await;
    let finn = create(&api, "finn").await;
    let phone = login(&api, "finn", PASSWORD, 1).await.unwrap().device_id;
    let tablet = login(&api, "finn", PASSWORD, 2).await.unwrap().device_id;
    set(&api, finn, phone, PushProvider::Apns, "ab12cd34").await;

    let (status, v) = admin(&api, "GET", &uri(finn, phone), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({
            "device_id": phone,
            "provider": "apns",
            "token": "ab12cd34",
            "apns_topic": "com.example.tern",
            "apns_sandbox": true,
            "updated_at_ms": UPDATED_AT,
        })
    );
    assert_eq!(
        listed(&api, finn).await,
        vec![(phone, json!("apns")), (tablet, json!(null))]
    );

    // A device without a token: 404 for both, and nothing else changes.
    for method in ["GET", "DELETE"] {
        let got = admin(&api, method, &uri(finn, tablet), None).await;
        assert_not_found(got, "the device has no push token", method);
    }
    let (status, _) = admin(&api, "GET", &uri(finn, phone), None).await;
    assert_eq!(status, StatusCode::OK, "the phone's token survives");

    let (status, v) = admin(&api, "DELETE", &uri(finn, phone), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let store = &api.state.logic.store;
    assert_eq!(store.push_token(finn, phone).await.unwrap(), None);
    for method in ["GET", "DELETE"] {
        let got = admin(&api, method, &uri(finn, phone), None).await;
        assert_not_found(got, "the device has no push token", method);
    }
    assert_eq!(
        listed(&api, finn).await,
        vec![(phone, json!(null)), (tablet, json!(null))]
    );
    // Removing the push token signs nothing out.
    let (_, v) = admin(&api, "GET", &format!("/api/v1/users/{finn}/devices"), None).await;
    assert_eq!(v["devices"][0]["signed_in"], true, "{v}");
}

#[tokio::test]
async fn push_token_routes_refuse_unknown_users_and_devices_of_others() {
    let api = api().await;
    let finn = create(&api, "finn").await;
    let gus = create(&api, "gus").await;
    let phone = login(&api, "finn", PASSWORD, 1).await.unwrap().device_id;
    let gus_phone = login(&api, "gus", PASSWORD, 2).await.unwrap().device_id;
    set(&api, finn, phone, PushProvider::Fcm, "finn-fcm").await;
    set(&api, gus, gus_phone, PushProvider::Webhook, "gus-hook").await;

    for method in ["GET", "DELETE"] {
        let got = admin(&api, method, &uri(999, phone), None).await;
        assert_not_found(got, "no such user", method);
        let got = admin(&api, method, &uri(finn, 999), None).await;
        assert_not_found(got, "no such device", method);
        // Gus's device under finn: neither shown nor removed.
        let got = admin(&api, method, &uri(finn, gus_phone), None).await;
        assert_not_found(got, "no such device", method);
    }
    let store = &api.state.logic.store;
    let kept = store.push_token(gus, gus_phone).await.unwrap();
    assert_eq!(kept.map(|t| t.token), Some("gus-hook".into()));
    let (status, v) = admin(&api, "GET", &uri(gus, gus_phone), None).await;
    assert_eq!(
        (status, &v["provider"]),
        (StatusCode::OK, &json!("webhook"))
    );

    // A deleted user is no user, whatever its devices held.
    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/users/{gus}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in ["GET", "DELETE"] {
        let got = admin(&api, method, &uri(gus, gus_phone), None).await;
        assert_not_found(got, "no such user", method);
    }
    let (status, _) = admin(&api, "GET", &uri(finn, phone), None).await;
    assert_eq!(status, StatusCode::OK, "finn's token untouched");
}
