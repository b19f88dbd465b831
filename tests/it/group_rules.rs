//! Group rules end to end: who may do what (each refusal changes nothing),
//! retries after a mute, the size limit and dismissal.

use tern_client::proto::{
    Empty, GroupCreateRequest, GroupInfo, GroupList, GroupListRequest, GroupMemberList,
    GroupMembersChange, GroupMembersRequest, GroupMuteAllRequest, GroupMuteRequest, GroupRole,
    GroupSetRoleRequest, GroupTarget, GroupTransferRequest, GroupUpdateRequest,
    SystemContentType as Sys,
};
use tern_client::{ClientError, Code};
use tern_logic::LogicConfig;
use tern_public::FrameType;

use crate::common::groups::*;
use crate::common::*;

/// The people of the permission table: the group's owner, an admin, two
/// plain members, and two users outside it; `Unknown` is no user at all.
#[derive(Debug, Clone, Copy)]
enum Who {
    Owner,
    Admin,
    Member,
    Other,
    Outsider,
    Newbie,
    Unknown,
}

/// One group command of the table, with whom it targets.
#[derive(Debug, Clone, Copy)]
enum Command {
    Info,
    Members,
    Send,
    Add(Who),
    Remove(Who),
    Quit,
    Rename,
    Dismiss,
    SetRole(Who, GroupRole),
    Mute(Who),
    MuteAll,
    Transfer(Who),
}

use Command::*;
use Who::*;

/// Every command refused for who sends it, and the code it is refused with.
const REFUSALS: &[(Who, Command, Code)] = &[
    // Someone outside the group sees no group at all.
    (Outsider, Info, Code::NotFound),
    (Outsider, Members, Code::NotFound),
    (Outsider, Send, Code::NotFound),
    (Outsider, Add(Newbie), Code::NotFound),
    (Outsider, Add(Outsider), Code::NotFound),
    (Outsider, Quit, Code::NotFound),
    // A plain member.
    (Member, Rename, Code::Forbidden),
    (Member, Add(Outsider), Code::Forbidden),
    (Member, Remove(Other), Code::Forbidden),
    (Member, Dismiss, Code::Forbidden),
    (Member, SetRole(Other, GroupRole::Admin), Code::Forbidden),
    (Member, Mute(Other), Code::Forbidden),
    (Member, MuteAll, Code::Forbidden),
    (Member, Transfer(Other), Code::Forbidden),
    // An admin cannot touch the owner, change roles or dismiss.
    (Admin, Remove(Owner), Code::Forbidden),
    (Admin, Mute(Owner), Code::Forbidden),
    (Admin, SetRole(Member, GroupRole::Admin), Code::Forbidden),
    (Admin, Dismiss, Code::Forbidden),
    (Admin, Transfer(Other), Code::Forbidden),
    // The owner must transfer before quitting, and roles stop at ADMIN.
    (Owner, Quit, Code::Forbidden),
    (Owner, SetRole(Member, GroupRole::Owner), Code::BadRequest),
    (Owner, Remove(Outsider), Code::NotFound),
    (Owner, Add(Member), Code::Conflict),
    (Owner, Add(Unknown), Code::NotFound),
];

/// The signed-in users of the permission table.
struct Cast {
    owner: Device,
    admin: Device,
    member: Device,
    other: Device,
    outsider: Device,
    newbie: Device,
}

impl Cast {
    fn device(&self, who: Who) -> &Device {
        match who {
            Owner => &self.owner,
            Admin => &self.admin,
            Member => &self.member,
            Other => &self.other,
            Outsider => &self.outsider,
            Newbie => &self.newbie,
            Unknown => panic!("no device acts as an unknown user"),
        }
    }

    fn id(&self, who: Who) -> u64 {
        match who {
            Unknown => 987_654,
            _ => self.device(who).user_id,
        }
    }
}

