//! A block cannot be walked around: nobody puts a user who blocked them
//! (or whom they blocked) into a group, under either send policy; under
//! friends-only a user puts only accepted friends into a group; the admin
//! API is not limited. BLOCK ends the relation on both sides and UNBLOCK
//! leaves two strangers.

use prost::Message as _;
use serde_json::json;

use tern_client::proto::{
    Empty, FriendEvent, FriendState, GroupCreateRequest, GroupInfo, GroupMembersChange,
    GroupUpdateRequest, SystemContentType as Sys,
};
use tern_client::Code;
use tern_logic::{LogicConfig, SendPolicy};
use tern_public::FrameType;

use crate::common::groups::*;
use crate::common::*;

fn policy(send_policy: SendPolicy) -> LogicConfig {
    LogicConfig {
        send_policy,
        ..open_logic()
    }
}

/// GROUP_CREATE by `owner` naming `members`.
async fn try_create(owner: &Device, members: &[u64]) -> Option<Code> {
    let req = GroupCreateRequest {
        name: "g".into(),
        member_ids: members.to_vec(),
        ..Default::default()
    };
    call::<GroupInfo>(owner, FrameType::GroupCreate, &req)
        .await
        .err()
        .map(|e| e.code().expect("a reply code"))
}

/// ADD_MEMBERS by `by` to group `g`.
async fn try_add(by: &Device, g: u64, users: &[u64]) -> Option<Code> {
    let change = GroupMembersChange {
        group_id: g,
        user_ids: users.to_vec(),
    };
    call::<Empty>(by, FrameType::GroupAddMembers, &change)
        .await
        .err()
        .map(|e| e.code().expect("a reply code"))
}

async fn groups_of(d: &Device) -> usize {
    d.client.group_list_mine(0, 0).await.unwrap().groups.len()
}

/// A user's relations as FRIEND_LIST shows them.
async fn relations(d: &Device) -> Vec<(u64, FriendState)> {
    let list = d.client.friend_list(0, 0).await.unwrap();
    list.friends
        .into_iter()
        .map(|f| {
            let state = f.state();
            (f.profile.expect("a profile").user_id, state)
        })
        .collect()
}

