//! The admin API over a real HTTP socket, seen by real TCP clients: users
//! made and disabled by an admin, kicked devices, admin sends, room pushes
//! and broadcasts across connect nodes, and the metrics.

use std::time::Duration;

use serde_json::json;

use crate::common::http::call;
use crate::common::*;
use tern_client::proto::{KickReason, RoomTarget};
use tern_client::{Client, Code, Event};
use tern_public::FrameType;

/// The next event that is not an unmatched reply.
async fn next(d: &mut Device) -> Event {
    loop {
        match d.next_event().await {
            Event::Unmatched(_) => continue,
            e => return e,
        }
    }
}

async fn kicked(d: &mut Device) -> i32 {
    match next(d).await {
        Event::Kicked(k) => k.reason,
        other => panic!("expected KICKED, got {other:?}"),
    }
}

async fn heard(d: &mut Device) -> String {
    match next(d).await {
        Event::RoomPush(m) => String::from_utf8_lossy(&m.content).into_owned(),
        other => panic!("expected a ROOM_PUSH, got {other:?}"),
    }
}

async fn admin_created_users_sign_in_and_disabled_ones_are_kicked(shape: Shape) {
    let server = shape.start().await;
    let http = server.http[0];
    let (status, user, _) = call(
        http,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "ann", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let mut phone = login(server.addr(), "ann").await;
    assert_eq!(Some(phone.user_id), user["user_id"].as_u64());

    let path = format!("/api/v1/users/{}", phone.user_id);
    let (status, _, _) = call(http, "POST", &format!("{path}/disable"), None).await;
    assert_eq!(status, 200);
    assert_eq!(kicked(&mut phone).await, KickReason::UserDisabled as i32);
    assert!(matches!(next(&mut phone).await, Event::Closed));
    let (client, _events) = Client::connect(server.addr()).await.unwrap();
    let err = client
        .sign_in(phone.user_id, phone.device_id, &phone.token)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated), "token revoked");
    let err = client.login("ann", PASSWORD, None).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Forbidden), "disabled");

    let (status, _, _) = call(http, "POST", &format!("{path}/enable"), None).await;
    assert_eq!(status, 200);
    login(server.addr(), "ann").await;
    server.stop().await;
}

async fn a_kicked_device_must_log_in_again(shape: Shape) {
    let server = shape.start().await;
    let mut phone = register(server.addr(), "ben").await;
    let tablet = login(server.addr(), "ben").await;
    let path = format!(
        "/api/v1/users/{}/devices/{}",
        phone.user_id, phone.device_id
    );
    let (status, _, _) = call(server.http[0], "DELETE", &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(kicked(&mut phone).await, KickReason::TokenRevoked as i32);
    let (client, _events) = Client::connect(server.addr()).await.unwrap();
    let err = client
        .sign_in(phone.user_id, phone.device_id, &phone.token)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated));
    tablet
        .client
        .heartbeat()
        .await
        .expect("the other device stays");
    server.stop().await;
}

/// A list entry without what differs between two sends of the same text
/// (id, seq, client_msg_id, time, and the sending device: an admin send
/// comes from none).
fn shape_of(m: &tern_client::proto::Message) -> String {
    format!(
        "{} {:?} {} {} {:?}",
        m.sender_id, m.conv_type, m.conv_id, m.content_type, m.content
    )
}

