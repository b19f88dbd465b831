//! Messages and stats through the admin API.

use axum::http::StatusCode;
use serde_json::{json, Value};

use tern_public::proto::client::ConvType;

use super::users::create;
use super::{admin, api, Api};
use crate::actor::Actor;
use crate::messages::Draft;
use crate::presence::Location;

async fn list(api: &Api, user: u64) -> Vec<Value> {
    let (status, v) = admin(api, "GET", &format!("/api/v1/users/{user}/messages"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["messages"].as_array().unwrap().clone()
}

async fn send(api: &Api, body: Value) -> (StatusCode, Value) {
    admin(api, "POST", "/api/v1/messages", Some(body)).await
}

#[tokio::test]
async fn a_system_message_lands_once_in_the_users_list() {
    let api = api().await;
    let ann = create(&api, "ann").await;
    let body = json!({"conv_type": "user", "to": ann, "content_type": 1, "content": "welcome", "client_msg_id": "w1"});
    let (status, first) = send(&api, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, again) = send(&api, body).await;
    assert_eq!(
        first["message_id"], again["message_id"],
        "idempotent by client_msg_id"
    );
    let msgs = list(&api, ann).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        (
            m["sender_id"].as_u64(),
            m["conv_type"].as_str(),
            m["content"].as_str(),
            m["seq"].as_u64()
        ),
        (Some(0), Some("system"), Some("welcome"), Some(1))
    );
    assert_eq!(m["message_id"], first["message_id"]);

    let refused = [
        (
            json!({"conv_type": "user", "to": 999, "content_type": 1, "content": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"from": 999, "conv_type": "user", "to": ann, "content_type": 1, "content": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"conv_type": "group", "to": 999, "content_type": 1, "content": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"conv_type": "user", "to": ann, "content_type": 0, "content": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"conv_type": "user", "to": ann, "content_type": 1000, "content": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"conv_type": "room", "to": ann, "content_type": 1, "content": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"conv_type": "user", "to": ann, "content_type": 1, "content": "x", "client_msg_id": "c".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"conv_type": "user", "to": ann, "content_type": 1, "content": "x".repeat(64 * 1024 + 1)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, want) in refused {
        let (status, v) = send(&api, body.clone()).await;
        assert_eq!(status, want, "{v}");
    }
    assert_eq!(
        list(&api, ann).await.len(),
        1,
        "refused sends stored nothing"
    );
    for q in ["limit=0", "limit=201", "after_seq=-1"] {
        let (status, _) = admin(
            &api,
            "GET",
            &format!("/api/v1/users/{ann}/messages?{q}"),
            None,
        )
        .await;
        assert!(status.is_client_error(), "{q}: {status}");
    }
    let (status, _) = admin(&api, "GET", "/api/v1/users/999/messages", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_send_to_a_group_lands_like_a_member_send() {
    let api = api().await;
    let own = create(&api, "owner").await;
    let a = create(&api, "alpha").await;
    let b = create(&api, "beta").await;
    let (_, g) = admin(
        &api,
        "POST",
        "/api/v1/groups",
        Some(json!({"owner_id": own, "name": "g", "member_ids": [a, b]})),
    )
    .await;
    let g = g["group_id"].as_u64().unwrap();

    // The same message twice: once by a client, once by the admin on the owner's behalf.
    let client = Draft {
        conv_type: ConvType::Group as i32,
        to: g,
        content_type: 1,
        content: "hello".into(),
        mentions: vec![],
        client_msg_id: "c1".into(),
    };
    crate::messages::send(&api.state.logic, &Actor::AdminAs(own), client)
        .await
        .unwrap();
    let body = json!({"from": own, "conv_type": "group", "to": g, "content_type": 1, "content": "hello", "client_msg_id": "c2"});
    let (status, sent) = send(&api, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let (_, again) = send(&api, body).await;
    assert_eq!(sent, again);

    let strip = |m: &Value| {
        let mut m = m.clone();
        for k in ["message_id", "seq", "client_msg_id", "created_at_ms"] {
            m.as_object_mut().unwrap().remove(k);
        }
        m
    };
    for user in [own, a, b] {
        let msgs = list(&api, user).await;
        let chat: Vec<&Value> = msgs.iter().filter(|m| m["content_type"] == 1).collect();
        assert_eq!(chat.len(), 2, "user {user}: {msgs:?}");
        assert_eq!(strip(chat[0]), strip(chat[1]), "user {user}");
        assert_eq!(chat[1]["message_id"], sent["message_id"]);
        assert_eq!(
            chat[1]["seq"].as_u64(),
            Some(chat[0]["seq"].as_u64().unwrap() + 1)
        );
    }
    // A system message to the group too.
    let (status, _) = send(
        &api,
        json!({"conv_type": "group", "to": g, "content_type": 1, "content": "note"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list(&api, b).await.last().unwrap()["sender_id"], 0);

    // Recall: any age, then the message reads as recalled in every list.
    let id = sent["message_id"].as_str().unwrap();
    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/messages/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let msgs = list(&api, a).await;
    let recalled = msgs.iter().find(|m| m["message_id"] == id).unwrap();
    assert_eq!(
        (recalled["status"].as_str(), recalled["content"].as_str()),
        (Some("recalled"), Some(""))
    );
    assert_eq!(
        msgs.last().unwrap()["content_type"],
        1201,
        "a recall event follows"
    );
    let event = msgs.last().unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, want) in [
        (
            format!("/api/v1/messages/{}", "0".repeat(32)),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/messages/xyz".to_owned(), StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/messages/{event}"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, _) = admin(&api, "DELETE", &path, None).await;
        assert_eq!(status, want, "{path}");
    }
}

#[tokio::test]
async fn stats_count_connections_users_and_nodes() {
    let api = api().await;
    let p = &api.state.logic.presence;
    let at = |node: &str, conn| Location {
        node_id: node.into(),
        conn_id: conn,
    };
    p.online(1, 10, at("n1", 1)).await.unwrap();
    p.online(1, 11, at("n2", 2)).await.unwrap();
    p.online(2, 20, at("n2", 3)).await.unwrap();
    let (status, v) = admin(&api, "GET", "/api/v1/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({"online_connections": 3, "online_users": 2, "nodes": [
            {"node_id": "n1", "connections": 1}, {"node_id": "n2", "connections": 2}]})
    );
}