/// Sends one command of the table to group `g` as `who`; the reply itself
/// does not matter, only whether and how it was refused.
async fn attempt(cast: &Cast, g: u64, who: Who, command: Command) -> Result<(), ClientError> {
    let d = cast.device(who);
    let target = GroupTarget { group_id: g };
    let change = |whom: Who| GroupMembersChange {
        group_id: g,
        user_ids: vec![cast.id(whom)],
    };
    match command {
        Info => call::<GroupInfo>(d, FrameType::GroupInfo, &target)
            .await
            .map(drop),
        Members => {
            let req = GroupMembersRequest {
                group_id: g,
                ..Default::default()
            };
            call::<GroupMemberList>(d, FrameType::GroupMembers, &req)
                .await
                .map(drop)
        }
        Send => d.client.send(&group_text(g, "x", "o1")).await.map(drop),
        Add(whom) => call::<Empty>(d, FrameType::GroupAddMembers, &change(whom))
            .await
            .map(drop),
        Remove(whom) => call::<Empty>(d, FrameType::GroupRemoveMembers, &change(whom))
            .await
            .map(drop),
        Quit => call::<Empty>(d, FrameType::GroupQuit, &target)
            .await
            .map(drop),
        Rename => {
            let update = GroupUpdateRequest {
                group_id: g,
                name: Some("mine".into()),
                ..Default::default()
            };
            call::<GroupInfo>(d, FrameType::GroupUpdate, &update)
                .await
                .map(drop)
        }
        Dismiss => call::<Empty>(d, FrameType::GroupDismiss, &target)
            .await
            .map(drop),
        SetRole(whom, role) => {
            let req = GroupSetRoleRequest {
                group_id: g,
                user_id: cast.id(whom),
                role: role as i32,
            };
            call::<Empty>(d, FrameType::GroupSetRole, &req)
                .await
                .map(drop)
        }
        Mute(whom) => {
            let req = GroupMuteRequest {
                group_id: g,
                user_id: cast.id(whom),
                until_ms: i64::MAX,
            };
            call::<Empty>(d, FrameType::GroupMuteMember, &req)
                .await
                .map(drop)
        }
        MuteAll => {
            let req = GroupMuteAllRequest {
                group_id: g,
                muted: true,
            };
            call::<GroupInfo>(d, FrameType::GroupMuteAll, &req)
                .await
                .map(drop)
        }
        Transfer(whom) => {
            let req = GroupTransferRequest {
                group_id: g,
                new_owner_id: cast.id(whom),
            };
            call::<Empty>(d, FrameType::GroupTransferOwner, &req)
                .await
                .map(drop)
        }
    }
}

async fn every_permission_rule_refuses_the_wrong_role_and_changes_nothing(shape: Shape) {
    let server = shape.start().await;
    let cast = Cast {
        owner: register(server.addr(), "owner").await,
        admin: register(server.addr(), "admin").await,
        member: register(server.addr(), "member").await,
        other: register(server.addr(), "other").await,
        outsider: register(server.addr(), "outsider").await,
        newbie: register(server.addr(), "newbie").await,
    };
    let Cast {
        owner,
        admin,
        member,
        other,
        outsider,
        ..
    } = &cast;
    let g = create(owner, &[admin.user_id, member.user_id, other.user_id])
        .await
        .group_id;
    let _: Empty = call(
        owner,
        FrameType::GroupSetRole,
        &GroupSetRoleRequest {
            group_id: g,
            user_id: admin.user_id,
            role: GroupRole::Admin as i32,
        },
    )
    .await
    .unwrap();
    let before = snapshot(owner, g).await;

    for &(who, command, want) in REFUSALS {
        let case = format!("{who:?} sends {command:?}");
        let got = match attempt(&cast, g, who, command).await {
            Ok(()) => panic!("{case}: accepted, expected {want:?}"),
            Err(e) => e.code(),
        };
        assert_eq!(got, Some(want), "{case}");
    }
    assert_eq!(
        snapshot(owner, g).await,
        before,
        "refused commands changed nothing"
    );

    let target = GroupTarget { group_id: g };
    let change = |ids: Vec<u64>| GroupMembersChange {
        group_id: g,
        user_ids: ids,
    };

    // Muting: a muted member and, with the whole group muted, plain members get MUTED.
    let _: Empty = call(
        admin,
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
        admin,
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
    let _: GroupInfo = call(owner, FrameType::GroupUpdate, &invite).await.unwrap();
    let _: Empty = call(
        other,
        FrameType::GroupAddMembers,
        &change(vec![outsider.user_id]),
    )
    .await
    .unwrap();
    let _: GroupInfo = call(outsider, FrameType::GroupInfo, &target).await.unwrap();
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
