//! CONV_LIST, CONV_GET and CONV_HISTORY end to end, in both shapes: the
//! index follows sends, recalls and group messages, and bad input is
//! refused.

use crate::common::groups::{code, create, group_text};
use crate::common::*;
use prost::Message as _;
use tern_client::proto::{
    ConvList, ConvListRequest, ConvSettingsEvent, ConvTarget, ConvType, Conversation,
    GroupUpdateRequest, MessageStatus, MessagesDeletedEvent, SendRequest,
};
use tern_client::Code;
use tern_public::FrameType;

fn peers(list: &ConvList) -> Vec<u64> {
    list.conversations.iter().map(|c| c.conv_id).collect()
}

fn text(c: &Conversation) -> &[u8] {
    &c.last_message.as_ref().expect("a last message").content
}

async fn the_index_follows_sends_and_recalls(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let cat = register(server.addr(), "cat").await;

    let mut from_bob = Vec::new();
    for i in 0..3 {
        let text = format!("b{i}");
        from_bob.push(
            bob.client
                .send_text(ann.user_id, &text, &text)
                .await
                .unwrap(),
        );
    }
    ann.client.send_text(bob.user_id, "a0", "a0").await.unwrap();
    cat.client.send_text(ann.user_id, "c0", "c0").await.unwrap();

    // ann: seqs 1-3 from bob, 4 to bob, 5 from cat.
    let list = ann.client.conv_list(None, 0).await.unwrap();
    assert_eq!(peers(&list), [cat.user_id, bob.user_id]);
    assert_eq!(
        (list.max_seq, list.total_unread, list.has_more),
        (5, 4, false)
    );
    let with_bob = &list.conversations[1];
    assert_eq!(with_bob.unread, 3, "ann's own message does not count");
    assert_eq!((with_bob.last_seq, with_bob.change_seq), (4, 4));
    assert_eq!(text(with_bob), b"a0");
    let at_bob = bob
        .client
        .conv_get(ConvType::User, ann.user_id)
        .await
        .unwrap();
    assert_eq!((at_bob.unread, at_bob.last_seq), (1, 4));

    // Pages of one conversation, newest first, skipping cat's.
    let first = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 0, 3)
        .await
        .unwrap();
    let seqs: Vec<u64> = first.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [4, 3, 2]);
    assert_eq!(first.next_before_seq, 2);
    let rest = ann
        .client
        .conv_history(ConvType::User, bob.user_id, first.next_before_seq, 3)
        .await
        .unwrap();
    assert_eq!(rest.messages.len(), 1);
    assert_eq!(
        (rest.messages[0].content.as_ref(), rest.next_before_seq),
        (&b"b0"[..], 0)
    );

    // A page of one keeps its place.
    let one = ann.client.conv_list(None, 1).await.unwrap();
    assert_eq!((peers(&one), one.has_more), (vec![cat.user_id], true));
    let two = ann
        .client
        .conv_list(one.conversations.last(), 1)
        .await
        .unwrap();
    assert_eq!((peers(&two), two.has_more), (vec![bob.user_id], false));

    // A recalled message stops counting; the recall event is the newest entry.
    bob.client
        .recall(from_bob[1].message_id.clone())
        .await
        .unwrap();
    let with_bob = ann
        .client
        .conv_get(ConvType::User, bob.user_id)
        .await
        .unwrap();
    assert_eq!((with_bob.unread, with_bob.last_seq), (2, 6));
    assert_eq!(ann.client.conv_list(None, 0).await.unwrap().total_unread, 3);
}

async fn group_messages_count_for_every_other_member(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let group = create(&ann, &[bob.user_id]).await;
    for i in 0..2 {
        let req = group_text(group.group_id, "hi", &format!("g{i}"));
        bob.client.send(&req).await.unwrap();
    }
    let at_ann = ann
        .client
        .conv_get(ConvType::Group, group.group_id)
        .await
        .unwrap();
    assert_eq!(at_ann.unread, 2, "{at_ann:?}");
    let at_bob = bob
        .client
        .conv_get(ConvType::Group, group.group_id)
        .await
        .unwrap();
    assert_eq!(at_bob.unread, 0, "{at_bob:?}");
    // The group's creation event is in its history, and does not count.
    let history = ann
        .client
        .conv_history(ConvType::Group, group.group_id, 0, 0)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 3);
    assert!(history.messages[2].content_type >= 1000);
}

