//! Users, devices and friends through the admin API.

use std::time::Duration;

use axum::http::StatusCode;
use prost::Message as _;
use serde_json::json;

use tern_public::bus::{Bus, Subscription};
use tern_public::proto::bus::{node_message, NodeMessage};
use tern_public::proto::client::{
    AuthReply, FriendRequest, FriendTarget, KickReason, LoginRequest, SignInRequest,
};

use super::{admin, api, code, Api};
use crate::actor::{Actor, Connection};
use crate::error::LogicError;
use crate::{auth, friends};

pub(super) const PASSWORD: &str = "correct horse";

fn conn(conn_id: u64) -> Connection {
    Connection {
        node_id: "n1".into(),
        conn_id,
        heartbeat_interval_secs: 30,
        remote_addr: String::new(),
    }
}

/// Creates a user over the API; its id.
pub(super) async fn create(api: &Api, name: &str) -> u64 {
    let (status, v) = admin(
        api,
        "POST",
        "/api/v1/users",
        Some(json!({"username": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["user_id"].as_u64().unwrap()
}

/// Logs `name` in on connection `conn_id` of node n1: a new device.
pub(super) async fn login(
    api: &Api,
    name: &str,
    password: &str,
    conn_id: u64,
) -> Result<AuthReply, LogicError> {
    let req = LoginRequest {
        username: name.into(),
        password: password.into(),
        ..Default::default()
    };
    auth::login(&api.state.logic, &conn(conn_id), req)
        .await
        .map(|(reply, _)| reply)
}

async fn sign_in(api: &Api, a: &AuthReply, conn_id: u64) -> Result<(), LogicError> {
    let req = SignInRequest {
        user_id: a.user_id,
        device_id: a.device_id,
        token: a.token.clone(),
    };
    auth::sign_in(&api.state.logic, &conn(conn_id), req)
        .await
        .map(|_| ())
}

/// The next kick sent to node n1, as (device, conn, reason).
async fn kicked(sub: &mut Subscription) -> (u64, u64, i32) {
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a kick within 5 s")
        .expect("subscription open");
    match NodeMessage::decode(msg.payload).unwrap().body {
        Some(node_message::Body::Kick(k)) => (k.device_id, k.conn_id, k.reason),
        other => panic!("not a kick: {other:?}"),
    }
}

async fn node_messages(api: &Api) -> Subscription {
    api.bus.subscribe("tern.node.n1", None).await.unwrap()
}

#[tokio::test]
async fn create_get_list_and_update_users() {
    let api = api().await;
    let ann = create(&api, "Ann").await;
    for name in ["anna", "annie", "bob"] {
        create(&api, name).await;
    }
    let (status, v) = admin(&api, "GET", &format!("/api/v1/users/{ann}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            v["username"].as_str(),
            v["nickname"].as_str(),
            v["status"].as_str()
        ),
        (Some("ann"), Some("ann"), Some("active"))
    );

    // Refused creations change nothing.
    let refused = [
        (
            json!({"username": "ANN", "password": PASSWORD}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"username": "a", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "carl", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "carl"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "admin": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "nickname": "n".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // The document says 1-64 characters; leave it out for the username.
        (
            json!({"username": "carl", "password": PASSWORD, "nickname": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "carl", "password": PASSWORD, "nickname": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, want) in refused {
        let (status, v) = admin(&api, "POST", "/api/v1/users", Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {v}");
    }
    let (status, _) = super::call(
        &api,
        "POST",
        "/api/v1/users",
        Some(super::TOKEN),
        Some("{nope"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // serde would read the struct from an array: refused, nothing created.
    let array = r#"["carl", "correct horse", null]"#;
    let (status, _) = super::call(
        &api,
        "POST",
        "/api/v1/users",
        Some(super::TOKEN),
        Some(array),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Paging by prefix, in username order.
    let (_, v) = admin(&api, "GET", "/api/v1/users?prefix=ann&limit=2", None).await;
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        (names, v["next"].as_str()),
        (vec!["ann", "anna"], Some("anna"))
    );
    let (_, v) = admin(
        &api,
        "GET",
        "/api/v1/users?prefix=ann&limit=2&after=anna",
        None,
    )
    .await;
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!((names, v["next"].is_null()), (vec!["annie"], true));
    let (_, v) = admin(&api, "GET", "/api/v1/users", None).await;
    assert_eq!(
        v["users"].as_array().unwrap().len(),
        4,
        "carl was never created"
    );
    for (q, want) in [
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=101", StatusCode::UNPROCESSABLE_ENTITY),
        ("prefix=A%20B", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=x", StatusCode::BAD_REQUEST),
    ] {
        let (status, _) = admin(&api, "GET", &format!("/api/v1/users?{q}"), None).await;
        assert_eq!(status, want, "{q}");
    }

    // Profile changes; a refused one changes nothing.
    let uri = format!("/api/v1/users/{ann}");
    let (status, v) = admin(&api, "PATCH", &uri, Some(json!({"nickname": "Annie A."}))).await;
    assert_eq!(
        (status, v["nickname"].as_str()),
        (StatusCode::OK, Some("Annie A."))
    );
    let (status, _) = admin(&api, "PATCH", &uri, Some(json!({"nickname": ""}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = admin(&api, "GET", &uri, None).await;
    assert_eq!(v["nickname"], "Annie A.");

    for (method, uri) in [("GET", "/api/v1/users/999"), ("PATCH", "/api/v1/users/999")] {
        let (status, v) = admin(&api, method, uri, Some(json!({"nickname": "x"}))).await;
        assert_eq!(
            (status, code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {uri}"
        );
    }
    let (status, _) = admin(&api, "GET", "/api/v1/users/abc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_admin_created_user_logs_in_and_a_new_password_revokes_every_token() {
    let api = api().await;
    let id = create(&api, "dora").await;
    let phone = login(&api, "dora", PASSWORD, 1)
        .await
        .expect("admin-made user logs in");
    assert_eq!(phone.user_id, id);

    let uri = format!("/api/v1/users/{id}/password");
    let (status, _) = admin(&api, "PUT", &uri, Some(json!({"password": "short"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    sign_in(&api, &phone, 2)
        .await
        .expect("a refused change revokes nothing");
    let mut kicks = node_messages(&api).await;

    let (status, _) = admin(
        &api,
        "PUT",
        &uri,
        Some(json!({"password": "a new password"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reason = KickReason::TokenRevoked as i32;
    assert_eq!(kicked(&mut kicks).await, (phone.device_id, 2, reason));
    assert!(
        sign_in(&api, &phone, 3).await.is_err(),
        "old token still works"
    );
    assert!(
        login(&api, "dora", PASSWORD, 4).await.is_err(),
        "old password still works"
    );
    login(&api, "dora", "a new password", 5)
        .await
        .expect("new password");
    let (status, _) = admin(
        &api,
        "PUT",
        "/api/v1/users/999/password",
        Some(json!({"password": "a new password"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_disabled_user_is_kicked_and_cannot_sign_in_until_enabled() {
    let api = api().await;
    let id = create(&api, "eve").await;
    let phone = login(&api, "eve", PASSWORD, 1).await.unwrap();
    let mut kicks = node_messages(&api).await;

    let (status, v) = admin(&api, "POST", &format!("/api/v1/users/{id}/disable"), None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    let reason = KickReason::UserDisabled as i32;
    assert_eq!(kicked(&mut kicks).await, (phone.device_id, 1, reason));
    assert!(sign_in(&api, &phone, 2).await.is_err());
    let refused = login(&api, "eve", PASSWORD, 3).await.unwrap_err();
    assert!(matches!(refused, LogicError::Forbidden(_)), "{refused:?}");

    let (status, v) = admin(&api, "POST", &format!("/api/v1/users/{id}/enable"), None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    login(&api, "eve", PASSWORD, 4)
        .await
        .expect("enabled again");
    for action in ["disable", "enable"] {
        let (status, _) = admin(&api, "POST", &format!("/api/v1/users/999/{action}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn devices_are_listed_and_a_kicked_device_needs_its_password_again() {
    let api = api().await;
    let id = create(&api, "finn").await;
    let other = create(&api, "gus").await;
    let phone = login(&api, "finn", PASSWORD, 1).await.unwrap();
    let tablet = login(&api, "finn", PASSWORD, 2).await.unwrap();
    let gus_phone = login(&api, "gus", PASSWORD, 3).await.unwrap();

    let (status, v) = admin(&api, "GET", &format!("/api/v1/users/{id}/devices"), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<u64> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![phone.device_id, tablet.device_id]);
    assert!(v["devices"][0]["signed_in"].as_bool().unwrap());

    // Someone else's device, or none at all: 404, nothing revoked.
    for (user, device) in [(id, gus_phone.device_id), (id, 999), (999, phone.device_id)] {
        let (status, _) = admin(
            &api,
            "DELETE",
            &format!("/api/v1/users/{user}/devices/{device}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}/{device}");
    }
    sign_in(&api, &gus_phone, 4)
        .await
        .expect("gus's device untouched");
    let _ = other;
    let mut kicks = node_messages(&api).await;

    let uri = format!("/api/v1/users/{id}/devices/{}", phone.device_id);
    let (status, _) = admin(&api, "DELETE", &uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reason = KickReason::TokenRevoked as i32;
    assert_eq!(kicked(&mut kicks).await, (phone.device_id, 1, reason));
    assert!(
        sign_in(&api, &phone, 5).await.is_err(),
        "kicked token still works"
    );
    sign_in(&api, &tablet, 6)
        .await
        .expect("the other device stays");
    let (_, v) = admin(&api, "GET", &format!("/api/v1/users/{id}/devices"), None).await;
    assert_eq!(v["devices"][0]["signed_in"], false);
    let (status, _) = admin(&api, "GET", "/api/v1/users/999/devices", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn befriend(api: &Api, a: u64, b: u64) {
    let logic = &api.state.logic;
    let req = FriendRequest {
        user_id: b,
        message: String::new(),
    };
    friends::request(logic, &Actor::AdminAs(a), req)
        .await
        .unwrap();
    friends::accept(logic, &Actor::AdminAs(b), FriendTarget { user_id: a })
        .await
        .unwrap();
}

#[tokio::test]
async fn friends_are_listed_and_removed_on_both_sides() {
    let api = api().await;
    let hal = create(&api, "hal").await;
    let ida = create(&api, "ida").await;
    let jon = create(&api, "jon").await;
    befriend(&api, hal, ida).await;
    befriend(&api, hal, jon).await;

    let uri = format!("/api/v1/users/{hal}/friends");
    let (status, v) = admin(&api, "GET", &format!("{uri}?limit=1"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["friends"][0]["username"], "ida");
    assert_eq!(v["friends"][0]["state"], "accepted");
    assert_eq!(v["next"].as_u64(), Some(ida));
    let (_, v) = admin(&api, "GET", &format!("{uri}?after={ida}"), None).await;
    assert_eq!(
        (v["friends"][0]["user_id"].as_u64(), v["next"].is_null()),
        (Some(jon), true)
    );

    let (status, _) = admin(&api, "DELETE", &format!("{uri}/{ida}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = admin(&api, "GET", &format!("/api/v1/users/{ida}/friends"), None).await;
    assert_eq!(v["friends"], json!([]), "removed on the friend's side too");
    for (path, want) in [
        (format!("{uri}/{ida}"), StatusCode::NOT_FOUND),
        (format!("{uri}/999"), StatusCode::NOT_FOUND),
        (
            format!("/api/v1/users/999/friends/{ida}"),
            StatusCode::NOT_FOUND,
        ),
        (format!("{uri}/{hal}"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, _) = admin(&api, "DELETE", &path, None).await;
        assert_eq!(status, want, "{path}");
    }
    let (_, v) = admin(&api, "GET", &uri, None).await;
    assert_eq!(v["friends"].as_array().unwrap().len(), 1, "jon stays");
    let (status, _) = admin(&api, "GET", &format!("{uri}?limit=501"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_deleted_user_is_gone_and_its_name_free_but_owners_must_hand_over_first() {
    let api = api().await;
    let kim = create(&api, "kim").await;
    let lea = create(&api, "lea").await;
    befriend(&api, kim, lea).await;
    let phone = login(&api, "kim", PASSWORD, 1).await.unwrap();
    let (status, g) = admin(
        &api,
        "POST",
        "/api/v1/groups",
        Some(json!({"owner_id": lea, "name": "g", "member_ids": [kim]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = admin(&api, "DELETE", &format!("/api/v1/users/{lea}"), None).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "lea owns a group"
    );

    let mut kicks = node_messages(&api).await;
    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/users/{kim}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kicked(&mut kicks).await.0, phone.device_id);
    let (status, _) = admin(&api, "GET", &format!("/api/v1/users/{kim}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/users/{kim}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(sign_in(&api, &phone, 2).await.is_err());
    let (_, v) = admin(&api, "GET", &format!("/api/v1/users/{lea}/friends"), None).await;
    assert_eq!(v["friends"], json!([]));
    let group = g["group_id"].as_u64().unwrap();
    let (_, v) = admin(&api, "GET", &format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(v["member_count"], 1);
    let (_, v) = admin(&api, "GET", "/api/v1/users?prefix=k", None).await;
    assert_eq!(v["users"], json!([]));
    // USER_GET leaves a deleted user out, as it does an unknown id.
    let got = crate::users::get(
        &api.state.logic,
        tern_public::proto::client::UserGetRequest {
            user_ids: vec![kim, lea],
        },
    )
    .await
    .unwrap();
    let ids: Vec<u64> = got.users.iter().map(|u| u.user_id).collect();
    assert_eq!(ids, vec![lea], "only lea is left");
    let again = create(&api, "kim").await;
    assert_ne!(again, kim, "the name is free, the account is new");
}
