//! The SDK's typed commands: each method reaches the handler it names and
//! decodes what that handler answers. Every step checks the effect through
//! another command (or another user), so a method wired to the wrong frame
//! type or decoding the wrong reply fails here.

use tern_client::proto::{
    FriendState, GroupCreateRequest, GroupRole, GroupUpdateRequest, MessageStatus,
};
use tern_client::{Client, ClientError, Code};

use crate::common::*;

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Option<Code> {
    r.expect_err("refused").code()
}

/// The state `of` has in `d`'s friend list, if any.
async fn friend_state(d: &Client, of: u64) -> Option<(FriendState, String)> {
    let list = d.friend_list(0, 0).await.expect("friend list");
    list.friends
        .into_iter()
        .find(|f| f.profile.as_ref().map(|p| p.user_id) == Some(of))
        .map(|f| (f.state(), f.remark))
}

/// Member ids and roles of a group, as `d` sees them.
async fn members(d: &Client, group_id: u64) -> Vec<(u64, GroupRole)> {
    let page = d.group_members(group_id, 0, 0).await.expect("members");
    assert!(!page.has_more);
    page.members
        .iter()
        .map(|m| (m.profile.as_ref().expect("profile").user_id, m.role()))
        .collect()
}

#[tokio::test]
async fn user_commands_read_and_change_profiles() {
    let server = start().await;
    let alice = register(server.addr(), "sdk-alice").await;
    let bob = register(server.addr(), "sdk-bob").await;

    let me = alice
        .client
        .user_update(Some("Alice A"), None)
        .await
        .expect("update");
    assert_eq!(
        (me.user_id, me.nickname.as_str()),
        (alice.user_id, "Alice A")
    );
    let got = bob
        .client
        .user_get(&[alice.user_id, u64::MAX])
        .await
        .expect("get");
    let got: Vec<_> = got
        .iter()
        .map(|u| (u.user_id, u.nickname.as_str()))
        .collect();
    assert_eq!(got, [(alice.user_id, "Alice A")]);

    let page = bob.client.user_search("sdk-", "", 1).await.expect("search");
    assert_eq!(page.users[0].username, "sdk-alice");
    assert!(page.has_more);
    let page = bob
        .client
        .user_search("sdk-", "sdk-alice", 1)
        .await
        .expect("next page");
    assert_eq!(page.users[0].username, "sdk-bob");
}

#[tokio::test]
async fn friend_commands_move_the_friendship_through_its_states() {
    let server = start().await;
    let addr = server.addr();
    let (alice, bob, carol) = (
        register(addr, "f-alice").await,
        register(addr, "f-bob").await,
        register(addr, "f-carol").await,
    );
    let (a, b, c) = (&alice.client, &bob.client, &carol.client);

    a.friend_request(bob.user_id, "hi").await.expect("request");
    assert_eq!(
        friend_state(b, alice.user_id).await,
        Some((FriendState::Pending, String::new()))
    );
    b.friend_accept(alice.user_id).await.expect("accept");
    a.friend_set_remark(bob.user_id, "Bobby")
        .await
        .expect("remark");
    assert_eq!(
        friend_state(a, bob.user_id).await,
        Some((FriendState::Accepted, "Bobby".into()))
    );

    c.friend_request(alice.user_id, "").await.expect("request");
    a.friend_decline(carol.user_id).await.expect("decline");
    assert_eq!(friend_state(a, carol.user_id).await, None);

    a.friend_block(carol.user_id).await.expect("block");
    assert_eq!(
        friend_state(a, carol.user_id).await.map(|s| s.0),
        Some(FriendState::Blocked)
    );
    assert_eq!(
        code(c.send_text(alice.user_id, "let me in", "c1").await),
        Some(Code::Blocked)
    );
    a.friend_unblock(carol.user_id).await.expect("unblock");
    c.send_text(alice.user_id, "thanks", "c2")
        .await
        .expect("send after unblock");

    a.friend_delete(bob.user_id).await.expect("delete");
    assert_eq!(friend_state(b, alice.user_id).await, None);
}