async fn admin_add(server: &Server, g: u64, users: &[u64]) {
    let path = format!("/api/v1/groups/{g}/members");
    let (status, body, _) = http::call(
        server.http[0],
        "POST",
        &path,
        Some(json!({ "user_ids": users })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

async fn a_block_keeps_either_side_out_of_the_others_groups_under_both_policies(shape: Shape) {
    for send_policy in [SendPolicy::FriendsOnly, SendPolicy::Open] {
        let server = shape.start_with(open_connect(), policy(send_policy)).await;
        let mut alice = register(server.addr(), "alice").await;
        let mut bob = register(server.addr(), "bob").await;
        let mut carol = register(server.addr(), "carol").await;
        // Friends first, so the block is the only reason to refuse.
        befriend(&mut alice, &mut bob).await;
        befriend(&mut alice, &mut carol).await;
        bob.client.friend_block(alice.user_id).await.unwrap();

        let case = format!("{send_policy:?}");
        assert_eq!(
            try_create(&alice, &[carol.user_id, bob.user_id]).await,
            Some(Code::Blocked),
            "{case}: one blocked id refuses the whole create"
        );
        assert_eq!(
            try_create(&bob, &[alice.user_id]).await,
            Some(Code::Blocked),
            "{case}: nor can the blocker put the blocked into a group"
        );
        for d in [&alice, &bob, &carol] {
            assert_eq!(groups_of(d).await, 0, "{case}: no group was made");
        }

        let g = create(&alice, &[carol.user_id]).await.group_id;
        let before = snapshot(&alice, g).await;
        assert_eq!(
            try_add(&alice, g, &[bob.user_id]).await,
            Some(Code::Blocked),
            "{case}"
        );
        assert_eq!(snapshot(&alice, g).await, before, "{case}: nothing changed");
        assert!(
            !list_kinds(&bob)
                .await
                .iter()
                .any(|&k| k >= Sys::GroupCreated as u32),
            "{case}: bob's list holds no group event"
        );

        // The admin API is not limited by blocks.
        admin_add(&server, g, &[bob.user_id]).await;
        assert_eq!(snapshot(&alice, g).await.0.member_count, 3, "{case}");
        server.stop().await;
    }
}

async fn under_friends_only_a_user_puts_only_friends_into_a_group(shape: Shape) {
    let server = shape
        .start_with(open_connect(), policy(SendPolicy::FriendsOnly))
        .await;
    let addr = server.addr();
    let alice = register(addr, "alice").await;
    let fern = register(addr, "fern").await; // a friend
    let stan = register(addr, "stan").await; // a stranger
    let ash = register(addr, "ash").await; // alice asked, no answer yet
    let asker = register(addr, "asker").await; // asked alice, no answer yet
    alice.client.friend_request(fern.user_id, "").await.unwrap();
    fern.client.friend_accept(alice.user_id).await.unwrap();
    alice.client.friend_request(ash.user_id, "").await.unwrap();
    asker
        .client
        .friend_request(alice.user_id, "")
        .await
        .unwrap();

    for members in [
        vec![stan.user_id],
        vec![fern.user_id, stan.user_id],
        vec![ash.user_id],
        vec![asker.user_id],
    ] {
        assert_eq!(
            try_create(&alice, &members).await,
            Some(Code::NotFriends),
            "{members:?}"
        );
    }
    assert_eq!(
        try_create(&alice, &[stan.user_id, 987_654]).await,
        Some(Code::NotFound),
        "an unknown id is still refused first, as NOT_FOUND"
    );
    assert_eq!(groups_of(&alice).await, 0);

    let g = create(&alice, &[fern.user_id]).await.group_id;
    let invite = GroupUpdateRequest {
        group_id: g,
        member_invite: Some(true),
        ..Default::default()
    };
    let _: GroupInfo = call(&alice, FrameType::GroupUpdate, &invite).await.unwrap();
    let before = snapshot(&alice, g).await;
    for users in [vec![stan.user_id], vec![ash.user_id, asker.user_id]] {
        assert_eq!(
            try_add(&alice, g, &users).await,
            Some(Code::NotFriends),
            "{users:?}"
        );
    }
    // A member inviting adds their own friends, not the owner's.
    assert_eq!(
        try_add(&fern, g, &[stan.user_id]).await,
        Some(Code::NotFriends)
    );
    assert_eq!(
        snapshot(&alice, g).await,
        before,
        "refusals changed nothing"
    );

    // Once friends, the stranger can be added.
    alice.client.friend_request(stan.user_id, "").await.unwrap();
    stan.client.friend_accept(alice.user_id).await.unwrap();
    assert_eq!(try_add(&alice, g, &[stan.user_id]).await, None);

    // The admin API creates and adds whomever it is told to.
    let (status, made, _) = http::call(
        server.http[0],
        "POST",
        "/api/v1/groups",
        Some(json!({"owner_id": alice.user_id, "name": "by admin",
            "member_ids": [ash.user_id, asker.user_id]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    admin_add(&server, g, &[ash.user_id]).await;
    assert_eq!(snapshot(&alice, g).await.0.member_count, 4);
    server.stop().await;
}

async fn block_ends_the_relation_on_both_sides_and_unblock_leaves_strangers(shape: Shape) {
    let server = shape
        .start_with(open_connect(), policy(SendPolicy::FriendsOnly))
        .await;
    let addr = server.addr();
    let mut alice = register(addr, "alice").await;
    let mut bob = register(addr, "bob").await;
    befriend(&mut alice, &mut bob).await;

    bob.client.friend_block(alice.user_id).await.unwrap();
    assert_eq!(
        bob.next_push().await.content_type,
        Sys::FriendBlocked as u32
    );
    // Alice's devices learn the friendship ended, as from an unfriend.
    let ended = alice.next_push().await;
    assert_eq!(ended.content_type, Sys::FriendDeleted as u32);
    assert_eq!(
        FriendEvent::decode(ended.content).unwrap(),
        FriendEvent {
            from_user_id: bob.user_id,
            to_user_id: alice.user_id,
            message: String::new()
        }
    );
    assert_eq!(relations(&alice).await, [], "no ACCEPTED left for alice");
    assert_eq!(
        relations(&bob).await,
        [(alice.user_id, FriendState::Blocked)]
    );
    assert_eq!(
        code(alice.client.send_text(bob.user_id, "hi", "1").await),
        Some(Code::Blocked)
    );

    bob.client.friend_unblock(alice.user_id).await.unwrap();
    assert_eq!(
        bob.next_push().await.content_type,
        Sys::FriendUnblocked as u32
    );
    assert_eq!(relations(&alice).await, []);
    assert_eq!(relations(&bob).await, [], "strangers after UNBLOCK");
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        assert_eq!(
            code(from.client.send_text(to.user_id, "back?", "2").await),
            Some(Code::NotFriends),
            "the friendship does not come back by itself"
        );
    }
    assert_eq!(
        try_create(&alice, &[bob.user_id]).await,
        Some(Code::NotFriends)
    );
    assert_eq!(
        list_kinds(&alice).await,
        [
            Sys::FriendRequested as u32,
            Sys::FriendAccepted as u32,
            Sys::FriendDeleted as u32
        ],
        "nothing in alice's list names the block or the unblock"
    );
    // A new request starts over.
    alice.client.friend_request(bob.user_id, "").await.unwrap();
    assert_eq!(
        relations(&bob).await,
        [(alice.user_id, FriendState::Pending)]
    );

    // A pending request ends on both sides too, whichever way it went.
    for blocker_asked in [false, true] {
        let tag = if blocker_asked { "b" } else { "a" };
        let blocker = register(addr, &format!("blocker-{tag}")).await;
        let mut other = register(addr, &format!("other-{tag}")).await;
        let (asker, asked) = if blocker_asked {
            (&blocker.client, other.user_id)
        } else {
            (&other.client, blocker.user_id)
        };
        asker.friend_request(asked, "").await.unwrap();
        assert_eq!(
            other.next_push().await.content_type,
            Sys::FriendRequested as u32
        );
        blocker.client.friend_block(other.user_id).await.unwrap();
        assert_eq!(
            other.next_push().await.content_type,
            Sys::FriendDeclined as u32,
            "blocker asked: {blocker_asked}"
        );
        assert_eq!(
            relations(&other).await,
            [],
            "blocker asked: {blocker_asked}"
        );
        assert_eq!(
            relations(&blocker).await,
            [(other.user_id, FriendState::Blocked)]
        );
        if blocker_asked {
            assert_eq!(
                code(other.client.friend_accept(blocker.user_id).await),
                Some(Code::NotFound),
                "the request is gone"
            );
        }
    }
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] a_block_keeps_either_side_out_of_the_others_groups_under_both_policies,
    #[tokio::test] under_friends_only_a_user_puts_only_friends_into_a_group,
    #[tokio::test] block_ends_the_relation_on_both_sides_and_unblock_leaves_strangers,
}
