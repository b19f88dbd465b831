//! The admin API through `Router::oneshot`: every route's happy path, its
//! token check, bad bodies and values (nothing changes), and the OpenAPI
//! document naming every route. One file per resource.

mod groups;
mod messages;
mod push_tokens;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message as _;
use tower::ServiceExt;

use tern_public::bus::{Bus, MemoryBus};
use tern_public::proto::bus::{Broadcast, RoomDeliver};
use tern_public::proto::client::RoomMessage;
use tern_public::{FrameCodec, FrameType};

use super::{router, ApiState};
use crate::store::Store;
use crate::{LiveState, Logic, LogicConfig};

const TOKEN: &str = "test-admin-token";

pub(super) struct Api {
    pub state: ApiState,
    pub bus: Arc<MemoryBus>,
    _dir: tempfile::TempDir,
}

pub(super) async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let bus = Arc::new(MemoryBus::new());
    let logic = Logic::start(
        LogicConfig::default(),
        store,
        LiveState::memory(),
        bus.clone(),
    );
    Api {
        state: ApiState::new(logic, Some(TOKEN.into()), |_| {}),
        bus,
        _dir: dir,
    }
}

pub(super) async fn call(
    api: &Api,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = router(api.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// `call` with the admin token and an optional JSON body.
pub(super) async fn admin(
    api: &Api,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    call(api, method, uri, Some(TOKEN), body.as_deref()).await
}

pub(super) fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Every admin route the router serves, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{user_id}"),
    ("patch", "/api/v1/users/{user_id}"),
    ("delete", "/api/v1/users/{user_id}"),
    ("put", "/api/v1/users/{user_id}/password"),
    ("post", "/api/v1/users/{user_id}/disable"),
    ("post", "/api/v1/users/{user_id}/enable"),
    ("get", "/api/v1/users/{user_id}/devices"),
    ("delete", "/api/v1/users/{user_id}/devices/{device_id}"),
    (
        "get",
        "/api/v1/users/{user_id}/devices/{device_id}/push-token",
    ),
    (
        "delete",
        "/api/v1/users/{user_id}/devices/{device_id}/push-token",
    ),
    ("get", "/api/v1/users/{user_id}/friends"),
    ("delete", "/api/v1/users/{user_id}/friends/{friend_id}"),
    ("get", "/api/v1/users/{user_id}/messages"),
    ("get", "/api/v1/users/{user_id}/conversations"),
    (
        "get",
        "/api/v1/users/{user_id}/conversations/{conv_type}/{conv_id}/messages",
    ),
    ("post", "/api/v1/groups"),
    ("get", "/api/v1/groups"),
    ("get", "/api/v1/groups/{group_id}"),
    ("patch", "/api/v1/groups/{group_id}"),
    ("delete", "/api/v1/groups/{group_id}"),
    ("get", "/api/v1/groups/{group_id}/members"),
    ("post", "/api/v1/groups/{group_id}/members"),
    ("patch", "/api/v1/groups/{group_id}/members/{user_id}"),
    ("delete", "/api/v1/groups/{group_id}/members/{user_id}"),
    ("post", "/api/v1/messages"),
    ("delete", "/api/v1/messages/{message_id}"),
    ("post", "/api/v1/rooms/{room_id}/messages"),
    ("get", "/api/v1/rooms/{room_id}"),
    ("get", "/api/v1/rooms"),
    ("post", "/api/v1/broadcast"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks/after-send/secret"),
];

/// A concrete uri for a path template.
fn concrete(path: &str) -> String {
    path.replace("{room_id}", "lobby")
        .replace("{message_id}", &"ab".repeat(16))
        .split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_admin_route_needs_the_token() {
    let api = api().await;
    let all = ROUTES
        .iter()
        .copied()
        .chain([("get", "/api/v1/openapi.json")]);
    for (method, path) in all {
        let uri = concrete(path);
        let method = method.to_uppercase();
        for token in [None, Some("wrong"), Some("test-admin-token-but-longer")] {
            let (status, v) = call(&api, &method, &uri, token, Some("{}")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {token:?}");
            assert_eq!(code(&v), "unauthorized");
        }
        // With the token the route exists (whatever it thinks of the body).
        let (status, v) = call(&api, &method, &uri, Some(TOKEN), Some("{}")).await;
        assert!(
            status != StatusCode::UNAUTHORIZED
                && status != StatusCode::METHOD_NOT_ALLOWED
                && v["error"]["message"] != "no such route",
            "{method} {uri}: {status} {v}"
        );
    }
    // No token configured: the API is closed, even to an empty bearer.
    let closed = Api {
        state: ApiState {
            admin_token: None,
            ..api.state.clone()
        },
        bus: api.bus.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let (status, _) = call(&closed, "GET", "/api/v1/rooms", Some(""), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Health needs no token.
    let (status, _) = call(&api, "GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = call(&api, "GET", "/readyz", None, None).await;
    assert_eq!((status, v["ready"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, v) = call(&api, "GET", "/nope", Some(TOKEN), None).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, v) = call(&api, "DELETE", "/api/v1/rooms", Some(TOKEN), None).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn a_room_push_publishes_one_frame_and_bad_input_publishes_nothing() {
    let api = api().await;
    let mut sub = api.bus.subscribe("tern.room.lobby", None).await.unwrap();
    let uri = "/api/v1/rooms/lobby/messages";
    let bad: &[(&str, Option<&str>, StatusCode)] = &[
        (uri, Some("{not json"), StatusCode::BAD_REQUEST),
        (
            uri,
            Some(r#"{"content": 5}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (uri, Some(r#"{}"#), StatusCode::UNPROCESSABLE_ENTITY),
        (
            uri,
            Some(r#"{"content":"x","extra":1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            uri,
            Some(r#"{"content":"x","content_type":-1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/rooms/a.b/messages",
            Some(r#"{"content":"x"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (uri, body, want) in bad {
        let (status, v) = call(&api, "POST", uri, Some(TOKEN), *body).await;
        assert_eq!(status, *want, "{uri} {body:?}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    let too_big = format!(r#"{{"content":"{}"}}"#, "x".repeat(64 * 1024 + 1));
    let (status, _) = call(&api, "POST", uri, Some(TOKEN), Some(&too_big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let huge = format!(r#"{{"content":"{}"}}"#, "x".repeat(300 * 1024));
    let (status, _) = call(&api, "POST", uri, Some(TOKEN), Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, _) = call(
        &api,
        "POST",
        uri,
        Some(TOKEN),
        Some(r#"{"content":"hello","content_type":3}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    let d = RoomDeliver::decode(msg.payload).unwrap();
    let m = room_message(d.frame);
    assert_eq!(
        (m.room_id.as_str(), m.sender_id, m.content_type),
        ("lobby", 0, 3)
    );
    assert_eq!(&m.content[..], b"hello");
    // Nothing else was published by the refused requests.
    assert!(
        futures::FutureExt::now_or_never(sub.next()).is_none(),
        "a refused push published something"
    );
}

fn room_message(frame: bytes::Bytes) -> RoomMessage {
    use tokio_util::codec::Decoder;
    let mut buf = bytes::BytesMut::from(&frame[..]);
    let f = FrameCodec::default().decode(&mut buf).unwrap().unwrap();
    assert_eq!(f.ty, FrameType::RoomPush.as_u16());
    RoomMessage::decode(f.value).unwrap()
}

#[tokio::test]
async fn online_counts_and_top_rooms() {
    let api = api().await;
    let presence = api.state.logic.room_counts.clone();
    let long = Duration::from_secs(60);
    presence
        .record("n1", &[("lobby".into(), 3), ("kitchen".into(), 1)], long)
        .await
        .unwrap();
    let (status, v) = call(&api, "GET", "/api/v1/rooms/lobby", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"room_id": "lobby", "online": 3}));
    let (_, v) = call(&api, "GET", "/api/v1/rooms?limit=1", Some(TOKEN), None).await;
    assert_eq!(
        v,
        serde_json::json!({"rooms": [{"room_id": "lobby", "online": 3}]})
    );
    for (q, want) in [
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=101", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=abc", StatusCode::BAD_REQUEST),
        ("what=1", StatusCode::BAD_REQUEST),
    ] {
        let (status, _) = call(
            &api,
            "GET",
            &format!("/api/v1/rooms?{q}"),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, want, "{q}");
    }
    let (status, _) = call(&api, "GET", "/api/v1/rooms/a%20b", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn broadcast_publishes_one_frame_for_everyone() {
    let api = api().await;
    let mut sub = api.bus.subscribe("tern.broadcast", None).await.unwrap();
    let (status, _) = call(
        &api,
        "POST",
        "/api/v1/broadcast",
        Some(TOKEN),
        Some(r#"{"content":"all","speed":500}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for bad in [
        r#"{"content":"x","speed":0}"#,
        r#"{"content":"x","speed":1000001}"#,
    ] {
        let (status, _) = call(&api, "POST", "/api/v1/broadcast", Some(TOKEN), Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    let b = Broadcast::decode(msg.payload).unwrap();
    assert_eq!(b.speed, 500);
    let m = room_message(b.frame);
    assert_eq!((m.room_id.as_str(), &m.content[..]), ("", &b"all"[..]));
    assert!(
        futures::FutureExt::now_or_never(sub.next()).is_none(),
        "a refused broadcast published something"
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_nothing_else() {
    let api = api().await;
    let (status, doc) = call(&api, "GET", "/api/v1/openapi.json", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.push((method.clone(), path.clone()));
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path}: 401 documented"
            );
            assert_eq!(op["security"][0]["bearer"], serde_json::json!([]));
        }
    }
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn metrics_count_commands_by_code_without_a_token() {
    use tern_public::proto::bus::ConnRequest;
    use tern_public::proto::client::UserGetRequest;

    let api = api().await;
    let request = |user_id| ConnRequest {
        node_id: "n1".into(),
        user_id,
        r#type: u32::from(FrameType::UserGet.as_u16()),
        payload: UserGetRequest { user_ids: vec![1] }.encode_to_vec().into(),
        ..Default::default()
    };
    crate::dispatch::dispatch(&api.state.logic, request(7)).await;
    crate::dispatch::dispatch(&api.state.logic, request(7)).await;
    crate::dispatch::dispatch(&api.state.logic, request(0)).await;
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let resp = router(api.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in [
        r#"tern_requests_total{command="user_get",code="OK"} 2"#,
        r#"tern_requests_total{command="user_get",code="UNAUTHENTICATED"} 1"#,
        r#"tern_request_duration_seconds_count{command="user_get"} 3"#,
        r#"tern_db_connections{state="idle"}"#,
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}