#[tokio::test]
async fn message_commands_send_recall_sync_and_ack() {
    let server = start().await;
    let alice = register(server.addr(), "m-alice").await;
    let bob = register(server.addr(), "m-bob").await;

    let sent = bob
        .client
        .send_text(alice.user_id, "hello", "m1")
        .await
        .expect("send");
    assert_eq!(
        code(alice.client.recall(sent.message_id.clone()).await),
        Some(Code::Forbidden),
        "only the sender may recall a direct message"
    );
    bob.client
        .recall(sent.message_id.clone())
        .await
        .expect("recall");
    let page = alice.client.sync(0, 10).await.expect("sync");
    let first = &page.messages[0];
    assert_eq!(first.id, sent.message_id);
    assert_eq!(first.status(), MessageStatus::Recalled);
    assert!(first.content.is_empty());

    alice.client.ack(page.max_seq).await.expect("ack");
    let (_again, session) = sign_in(server.addr(), &alice.creds()).await;
    assert_eq!(session.ack_seq, page.max_seq);
}

#[tokio::test]
async fn group_commands_run_a_group_from_creation_to_dismissal() {
    let server = start().await;
    let addr = server.addr();
    let (alice, bob, carol, dave) = (
        register(addr, "g-alice").await,
        register(addr, "g-bob").await,
        register(addr, "g-carol").await,
        register(addr, "g-dave").await,
    );
    let (a, b, c, d) = (&alice.client, &bob.client, &carol.client, &dave.client);

    let req = GroupCreateRequest {
        name: "team".into(),
        member_ids: vec![bob.user_id],
        ..Default::default()
    };
    let g = a.group_create(&req).await.expect("create");
    assert_eq!((g.owner_id, g.member_count), (alice.user_id, 2));
    let id = g.group_id;
    assert_eq!(b.group_info(id).await.expect("info").name, "team");
    let update = GroupUpdateRequest {
        group_id: id,
        name: Some("crew".into()),
        ..Default::default()
    };
    assert_eq!(a.group_update(&update).await.expect("update").name, "crew");
    let mine = b.group_list_mine(0, 0).await.expect("list mine");
    assert_eq!(
        mine.groups.iter().map(|g| g.group_id).collect::<Vec<_>>(),
        [id]
    );

    a.group_add_members(id, &[carol.user_id, dave.user_id])
        .await
        .expect("add");
    a.group_set_role(id, carol.user_id, GroupRole::Admin)
        .await
        .expect("set role");
    assert_eq!(
        members(a, id).await,
        [
            (alice.user_id, GroupRole::Owner),
            (bob.user_id, GroupRole::Member),
            (carol.user_id, GroupRole::Admin),
            (dave.user_id, GroupRole::Member),
        ]
    );

    let hour_from_now = tern_public::time::now_ms() + 3_600_000;
    c.group_mute_member(id, dave.user_id, hour_from_now)
        .await
        .expect("mute");
    assert_eq!(
        code(d.send_group_text(id, "hey", "d1").await),
        Some(Code::Muted)
    );
    assert!(
        a.group_mute_all(id, true)
            .await
            .expect("mute all")
            .muted_all
    );
    assert_eq!(
        code(b.send_group_text(id, "hey", "b1").await),
        Some(Code::Muted)
    );
    assert!(!a.group_mute_all(id, false).await.expect("unmute").muted_all);
    b.send_group_text(id, "back", "b2")
        .await
        .expect("send after unmute");

    c.group_remove_members(id, &[dave.user_id])
        .await
        .expect("remove");
    assert_eq!(code(d.group_info(id).await), Some(Code::NotFound));

    a.group_transfer_owner(id, bob.user_id)
        .await
        .expect("transfer");
    assert_eq!(b.group_info(id).await.expect("info").owner_id, bob.user_id);
    a.group_quit(id).await.expect("quit");
    assert!(a
        .group_list_mine(0, 0)
        .await
        .expect("mine")
        .groups
        .is_empty());

    b.group_dismiss(id).await.expect("dismiss");
    assert_eq!(code(c.group_info(id).await), Some(Code::NotFound));
}
