//! Group rules end to end: who may do what (each refusal changes nothing),
//! retries after a mute, the size limit and dismissal.

use crate::common::groups::*;
use crate::common::*;
use tern_client::proto::{
    Empty, GroupCreateRequest, GroupInfo, GroupList, GroupListRequest, GroupMemberList,
    GroupMembersChange, GroupMembersRequest, GroupMuteAllRequest, GroupMuteRequest, GroupRole,
    GroupSetRoleRequest, GroupTarget, GroupTransferRequest, GroupUpdateRequest,
    SystemContentType as Sys,
};
use tern_client::Code;
use tern_logic::LogicConfig;
use tern_public::FrameType;

async fn every_permission_rule_refuses_the_wrong_role_and_changes_nothing(shape: Shape) {
    let server = shape.start().await;
    let owner = register(server.addr(), "owner").await;
    let admin = register(server.addr(), "admin").await;
    let member = register(server.addr(), "member").await;
    let other = register(server.addr(), "other").await;
    let outsider = register(server.addr(), "outsider").await;
    let newbie = register(server.addr(), "newbie").await;
    let g = create(&owner, &[admin.user_id, member.user_id, other.user_id])
        .await
        .group_id;
    let _: Empty = call(
        &owner,
        FrameType::GroupSetRole,
        &GroupSetRoleRequest {
            group_id: g,
            user_id: admin.user_id,
            role: GroupRole::Admin as i32,
        },
    )
    .await
    .unwrap();
    let before = snapshot(&owner, g).await;

    let target = GroupTarget { group_id: g };
    let change = |ids: Vec<u64>| GroupMembersChange {
        group_id: g,
        user_ids: ids,
    };
    // Someone outside the group sees no group at all.
    assert_eq!(
        code(call::<GroupInfo>(&outsider, FrameType::GroupInfo, &target).await),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(
            call::<GroupMemberList>(
                &outsider,
                FrameType::GroupMembers,
                &GroupMembersRequest {
                    group_id: g,
                    ..Default::default()
                }
            )
            .await
        ),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(outsider.client.send(&group_text(g, "x", "o1")).await),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &outsider,
                FrameType::GroupAddMembers,
                &change(vec![newbie.user_id])
            )
            .await
        ),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(call::<Empty>(&outsider, FrameType::GroupQuit, &target).await),
        Some(Code::NotFound)
    );
    // A plain member.
    let update = GroupUpdateRequest {
        group_id: g,
        name: Some("mine".into()),
        ..Default::default()
    };
    assert_eq!(
        code(call::<GroupInfo>(&member, FrameType::GroupUpdate, &update).await),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &member,
                FrameType::GroupAddMembers,
                &change(vec![outsider.user_id])
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &member,
                FrameType::GroupRemoveMembers,
                &change(vec![other.user_id])
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(call::<Empty>(&member, FrameType::GroupDismiss, &target).await),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &member,
                FrameType::GroupSetRole,
                &GroupSetRoleRequest {
                    group_id: g,
                    user_id: other.user_id,
                    role: GroupRole::Admin as i32
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &member,
                FrameType::GroupMuteMember,
                &GroupMuteRequest {
                    group_id: g,
                    user_id: other.user_id,
                    until_ms: i64::MAX
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<GroupInfo>(
                &member,
                FrameType::GroupMuteAll,
                &GroupMuteAllRequest {
                    group_id: g,
                    muted: true
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &member,
                FrameType::GroupTransferOwner,
                &GroupTransferRequest {
                    group_id: g,
                    new_owner_id: other.user_id
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    // An admin cannot touch the owner, change roles or dismiss.
    assert_eq!(
        code(
            call::<Empty>(
                &admin,
                FrameType::GroupRemoveMembers,
                &change(vec![owner.user_id])
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &admin,
                FrameType::GroupMuteMember,
                &GroupMuteRequest {
                    group_id: g,
                    user_id: owner.user_id,
                    until_ms: i64::MAX
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &admin,
                FrameType::GroupSetRole,
                &GroupSetRoleRequest {
                    group_id: g,
                    user_id: member.user_id,
                    role: GroupRole::Admin as i32
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(call::<Empty>(&admin, FrameType::GroupDismiss, &target).await),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &admin,
                FrameType::GroupTransferOwner,
                &GroupTransferRequest {
                    group_id: g,
                    new_owner_id: other.user_id
                }
            )
            .await
        ),
        Some(Code::Forbidden)
    );
    // The owner must transfer before quitting, and roles stop at ADMIN.
    assert_eq!(
        code(call::<Empty>(&owner, FrameType::GroupQuit, &target).await),
        Some(Code::Forbidden)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &owner,
                FrameType::GroupSetRole,
                &GroupSetRoleRequest {
                    group_id: g,
                    user_id: member.user_id,
                    role: GroupRole::Owner as i32
                }
            )
            .await
        ),
        Some(Code::BadRequest)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &owner,
                FrameType::GroupRemoveMembers,
                &change(vec![outsider.user_id])
            )
            .await
        ),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &owner,
                FrameType::GroupAddMembers,
                &change(vec![member.user_id])
            )
            .await
        ),
        Some(Code::Conflict)
    );
    assert_eq!(
        code(call::<Empty>(&owner, FrameType::GroupAddMembers, &change(vec![987_654])).await),
        Some(Code::NotFound)
    );
    assert_eq!(
        snapshot(&owner, g).await,
        before,
        "refused commands changed nothing"
    );

    // Muting: a muted member and, with the whole group muted, plain members get MUTED.
    let _: Empty = call(
        &admin,
        FrameType::GroupMuteMember,
        &GroupMuteRequest {
            group_id: g,
            user_id: member.user_id,
            until_ms: i64::MAX,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        code(member.client.send(&group_text(g, "x", "m1")).await),
        Some(Code::Muted)
    );
    other
        .client
        .send(&group_text(g, "fine", "t1"))
        .await
        .unwrap();
    let _: GroupInfo = call(
        &admin,
        FrameType::GroupMuteAll,
        &GroupMuteAllRequest {
            group_id: g,
            muted: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        code(other.client.send(&group_text(g, "x", "t2")).await),
        Some(Code::Muted)
    );
    admin
        .client
        .send(&group_text(g, "admins may speak", "a1"))
        .await
        .unwrap();
    owner
        .client
        .send(&group_text(g, "so may the owner", "w1"))
        .await
        .unwrap();
    // Members invite when the group allows it.
    let invite = GroupUpdateRequest {
        group_id: g,
        member_invite: Some(true),
        ..Default::default()
    };
    let _: GroupInfo = call(&owner, FrameType::GroupUpdate, &invite).await.unwrap();
    let _: Empty = call(
        &other,
        FrameType::GroupAddMembers,
        &change(vec![outsider.user_id]),
    )
    .await
    .unwrap();
    let _: GroupInfo = call(&outsider, FrameType::GroupInfo, &target)
        .await
        .unwrap();
    server.stop().await;
}

async fn a_retried_send_answers_the_first_reply_even_after_a_mute(shape: Shape) {
    let server = shape.start().await;
    let owner = register(server.addr(), "owner").await;
    let member = register(server.addr(), "member").await;
    let g = create(&owner, &[member.user_id]).await.group_id;
    let first = member
        .client
        .send(&group_text(g, "once", "r1"))
        .await
        .unwrap();
    let mute = GroupMuteRequest {
        group_id: g,
        user_id: member.user_id,
        until_ms: i64::MAX,
    };
    let _: Empty = call(&owner, FrameType::GroupMuteMember, &mute)
        .await
        .unwrap();
    assert_eq!(
        member
            .client
            .send(&group_text(g, "once", "r1"))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        code(member.client.send(&group_text(g, "again", "r2")).await),
        Some(Code::Muted)
    );
    server.stop().await;
}

async fn a_full_group_refuses_the_next_member_and_a_dismissed_group_stops_sends(shape: Shape) {
    let logic = LogicConfig {
        max_group_members: 3,
        ..open_logic()
    };
    let server = shape.start_with(Default::default(), logic).await;
    let mut owner = register(server.addr(), "owner").await;
    let mut a = register(server.addr(), "aaa").await;
    let b = register(server.addr(), "bbb").await;
    let c = register(server.addr(), "ccc").await;
    let req = GroupCreateRequest {
        name: "big".into(),
        member_ids: vec![a.user_id, b.user_id, c.user_id],
        ..Default::default()
    };
    assert_eq!(
        code(call::<GroupInfo>(&owner, FrameType::GroupCreate, &req).await),
        Some(Code::Forbidden),
        "4 > 3"
    );
    let g = create(&owner, &[a.user_id, b.user_id]).await.group_id;
    let add = GroupMembersChange {
        group_id: g,
        user_ids: vec![c.user_id],
    };
    let err = call::<Empty>(&owner, FrameType::GroupAddMembers, &add)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Forbidden), "{err}");
    assert_eq!(snapshot(&owner, g).await.0.member_count, 3);

    let _: Empty = call(
        &owner,
        FrameType::GroupDismiss,
        &GroupTarget { group_id: g },
    )
    .await
    .unwrap();
    for d in [&mut owner, &mut a] {
        assert_eq!(d.next_push().await.content_type, Sys::GroupCreated as u32);
        assert_eq!(d.next_push().await.content_type, Sys::GroupDismissed as u32);
    }
    assert_eq!(
        code(a.client.send(&group_text(g, "anyone?", "1")).await),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(owner.client.send(&group_text(g, "anyone?", "1")).await),
        Some(Code::NotFound)
    );
    let mine: GroupList = call(&a, FrameType::GroupListMine, &GroupListRequest::default())
        .await
        .unwrap();
    assert!(mine.groups.is_empty());
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test] every_permission_rule_refuses_the_wrong_role_and_changes_nothing,
    #[tokio::test] a_retried_send_answers_the_first_reply_even_after_a_mute,
    #[tokio::test] a_full_group_refuses_the_next_member_and_a_dismissed_group_stops_sends,
}
