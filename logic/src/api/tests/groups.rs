//! Groups and members through the admin API.

use axum::http::StatusCode;
use serde_json::json;

use super::users::create;
use super::{admin, api, Api};

async fn group(api: &Api, owner: u64, members: &[u64]) -> u64 {
    let body = json!({"owner_id": owner, "name": "crew", "member_ids": members});
    let (status, v) = admin(api, "POST", "/api/v1/groups", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["group_id"].as_u64().unwrap()
}

async fn members(api: &Api, g: u64) -> Vec<(u64, String, i64)> {
    let (status, v) = admin(api, "GET", &format!("/api/v1/groups/{g}/members"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_u64().unwrap(),
                m["role"].as_str().unwrap().to_owned(),
                m["muted_until_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn create_get_list_update_and_dismiss_groups() {
    let api = api().await;
    let own = create(&api, "owner").await;
    let mem = create(&api, "member").await;
    let g1 = group(&api, own, &[mem]).await;
    let g2 = group(&api, mem, &[]).await;

    let (status, v) = admin(&api, "GET", &format!("/api/v1/groups/{g1}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["owner_id"].as_u64(), v["member_count"].as_u64()),
        (Some(own), Some(2))
    );

    let refused = [
        (json!({"owner_id": 999, "name": "x"}), StatusCode::NOT_FOUND),
        // One unknown member refuses it all, as documented.
        (
            json!({"owner_id": own, "name": "x", "member_ids": [mem, 999]}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"owner_id": own, "name": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"owner_id": own, "name": "n".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"owner_id": own}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"owner_id": -1, "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, want) in refused {
        let (status, v) = admin(&api, "POST", "/api/v1/groups", Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {v}");
    }

    let (_, v) = admin(&api, "GET", "/api/v1/groups?limit=1", None).await;
    assert_eq!(
        (v["groups"][0]["group_id"].as_u64(), v["next"].as_u64()),
        (Some(g1), Some(g1))
    );
    let (_, v) = admin(&api, "GET", &format!("/api/v1/groups?after={g1}"), None).await;
    assert_eq!(
        (v["groups"].as_array().unwrap().len(), v["next"].is_null()),
        (1, true),
        "only three groups: the refused ones were not made"
    );
    let (status, _) = admin(&api, "GET", "/api/v1/groups?limit=0", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let uri = format!("/api/v1/groups/{g1}");
    let (status, v) = admin(
        &api,
        "PATCH",
        &uri,
        Some(json!({"name": "renamed", "muted_all": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["muted_all"].as_bool()),
        (Some("renamed"), Some(true))
    );
    let (status, _) = admin(&api, "PATCH", &uri, Some(json!({"name": ""}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = admin(&api, "PATCH", &uri, Some(json!({"colour": "red"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = admin(&api, "GET", &uri, None).await;
    assert_eq!(v["name"], "renamed");

    let (status, _) = admin(&api, "DELETE", &format!("/api/v1/groups/{g2}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path) in [
        ("GET", format!("/api/v1/groups/{g2}")),
        ("DELETE", format!("/api/v1/groups/{g2}")),
        ("PATCH", format!("/api/v1/groups/{g2}")),
        ("GET", "/api/v1/groups/999".to_owned()),
    ] {
        let (status, _) = admin(&api, method, &path, Some(json!({"name": "x"}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, v) = admin(&api, "GET", "/api/v1/groups", None).await;
    assert_eq!(
        v["groups"].as_array().unwrap().len(),
        1,
        "dismissed groups are not listed"
    );
}

#[tokio::test]
async fn members_are_added_removed_promoted_muted_and_ownership_moves() {
    let api = api().await;
    let own = create(&api, "owner").await;
    let a = create(&api, "alpha").await;
    let b = create(&api, "beta").await;
    let g = group(&api, own, &[a]).await;
    let uri = format!("/api/v1/groups/{g}/members");

    let (status, _) = admin(&api, "POST", &uri, Some(json!({"user_ids": [b]}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        members(&api, g)
            .await
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>(),
        vec![own, a, b]
    );
    for body in [json!({"user_ids": []}), json!({"ids": [b]})] {
        let (status, _) = admin(&api, "POST", &uri, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, _) = admin(&api, "POST", &uri, Some(json!({"user_ids": [999]}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such user");
    let (status, _) = admin(
        &api,
        "POST",
        "/api/v1/groups/999/members",
        Some(json!({"user_ids": [b]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, v) = admin(&api, "GET", &format!("{uri}?limit=2"), None).await;
    assert_eq!(v["next"].as_u64(), Some(a));

    let until = tern_public::time::now_ms() + 60_000;
    let (status, v) = admin(
        &api,
        "PATCH",
        &format!("{uri}/{a}"),
        Some(json!({"role": "admin", "muted_until_ms": until})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let refused = [
        (
            format!("{uri}/{a}"),
            json!({"role": "king"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{uri}/{a}"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{uri}/{a}"),
            json!({"muted_until_ms": -5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{uri}/{own}"),
            json!({"role": "member"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{uri}/999"),
            json!({"role": "admin"}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, want) in refused {
        let (status, v) = admin(&api, "PATCH", &path, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {v}");
    }
    let m = members(&api, g).await;
    assert_eq!(
        (m[1].1.as_str(), m[1].2),
        ("admin", until),
        "refused changes changed nothing"
    );

    let (status, _) = admin(
        &api,
        "PATCH",
        &format!("{uri}/{b}"),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = admin(&api, "GET", &format!("/api/v1/groups/{g}"), None).await;
    assert_eq!(v["owner_id"].as_u64(), Some(b));
    let roles: Vec<_> = members(&api, g).await.into_iter().map(|m| m.1).collect();
    assert_eq!(roles, vec!["member", "admin", "owner"]);

    let (status, _) = admin(&api, "DELETE", &format!("{uri}/{b}"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the owner stays");
    let (status, _) = admin(&api, "DELETE", &format!("{uri}/{own}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin(&api, "DELETE", &format!("{uri}/{own}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        members(&api, g)
            .await
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>(),
        vec![a, b]
    );
}
