//! USER_GET, USER_UPDATE and USER_SEARCH end to end.

use crate::common::*;
use tern_client::proto::{
    UserGetRequest, UserList, UserProfile, UserSearchRequest, UserUpdateRequest,
};
use tern_client::Code;
use tern_public::FrameType;

fn names(l: &UserList) -> Vec<&str> {
    l.users.iter().map(|u| u.username.as_str()).collect()
}

async fn profiles_can_be_read_updated_and_searched(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let anna = register(server.addr(), "anna").await;
    for name in ["annabel", "anne", "bob"] {
        drop(register(server.addr(), name).await);
    }

    let got: UserList = ann
        .client
        .request(
            FrameType::UserGet,
            &UserGetRequest {
                user_ids: vec![anna.user_id, 999_999, ann.user_id],
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&got), ["ann", "anna"], "unknown ids are left out");

    let me: UserProfile = ann
        .client
        .request(
            FrameType::UserUpdate,
            &UserUpdateRequest {
                nickname: Some("Ann B.".into()),
                avatar_url: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (me.nickname.as_str(), me.username.as_str()),
        ("Ann B.", "ann")
    );
    let seen: UserList = anna
        .client
        .request(
            FrameType::UserGet,
            &UserGetRequest {
                user_ids: vec![ann.user_id],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        seen.users[0].nickname, "Ann B.",
        "others see the new nickname"
    );

    // Prefix search, paged, exact match first.
    let search = |prefix: &str, after: &str, limit| UserSearchRequest {
        prefix: prefix.into(),
        after_username: after.into(),
        limit,
    };
    let p1: UserList = ann
        .client
        .request(FrameType::UserSearch, &search("ann", "", 2))
        .await
        .unwrap();
    assert_eq!((names(&p1), p1.has_more), (vec!["ann", "anna"], true));
    let p2: UserList = ann
        .client
        .request(FrameType::UserSearch, &search("ann", "anna", 2))
        .await
        .unwrap();
    assert_eq!((names(&p2), p2.has_more), (vec!["annabel", "anne"], false));
    let none: UserList = ann
        .client
        .request(FrameType::UserSearch, &search("zz", "", 0))
        .await
        .unwrap();
    assert!(none.users.is_empty());

    // Bad input is refused and changes nothing.
    for (ty, body) in [
        (
            FrameType::UserGet,
            prost::Message::encode_to_vec(&UserGetRequest {
                user_ids: (0..101).collect(),
            }),
        ),
        (
            FrameType::UserUpdate,
            prost::Message::encode_to_vec(&UserUpdateRequest {
                nickname: Some(String::new()),
                avatar_url: None,
            }),
        ),
        (
            FrameType::UserUpdate,
            prost::Message::encode_to_vec(&UserUpdateRequest {
                nickname: Some("n".repeat(65)),
                avatar_url: None,
            }),
        ),
        (
            FrameType::UserUpdate,
            prost::Message::encode_to_vec(&UserUpdateRequest {
                nickname: None,
                avatar_url: Some("u".repeat(1025)),
            }),
        ),
        (
            FrameType::UserSearch,
            prost::Message::encode_to_vec(&search("", "", 0)),
        ),
        (
            FrameType::UserSearch,
            prost::Message::encode_to_vec(&search("a%", "", 0)),
        ),
    ] {
        let reply = ann
            .client
            .raw_request(ty.as_u16(), body.into())
            .await
            .unwrap();
        assert_eq!(
            Code::from_i32(reply.code),
            Some(Code::BadRequest),
            "{ty:?}: {}",
            reply.message
        );
    }
    let still: UserList = anna
        .client
        .request(
            FrameType::UserGet,
            &UserGetRequest {
                user_ids: vec![ann.user_id],
            },
        )
        .await
        .unwrap();
    assert_eq!(still.users[0].nickname, "Ann B.");
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] profiles_can_be_read_updated_and_searched,
}