async fn an_admin_send_to_a_group_lands_like_a_client_send(shape: Shape) {
    let server = shape.start().await;
    let mut owner = register(server.addr(), "owner").await;
    let mut members = Vec::new();
    for (i, &addr) in server.addrs().iter().enumerate() {
        members.push(register(addr, &format!("member{i}")).await);
    }
    let ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    let (status, g, _) = call(
        server.http[0],
        "POST",
        "/api/v1/groups",
        Some(json!({"owner_id": owner.user_id, "name": "crew", "member_ids": ids})),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let group = g["group_id"].as_u64().unwrap();

    owner
        .client
        .send(&groups::group_text(group, "hello", "c1"))
        .await
        .expect("client send");
    let body = json!({"from": owner.user_id, "conv_type": "group", "to": group,
        "content_type": 1, "content": "hello", "client_msg_id": "c2"});
    let (status, sent, _) = call(server.http[0], "POST", "/api/v1/messages", Some(body)).await;
    assert_eq!(status, 200, "{sent}");

    for d in members.iter_mut().chain([&mut owner]) {
        let list = d.client.sync_all(0).await.expect("sync");
        let chat: Vec<_> = list.iter().filter(|m| m.content_type == 1).collect();
        assert_eq!(chat.len(), 2, "user {}", d.user_id);
        assert_eq!(shape_of(chat[0]), shape_of(chat[1]));
        assert_eq!(
            hex::encode(&chat[1].id),
            sent["message_id"].as_str().unwrap()
        );
    }
    // Online members got both as pushes too.
    for m in &mut members {
        let mut texts = Vec::new();
        while texts.len() < 2 {
            let p = m.next_push().await;
            if p.content_type == 1 {
                texts.push(text(&p));
            }
        }
        assert_eq!(texts, ["hello", "hello"]);
    }
    server.stop().await;
}

async fn join(d: &Device, room: &str) {
    let _: tern_client::proto::Empty = d
        .client
        .request(
            FrameType::RoomJoin,
            &RoomTarget {
                room_id: room.into(),
            },
        )
        .await
        .expect("join");
}

async fn rest_room_pushes_and_broadcasts_reach_every_node(shape: Shape) {
    let server = shape.start().await;
    let http = server.http[0];
    let mut members = Vec::new();
    for (i, &addr) in server.addrs().iter().enumerate() {
        let d = register(addr, &format!("fan{i}")).await;
        join(&d, "lobby").await;
        members.push(d);
    }
    let mut outsider = register(server.addrs()[0], "outsider").await;
    let want = members.len() as u64;
    // Counts travel with the nodes' liveness announcements: wait for them.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, v, _) = call(http, "GET", "/api/v1/rooms/lobby", None).await;
        assert_eq!(status, 200);
        if v["online"].as_u64() == Some(want) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "online stays {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, top, _) = call(http, "GET", "/api/v1/rooms?limit=5", None).await;
    assert_eq!(top["rooms"][0], json!({"room_id": "lobby", "online": want}));

    let push = json!({"content": "from the admin"});
    let (status, _, _) = call(http, "POST", "/api/v1/rooms/lobby/messages", Some(push)).await;
    assert_eq!(status, 202);
    for m in &mut members {
        assert_eq!(heard(m).await, "from the admin");
    }
    let (status, _, _) = call(
        http,
        "POST",
        "/api/v1/broadcast",
        Some(json!({"content": "to everyone"})),
    )
    .await;
    assert_eq!(status, 202);
    for m in &mut members {
        assert_eq!(heard(m).await, "to everyone");
    }
    assert_eq!(
        heard(&mut outsider).await,
        "to everyone",
        "the outsider got the room message"
    );

    let (status, stats, _) = call(http, "GET", "/api/v1/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["online_connections"].as_u64(), Some(want + 1));
    assert_eq!(stats["online_users"].as_u64(), Some(want + 1));
    server.stop().await;
}

async fn metrics_show_connections_frames_and_commands(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    ann.client.heartbeat().await.unwrap();
    // Each logic node counts the commands it served: read them all.
    let mut text = String::new();
    for &http in &server.http {
        let (status, _, page) = call(http, "GET", "/metrics", None).await;
        assert_eq!(status, 200);
        text.push_str(&page);
    }
    let mut lines = vec![r#"tern_requests_total{command="register",code="OK"} 1"#];
    if shape == Shape::Standalone {
        // One process: the connect node's metrics are on the same page.
        lines.extend([
            "tern_connections 1",
            r#"tern_frames_received_total{frame="heartbeat"} 1"#,
            r#"tern_frames_sent_total{frame="reply"} 2"#,
            "tern_bus_request_duration_seconds_count 1",
        ]);
    }
    for line in lines {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] admin_created_users_sign_in_and_disabled_ones_are_kicked,
    #[tokio::test] a_kicked_device_must_log_in_again,
    #[tokio::test] an_admin_send_to_a_group_lands_like_a_client_send,
    #[tokio::test] rest_room_pushes_and_broadcasts_reach_every_node,
    #[tokio::test] metrics_show_connections_frames_and_commands,
}