async fn bad_conversation_requests_are_refused(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let cat = register(server.addr(), "cat").await;
    ann.client.send_text(bob.user_id, "x", "x").await.unwrap();
    ann.client.send_text(cat.user_id, "y", "y").await.unwrap();

    let unspecified = ConvTarget {
        conv_type: 0,
        conv_id: bob.user_id,
    };
    let r: Result<Conversation, _> = ann.client.request(FrameType::ConvGet, &unspecified).await;
    assert_eq!(code(r), Some(Code::BadRequest));
    let none = ann.client.conv_get(ConvType::User, 999_999).await;
    assert_eq!(code(none), Some(Code::NotFound));
    // seq 2 is in the conversation with cat, not bob.
    let elsewhere = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 2, 5)
        .await;
    assert_eq!(code(elsewhere), Some(Code::BadRequest));
    let garbage = ann
        .client
        .raw_request(FrameType::ConvList.as_u16(), vec![0xff, 0xff].into())
        .await
        .unwrap();
    assert_eq!(garbage.code, Code::BadRequest.as_i32());
    // A huge page is capped, and the list is unchanged by all of the above.
    let req = ConvListRequest {
        limit: u32::MAX,
        ..Default::default()
    };
    let list: ConvList = ann.client.request(FrameType::ConvList, &req).await.unwrap();
    assert_eq!(peers(&list), [cat.user_id, bob.user_id]);
}

