//! Groups end to end: fan-out to every member's list and device, membership
//! events, ordering under concurrency and recall. Permissions and limits
//! are in group_rules.rs.

use bytes::Bytes;
use futures::{stream, StreamExt};
use prost::Message as _;

use crate::common::groups::*;
use crate::common::*;
use tern_client::proto::{
    ConvType, Empty, GroupEvent, GroupInfo, GroupMembersChange, GroupRole, GroupSetRoleRequest,
    GroupTarget, GroupTransferRequest, SystemContentType as Sys,
};
use tern_client::Code;
use tern_logic::LogicConfig;
use tern_public::FrameType;

async fn one_message_reaches_every_member_list_and_every_online_device_but_the_senders(
    shape: Shape,
) {
    let server = shape.start().await;
    let mut users = register_many(server.addr(), "mem", 200).await;
    // 20 members online with two devices each; the other 180 go offline.
    let mut second = Vec::new();
    for i in 0..20 {
        second.push(login(server.addr(), &format!("mem{i}")).await);
    }
    let creds: Vec<Creds> = users.iter().map(Device::creds).collect();
    let mut online: Vec<Device> = users.drain(..20).collect();
    drop(users);
    let ids: Vec<u64> = creds.iter().map(|c| c.user_id).collect();

    let group = create(&online[0], &ids[1..]).await;
    assert_eq!(group.member_count, 200);
    for d in online.iter_mut().chain(second.iter_mut()) {
        let m = d.next_push().await;
        assert_eq!(
            (m.content_type, m.conv_type, m.conv_id),
            (
                Sys::GroupCreated as u32,
                ConvType::Group as i32,
                group.group_id
            )
        );
    }

    let sent = online[0]
        .client
        .send(&group_text(group.group_id, "hello all", "g1"))
        .await
        .unwrap();
    assert_eq!(sent.seq, 2);
    let mut pushed = 0;
    for d in online.iter_mut().skip(1).chain(second.iter_mut()) {
        let m = d.next_push().await;
        assert_eq!(
            (&m.id[..], text(&m).as_str(), m.seq),
            (&sent.message_id[..], "hello all", 2)
        );
        pushed += 1;
    }
    assert_eq!(pushed, 39, "every online device but the sender's own");
    // The sending device got no PUSH: its next one is the next message.
    online[1]
        .client
        .send(&group_text(group.group_id, "reply", "g2"))
        .await
        .unwrap();
    assert_eq!(text(&online[0].next_push().await), "reply");

    // Every member's list: exactly the creation event and the two messages, seqs 1..3.
    let srv = &server;
    let lists = stream::iter(creds)
        .map(|c| async move {
            let (d, _) = sign_in(srv.addr(), &c).await;
            d.client.sync_all(0).await.unwrap()
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(lists.len(), 200);
    for list in lists {
        assert_eq!(list.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(&list[1].id[..], &sent.message_id[..]);
    }
    server.stop().await;
}

async fn membership_changes_reach_the_members_concerned(shape: Shape) {
    let server = shape.start().await;
    let mut owner = register(server.addr(), "owner").await;
    let mut stay = register(server.addr(), "stay").await;
    let mut gone = register(server.addr(), "gone").await;
    let mut leaver = register(server.addr(), "leaver").await;
    let g = create(&owner, &[stay.user_id, gone.user_id, leaver.user_id])
        .await
        .group_id;
    let (gone_id, leaver_id) = (gone.user_id, leaver.user_id);
    for d in [&mut owner, &mut stay, &mut gone, &mut leaver] {
        assert_eq!(d.next_push().await.content_type, Sys::GroupCreated as u32);
    }
    // A group message first, so the member list is cached before it changes.
    let first = owner
        .client
        .send(&group_text(g, "first", "f0"))
        .await
        .unwrap();
    for d in [&mut stay, &mut gone, &mut leaver] {
        assert_eq!(&d.next_push().await.id[..], &first.message_id[..]);
    }
    let _: Empty = call(
        &owner,
        FrameType::GroupRemoveMembers,
        &GroupMembersChange {
            group_id: g,
            user_ids: vec![gone_id],
        },
    )
    .await
    .unwrap();
    for d in [&mut owner, &mut stay, &mut gone, &mut leaver] {
        let m = d.next_push().await;
        let e = GroupEvent::decode(m.content).unwrap();
        assert_eq!(
            (m.content_type, e.user_ids),
            (Sys::GroupMembersRemoved as u32, vec![gone_id])
        );
    }
    let _: Empty = call(&leaver, FrameType::GroupQuit, &GroupTarget { group_id: g })
        .await
        .unwrap();
    for d in [&mut owner, &mut stay, &mut leaver] {
        let m = d.next_push().await;
        assert_eq!(m.content_type, Sys::GroupMemberQuit as u32);
        assert_eq!(
            GroupEvent::decode(m.content).unwrap().user_ids,
            vec![leaver_id]
        );
    }
    // Those who left get no more group messages and cannot send.
    let sent = stay
        .client
        .send(&group_text(g, "just us", "s1"))
        .await
        .unwrap();
    assert_eq!(&owner.next_push().await.id[..], &sent.message_id[..]);
    assert_eq!(
        code(gone.client.send(&group_text(g, "let me in", "1")).await),
        Some(Code::NotFound)
    );
    let gone_kinds = list_kinds(&gone).await;
    assert_eq!(
        gone_kinds,
        [Sys::GroupCreated as u32, 1, Sys::GroupMembersRemoved as u32]
    );
    // Ownership moves, and the old owner may then quit.
    let _: Empty = call(
        &owner,
        FrameType::GroupTransferOwner,
        &GroupTransferRequest {
            group_id: g,
            new_owner_id: stay.user_id,
        },
    )
    .await
    .unwrap();
    let _: Empty = call(&owner, FrameType::GroupQuit, &GroupTarget { group_id: g })
        .await
        .unwrap();
    let info: GroupInfo = call(&stay, FrameType::GroupInfo, &GroupTarget { group_id: g })
        .await
        .unwrap();
    assert_eq!((info.owner_id, info.member_count), (stay.user_id, 1));
    server.stop().await;
}

async fn concurrent_group_and_direct_sends_keep_every_list_contiguous_and_one_group_order(
    shape: Shape,
) {
    let server = shape.start().await;
    let users = register_many(server.addr(), "con", 10).await;
    let ids: Vec<u64> = users.iter().map(|u| u.user_id).collect();
    let g = create(&users[0], &ids[1..]).await.group_id;
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let peer = ids[(i + 1) % ids.len()];
            tokio::spawn(async move {
                for n in 0..20 {
                    u.client
                        .send(&group_text(g, &format!("{i}-{n}"), &format!("g{n}")))
                        .await
                        .unwrap();
                    u.client
                        .send_text(peer, "direct", &format!("d{n}"))
                        .await
                        .unwrap();
                }
                u.creds()
            })
        })
        .collect();
    // Every sender done before any list is read: lists are final then.
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let mut orders: Vec<Vec<Bytes>> = Vec::new();
    for creds in all {
        let (d, _) = sign_in(server.addr(), &creds).await;
        let list = d.client.sync_all(0).await.unwrap();
        // 1 creation event + 200 group messages + 20 sent + 20 received directly.
        assert_eq!(
            list.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (1..=241).collect::<Vec<_>>()
        );
        let group_order: Vec<Bytes> = list
            .iter()
            .filter(|m| m.conv_type == ConvType::Group as i32 && m.content_type == 1)
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(group_order.len(), 200);
        orders.push(group_order);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every member sees the group's messages in the same order"
    );
    server.stop().await;
}

async fn recall_within_the_window_or_by_a_group_admin_clears_the_content_everywhere(shape: Shape) {
    let logic = LogicConfig {
        recall_window: std::time::Duration::from_secs(3600),
        ..open_logic()
    };
    let server = shape.start_with(Default::default(), logic).await;
    let alice = register(server.addr(), "alice").await;
    let mut bob = register(server.addr(), "bob").await;
    let sent = alice
        .client
        .send_text(bob.user_id, "oops", "1")
        .await
        .unwrap();
    assert_eq!(text(&bob.next_push().await), "oops");
    let recall = |id: &Bytes| tern_client::proto::RecallRequest {
        message_id: id.clone(),
    };
    // Only the sender (or a group admin) may recall.
    assert_eq!(
        code(call::<Empty>(&bob, FrameType::Recall, &recall(&sent.message_id)).await),
        Some(Code::Forbidden)
    );
    let _: Empty = call(&alice, FrameType::Recall, &recall(&sent.message_id))
        .await
        .unwrap();
    let event = bob.next_push().await;
    assert_eq!(event.content_type, Sys::MessageRecalled as u32);
    for d in [&alice, &bob] {
        let list = d.client.sync_all(0).await.unwrap();
        assert_eq!(
            list[0].status,
            tern_client::proto::MessageStatus::Recalled as i32
        );
        assert!(
            list[0].content.is_empty(),
            "recalled content is gone from SYNC"
        );
        assert_eq!(list[1].content_type, Sys::MessageRecalled as u32);
    }
    // Recalling again adds nothing; unknown ids are NOT_FOUND.
    let _: Empty = call(&alice, FrameType::Recall, &recall(&sent.message_id))
        .await
        .unwrap();
    assert_eq!(alice.client.sync(0, 0).await.unwrap().max_seq, 2);
    assert_eq!(
        code(
            call::<Empty>(
                &alice,
                FrameType::Recall,
                &recall(&Bytes::from(vec![7u8; 16]))
            )
            .await
        ),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(
            call::<Empty>(
                &alice,
                FrameType::Recall,
                &recall(&Bytes::from_static(b"short"))
            )
            .await
        ),
        Some(Code::BadRequest)
    );
    server.stop().await;

    // Window of zero: the sender is always too late, a group admin is not.
    let logic = LogicConfig {
        recall_window: std::time::Duration::ZERO,
        ..open_logic()
    };
    let server = shape.start_with(Default::default(), logic).await;
    let owner = register(server.addr(), "owner").await;
    let admin = register(server.addr(), "admin").await;
    let member = register(server.addr(), "member").await;
    let plain = register(server.addr(), "plain").await;
    let outsider = register(server.addr(), "outsider").await;
    let g = create(&owner, &[admin.user_id, member.user_id, plain.user_id])
        .await
        .group_id;
    let role = GroupSetRoleRequest {
        group_id: g,
        user_id: admin.user_id,
        role: GroupRole::Admin as i32,
    };
    let _: Empty = call(&owner, FrameType::GroupSetRole, &role).await.unwrap();
    let sent = member
        .client
        .send(&group_text(g, "regret", "1"))
        .await
        .unwrap();
    let r = recall(&sent.message_id);
    assert_eq!(
        code(call::<Empty>(&member, FrameType::Recall, &r).await),
        Some(Code::Forbidden),
        "too late"
    );
    assert_eq!(
        code(call::<Empty>(&plain, FrameType::Recall, &r).await),
        Some(Code::Forbidden),
        "not theirs"
    );
    assert_eq!(
        code(call::<Empty>(&outsider, FrameType::Recall, &r).await),
        Some(Code::NotFound),
        "cannot see it"
    );
    let _: Empty = call(&admin, FrameType::Recall, &r).await.unwrap();
    for d in [&owner, &member, &plain] {
        let list = d.client.sync_all(0).await.unwrap();
        let recalled = list
            .iter()
            .find(|m| m.id == sent.message_id)
            .expect("still listed");
        assert!(recalled.content.is_empty());
        let event = list.last().unwrap();
        assert_eq!(event.content_type, Sys::MessageRecalled as u32);
        let e = tern_client::proto::RecallEvent::decode(event.content.clone()).unwrap();
        assert_eq!(
            (e.message_id, e.recalled_by),
            (sent.message_id.clone(), admin.user_id)
        );
    }
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] one_message_reaches_every_member_list_and_every_online_device_but_the_senders,
    #[tokio::test] membership_changes_reach_the_members_concerned,
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)] concurrent_group_and_direct_sends_keep_every_list_contiguous_and_one_group_order,
    #[tokio::test] recall_within_the_window_or_by_a_group_admin_clears_the_content_everywhere,
}