async fn settings_order_count_and_hide_for_the_user_alone(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let mut ann2 = login(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let cat = register(server.addr(), "cat").await;
    bob.client.send_text(ann.user_id, "b", "b0").await.unwrap();
    cat.client.send_text(ann.user_id, "c", "c0").await.unwrap();
    // Newest first: cat, bob. Pinning bob puts bob first.
    let c = ann
        .client
        .conv_set(ConvType::User, bob.user_id, Some(true), None, None)
        .await
        .unwrap();
    assert!(c.pinned && !c.muted && !c.hidden, "{c:?}");
    let list = ann.client.conv_list(None, 0).await.unwrap();
    assert_eq!(peers(&list), [bob.user_id, cat.user_id]);
    // The other device learns it from its list.
    let event = loop {
        let m = ann2.next_push().await;
        if m.content_type == 1303 {
            break m;
        }
    };
    let settings = ConvSettingsEvent::decode(event.content).unwrap();
    assert_eq!((settings.conv_id, settings.pinned), (bob.user_id, true));
    // Paging across the pinned boundary keeps every conversation once.
    let one = ann.client.conv_list(None, 1).await.unwrap();
    let two = ann
        .client
        .conv_list(one.conversations.last(), 1)
        .await
        .unwrap();
    assert_eq!(
        (peers(&one), peers(&two)),
        (vec![bob.user_id], vec![cat.user_id])
    );
    assert!(!two.has_more);

    // Muted: still listed and counted per conversation, not in the badge.
    ann.client
        .conv_set(ConvType::User, cat.user_id, None, Some(true), None)
        .await
        .unwrap();
    let list = ann.client.conv_list(None, 0).await.unwrap();
    assert_eq!(list.total_unread, 1, "only bob's counts");
    assert_eq!(list.conversations[1].unread, 1);

    // Hidden: left out until a new message arrives; events keep it hidden.
    ann.client
        .conv_set(ConvType::User, bob.user_id, None, None, Some(true))
        .await
        .unwrap();
    assert_eq!(
        peers(&ann.client.conv_list(None, 0).await.unwrap()),
        [cat.user_id]
    );
    let before = ann.client.conv_list(None, 0).await.unwrap().max_seq;
    let same = ann
        .client
        .conv_set(ConvType::User, bob.user_id, None, None, Some(true))
        .await
        .unwrap();
    assert!(same.hidden);
    let after = ann.client.conv_list(None, 0).await.unwrap().max_seq;
    assert_eq!(before, after, "an unchanged setting appends nothing");
    bob.client
        .send_text(ann.user_id, "again", "b1")
        .await
        .unwrap();
    let list = ann.client.conv_list(None, 0).await.unwrap();
    assert_eq!(peers(&list), [bob.user_id, cat.user_id]);
    // None of it touched bob's side.
    let at_bob = bob
        .client
        .conv_get(ConvType::User, ann.user_id)
        .await
        .unwrap();
    assert!(!at_bob.pinned && !at_bob.muted && !at_bob.hidden);

    let none = ann
        .client
        .conv_set(ConvType::User, 999_999, Some(true), None, None)
        .await;
    assert_eq!(code(none), Some(Code::NotFound));
}

async fn everyone_is_mentioned_by_managers_or_when_the_group_allows(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let group = create(&ann, &[bob.user_id]).await;
    let gid = group.group_id;
    let all = |cmid: &str| SendRequest {
        mentions: vec![0],
        ..group_text(gid, "@all", cmid)
    };
    // A plain member may not, by default; the owner may.
    assert_eq!(
        code(bob.client.send(&all("b0")).await),
        Some(Code::Forbidden)
    );
    ann.client.send(&all("a0")).await.unwrap();
    let at_bob = bob.client.conv_get(ConvType::Group, gid).await.unwrap();
    assert_eq!((at_bob.unread, at_bob.mentions), (1, 1), "{at_bob:?}");
    let at_ann = ann.client.conv_get(ConvType::Group, gid).await.unwrap();
    assert_eq!(at_ann.mentions, 0, "her own mention does not count");

    let allow = GroupUpdateRequest {
        group_id: gid,
        member_mention_all: Some(true),
        ..Default::default()
    };
    let info = ann.client.group_update(&allow).await.unwrap();
    assert!(info.member_mention_all);
    bob.client.send(&all("b1")).await.unwrap();
    let at_ann = ann.client.conv_get(ConvType::Group, gid).await.unwrap();
    assert_eq!((at_ann.unread, at_ann.mentions), (1, 1), "{at_ann:?}");

    // Everyone is a group's; one-to-one it is refused.
    let mut direct = all("b2");
    direct.conv_type = ConvType::User as i32;
    direct.conv_id = ann.user_id;
    assert_eq!(code(bob.client.send(&direct).await), Some(Code::BadRequest));
}

async fn deleting_for_me_and_clearing_touch_only_my_list(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let mut ann2 = login(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    let cat = register(server.addr(), "cat").await;
    for i in 0..4 {
        let text = format!("b{i}");
        bob.client
            .send_text(ann.user_id, &text, &text)
            .await
            .unwrap();
    }
    cat.client.send_text(ann.user_id, "c", "c").await.unwrap();
    // ann: 1-4 from bob, 5 from cat.
    let c = ann
        .client
        .delete_for_me(ConvType::User, bob.user_id, &[2, 3])
        .await
        .unwrap();
    assert_eq!((c.unread, c.last_seq), (2, 4), "{c:?}");
    let list = ann.client.sync_all(0).await.unwrap();
    for m in &list[1..3] {
        assert_eq!(m.status, MessageStatus::Deleted as i32);
        assert!(m.content.is_empty());
    }
    assert_eq!(list[0].content.as_ref(), b"b0");
    // Only ann's list: bob still has all four.
    let bobs = bob.client.sync_all(0).await.unwrap();
    assert!(bobs
        .iter()
        .all(|m| m.status == MessageStatus::Normal as i32));
    let history = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 0, 0)
        .await
        .unwrap();
    let seqs: Vec<u64> = history.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [4, 1], "deleted entries are not in the history");
    let event = loop {
        let m = ann2.next_push().await;
        if m.content_type == 1304 {
            break m;
        }
    };
    let deleted = MessagesDeletedEvent::decode(event.content).unwrap();
    assert_eq!(deleted.seqs, [2, 3]);

    // Bad input changes nothing.
    for seqs in [vec![], vec![99], vec![5], (1..=101).collect()] {
        let r = ann
            .client
            .delete_for_me(ConvType::User, bob.user_id, &seqs)
            .await;
        assert_eq!(code(r), Some(Code::BadRequest), "{seqs:?}");
    }
    let same = ann
        .client
        .conv_get(ConvType::User, bob.user_id)
        .await
        .unwrap();
    assert_eq!((same.unread, same.change_seq), (2, 6));

    // Clearing deletes the rest and reads it; what comes after counts.
    let c = ann
        .client
        .clear_conversation(ConvType::User, bob.user_id, 0)
        .await
        .unwrap();
    assert_eq!((c.unread, c.read_seq), (0, 4), "{c:?}");
    let history = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 0, 0)
        .await
        .unwrap();
    assert!(history.messages.is_empty());
    bob.client
        .send_text(ann.user_id, "again", "again")
        .await
        .unwrap();
    let c = ann
        .client
        .conv_get(ConvType::User, bob.user_id)
        .await
        .unwrap();
    assert_eq!(c.unread, 1);
    let history = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 0, 0)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].content.as_ref(), b"again");
    // cat's conversation is untouched.
    let with_cat = ann
        .client
        .conv_get(ConvType::User, cat.user_id)
        .await
        .unwrap();
    assert_eq!(with_cat.unread, 1);
}

in_both_shapes! {
    #[tokio::test] deleting_for_me_and_clearing_touch_only_my_list,
    #[tokio::test] everyone_is_mentioned_by_managers_or_when_the_group_allows,
    #[tokio::test] settings_order_count_and_hide_for_the_user_alone,
    #[tokio::test] the_index_follows_sends_and_recalls,
    #[tokio::test] group_messages_count_for_every_other_member,
    #[tokio::test] bad_conversation_requests_are_refused,
}
