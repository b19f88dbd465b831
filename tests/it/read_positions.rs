//! MARK_READ end to end, in both shapes: the read position rises and every
//! device of the reader learns it, a one-to-one receipt reaches the other
//! party in its own seqs, and unread stays exact while messages and marks
//! race.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message as _;

use crate::common::groups::{code, create, group_text, register_many};
use crate::common::http::call;
use crate::common::*;
use tern_client::proto::{ConvPeerReadEvent, ConvReadEvent, ConvType, Message, SendRequest};
use tern_client::{Client, Code};

const CONV_READ: u32 = 1301;
const CONV_PEER_READ: u32 = 1302;

/// The next PUSH of `content_type`, skipping others.
async fn next_of(d: &mut Device, content_type: u32) -> Message {
    loop {
        let m = d.next_push().await;
        if m.content_type == content_type {
            return m;
        }
    }
}

async fn reading_tells_every_device_and_the_other_party(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let mut ann2 = login(server.addr(), "ann").await;
    let mut bob = register(server.addr(), "bob").await;
    let mut bob2 = login(server.addr(), "bob").await;
    // bob's list starts with cat's message, so his seqs are not ann's.
    let cat = register(server.addr(), "cat").await;
    cat.client.send_text(bob.user_id, "c", "c").await.unwrap();
    for i in 0..3 {
        let text = format!("b{i}");
        bob.client
            .send_text(ann.user_id, &text, &text)
            .await
            .unwrap();
    }
    ann.client.send_text(bob.user_id, "a", "a").await.unwrap();
    // ann: 1-3 from bob, 4 her own. bob: 1 from cat, then 2-5.

    let c = ann
        .client
        .mark_read(ConvType::User, bob.user_id, 2)
        .await
        .unwrap();
    assert_eq!((c.read_seq, c.unread, c.last_seq), (2, 1, 4));
    let seen = next_of(&mut ann2, CONV_READ).await;
    let event = ConvReadEvent::decode(seen.content).unwrap();
    assert_eq!(
        (event.conv_id, event.read_seq, event.unread),
        (bob.user_id, 2, 1)
    );
    assert_eq!(seen.seq, 5);
    // Every device of the other party gets the receipt.
    for device in [&mut bob, &mut bob2] {
        let receipt = next_of(device, CONV_PEER_READ).await;
        let receipt = ConvPeerReadEvent::decode(receipt.content).unwrap();
        assert_eq!((receipt.conv_id, receipt.peer_read_seq), (ann.user_id, 3));
    }
    let at_bob = bob
        .client
        .conv_get(ConvType::User, ann.user_id)
        .await
        .unwrap();
    assert_eq!(at_bob.peer_read_seq, 3, "in bob's own seqs");
    assert_eq!(at_bob.last_seq, 5, "a receipt is not the newest entry");
    assert_eq!(at_bob.change_seq, 6);

    // Lower or equal: nothing changes and nothing is appended.
    let c = ann
        .client
        .mark_read(ConvType::User, bob.user_id, 1)
        .await
        .unwrap();
    assert_eq!((c.read_seq, c.unread), (2, 1));
    assert_eq!(ann.client.conv_list(None, 0).await.unwrap().max_seq, 5);

    // Everything: ann's own message is the newest read, bob's seq 5.
    let c = ann
        .client
        .mark_read(ConvType::User, bob.user_id, 0)
        .await
        .unwrap();
    assert_eq!((c.read_seq, c.unread, c.change_seq), (4, 0, 6));
    let receipt = next_of(&mut bob, CONV_PEER_READ).await;
    let receipt = ConvPeerReadEvent::decode(receipt.content).unwrap();
    assert_eq!(receipt.peer_read_seq, 5);
    // The read entries are not part of the conversation's history.
    let history = ann
        .client
        .conv_history(ConvType::User, bob.user_id, 0, 0)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 4);
    assert!(history.messages.iter().all(|m| m.content_type < 1000));

    let none = ann.client.mark_read(ConvType::User, 999_999, 0).await;
    assert_eq!(code(none), Some(Code::NotFound));
    let bad = ann.client.mark_read(ConvType::Group, 0, 0).await;
    assert_eq!(code(bad), Some(Code::BadRequest));
}

/// Whether an entry of `owner`'s list counts as unread (docs/protocol.md).
fn countable(owner: u64, m: &Message) -> bool {
    m.sender_id != owner && (m.content_type < 1000 || m.content_type == 1001) && m.status == 0
}

/// A text message to user `to`.
fn text_request_to(to: u64, cmid: &str) -> SendRequest {
    SendRequest {
        conv_type: ConvType::User as i32,
        conv_id: to,
        content_type: 1,
        content: bytes::Bytes::from_static(b"hi"),
        client_msg_id: cmid.into(),
        mentions: vec![],
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn unread_stays_exact_while_messages_and_marks_race(shape: Shape) {
    const SENDS: usize = 40;
    const MARKS: usize = 30;
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let ann2 = login(server.addr(), "ann").await;
    let senders = register_many(server.addr(), "sender", 3).await;
    let ids: Vec<u64> = senders.iter().map(|s| s.user_id).collect();
    let group = create(&ann, &ids).await;
    let ann_id = ann.user_id;

    let mut tasks = Vec::new();
    for (n, s) in senders.iter().enumerate() {
        let client = Arc::clone(&s.client);
        let gid = group.group_id;
        tasks.push(tokio::spawn(async move {
            for i in 0..SENDS {
                let cmid = format!("{n}-{i}");
                let sent = if i % 3 == 0 {
                    client.send(&group_text(gid, "g", &cmid)).await.unwrap()
                } else {
                    let mut req = text_request_to(ann_id, &cmid);
                    if i % 5 == 0 {
                        req.mentions = vec![ann_id];
                    }
                    client.send(&req).await.unwrap()
                };
                // Some are recalled while ann reads: they stop counting.
                if i % 7 == 3 {
                    client.recall(sent.message_id).await.unwrap();
                }
            }
        }));
    }
    // ann writes too: her own messages never count.
    let own = Arc::clone(&ann.client);
    let to = ids[0];
    tasks.push(tokio::spawn(async move {
        for i in 0..10 {
            own.send_text(to, "mine", &format!("own{i}")).await.unwrap();
        }
    }));
    // Both of ann's devices mark conversations read at random points.
    for (d, client) in [(1u64, &ann.client), (2, &ann2.client)] {
        let client: Arc<Client> = Arc::clone(client);
        let peers = ids.clone();
        let gid = group.group_id;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ d);
            for _ in 0..MARKS {
                let head = client.conv_list(None, 0).await.unwrap().max_seq;
                let pick = rng.below(peers.len() as u64 + 1) as usize;
                let (ty, id) = match peers.get(pick) {
                    Some(&p) => (ConvType::User, p),
                    None => (ConvType::Group, gid),
                };
                let up_to = rng.below(head + 1);
                match client.mark_read(ty, id, up_to).await {
                    Ok(c) => assert!(c.read_seq <= c.last_seq, "{c:?}"),
                    // Not in ann's list yet.
                    Err(e) => assert_eq!(e.code(), Some(Code::NotFound), "{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // The truth: ann's whole list.
    let list = ann.client.sync_all(0).await.unwrap();
    let mut entries: BTreeMap<(i32, u64), Vec<Message>> = BTreeMap::new();
    for m in list {
        entries.entry((m.conv_type, m.conv_id)).or_default().push(m);
    }
    let first = ann.client.conv_list(None, 0).await.unwrap();
    let second = ann2.client.conv_list(None, 0).await.unwrap();
    assert_eq!(
        first.conversations, second.conversations,
        "both devices see one index"
    );
    assert_eq!(first.conversations.len(), senders.len() + 1);
    let mut total = 0;
    assert!(
        first.conversations.iter().any(|c| c.read_seq > 0),
        "some conversation was read"
    );
    let recalled = entries.values().flatten().filter(|m| m.status != 0).count();
    assert!(recalled > 0, "some messages were recalled");
    for c in &first.conversations {
        let mine = &entries[&(c.conv_type, c.conv_id)];
        let after: Vec<&Message> = mine
            .iter()
            .filter(|m| m.seq > c.read_seq && m.content_type < 1300)
            .collect();
        let unread = after.iter().filter(|m| countable(ann_id, m)).count() as u64;
        let mentions = after
            .iter()
            .filter(|m| countable(ann_id, m) && m.mentions.contains(&ann_id))
            .count() as u64;
        assert_eq!((c.unread, c.mentions), (unread, mentions), "{c:?}");
        let newest = mine
            .iter()
            .filter(|m| m.content_type < 1300)
            .map(|m| m.seq)
            .max();
        assert_eq!(Some(c.last_seq), newest, "{c:?}");
        total += c.unread;
    }
    assert_eq!(first.total_unread, total);

    // The admin API reads the same index, from every node of a cluster.
    for http in &server.http {
        let path = format!("/api/v1/users/{ann_id}/conversations");
        let (status, page, text) = call(*http, "GET", &path, None).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(page["total_unread"], total);
        let rest = page["conversations"].as_array().expect("conversations");
        assert_eq!(rest.len(), first.conversations.len());
        for (r, c) in rest.iter().zip(&first.conversations) {
            assert_eq!(
                (
                    &r["conv_id"],
                    &r["unread"],
                    &r["mentions"],
                    &r["read_seq"],
                    &r["last_seq"]
                ),
                (
                    &c.conv_id.into(),
                    &c.unread.into(),
                    &c.mentions.into(),
                    &c.read_seq.into(),
                    &c.last_seq.into()
                ),
                "{r}"
            );
        }
    }
}

async fn the_admin_api_pages_a_conversation_and_refuses_bad_paths(shape: Shape) {
    let server = shape.start().await;
    let ann = register(server.addr(), "ann").await;
    let bob = register(server.addr(), "bob").await;
    for i in 0..3 {
        let text = format!("b{i}");
        bob.client
            .send_text(ann.user_id, &text, &text)
            .await
            .unwrap();
    }
    let http = server.http[0];
    let (a, b) = (ann.user_id, bob.user_id);
    let path = format!("/api/v1/users/{a}/conversations/user/{b}/messages?limit=2");
    let (status, page, text) = call(http, "GET", &path, None).await;
    assert_eq!(status, 200, "{text}");
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 2]);
    assert_eq!(page["next_before_seq"], 2);
    assert_eq!(page["messages"][0]["content"], "b2");
    let path = format!("/api/v1/users/{a}/conversations/user/{b}/messages?before_seq=2");
    let (_, page, _) = call(http, "GET", &path, None).await;
    assert_eq!(page["messages"][0]["seq"], 1);
    assert_eq!(page["next_before_seq"], 0);

    for (path, expected) in [
        (
            format!("/api/v1/users/{a}/conversations/room/{b}/messages"),
            400,
        ),
        (
            format!("/api/v1/users/{a}/conversations/user/{a}/messages?before_seq=1"),
            422,
        ),
        (format!("/api/v1/users/{a}/conversations?limit=0"), 422),
        (format!("/api/v1/users/{a}/conversations?colour=red"), 400),
        ("/api/v1/users/999999/conversations".to_owned(), 404),
    ] {
        let (status, _, text) = call(http, "GET", &path, None).await;
        assert_eq!(status, expected, "{path}: {text}");
    }
}

async fn group_read_counts_are_exact_with_concurrent_readers(shape: Shape) {
    const MESSAGES: usize = 10;
    let server = shape.start().await;
    let owner = register(server.addr(), "owner").await;
    let members = register_many(server.addr(), "member", 199).await;
    let ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    let group = create(&owner, &ids).await;
    let gid = group.group_id;
    assert_eq!(group.member_count, 200);
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        let reply = owner
            .client
            .send(&group_text(gid, "hi", &format!("g{i}")))
            .await;
        sent.push(reply.unwrap().message_id);
    }
    // Member i reads the first i % 11 messages, all members at once.
    let reads = |i: usize| i % (MESSAGES + 1);
    let mut tasks = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let client = Arc::clone(&m.client);
        let upto = reads(i).checked_sub(1).map(|k| sent[k].clone());
        tasks.push(tokio::spawn(async move {
            let Some(id) = upto else { return };
            let list = client.sync_all(0).await.unwrap();
            let seq = list.iter().find(|m| m.id == id).expect("in the list").seq;
            client.mark_read(ConvType::Group, gid, seq).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = owner.client.group_read_counts(gid, &sent).await.unwrap();
    let expected: Vec<u32> = (0..MESSAGES)
        .map(|j| (0..members.len()).filter(|&i| reads(i) > j).count() as u32)
        .collect();
    assert_eq!(counts, expected);
    for j in [0, MESSAGES / 2, MESSAGES - 1] {
        let readers = owner
            .client
            .group_readers(gid, sent[j].clone())
            .await
            .unwrap();
        let mut want: Vec<u64> = (0..members.len())
            .filter(|&i| reads(i) > j)
            .map(|i| ids[i])
            .collect();
        want.sort_unstable();
        assert_eq!(readers, want, "message {j}");
    }
    // Only the sender asks who; bad and foreign ids are refused.
    let other = members[0].client.group_readers(gid, sent[0].clone()).await;
    assert_eq!(code(other), Some(Code::Forbidden));
    let short = owner
        .client
        .group_read_counts(gid, &[bytes::Bytes::from_static(b"x")])
        .await;
    assert_eq!(code(short), Some(Code::BadRequest));
    let foreign = bytes::Bytes::from_static(&[7; 16]);
    let none = owner.client.group_read_counts(gid, &[foreign]).await;
    assert_eq!(code(none), Some(Code::NotFound));
}

#[tokio::test]
async fn group_receipts_are_off_above_the_configured_size() {
    let logic = tern_logic::LogicConfig {
        group_receipts_max_members: 2,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let ann = register(server.addr(), "ann").await;
    let ben = register(server.addr(), "ben").await;
    let cat = register(server.addr(), "cat").await;
    let small = create(&ann, &[ben.user_id]).await;
    let big = create(&ann, &[ben.user_id, cat.user_id]).await;
    for g in [&small, &big] {
        let req = group_text(g.group_id, "hi", &format!("m{}", g.group_id));
        let id = ann.client.send(&req).await.unwrap().message_id;
        let counts = ann.client.group_read_counts(g.group_id, &[id]).await;
        if g.member_count <= 2 {
            assert_eq!(counts.unwrap(), [0]);
        } else {
            assert_eq!(code(counts), Some(Code::Forbidden));
        }
    }
}

in_both_shapes! {
    #[tokio::test] reading_tells_every_device_and_the_other_party,
    #[tokio::test] unread_stays_exact_while_messages_and_marks_race,
    #[tokio::test] the_admin_api_pages_a_conversation_and_refuses_bad_paths,
    #[tokio::test] group_read_counts_are_exact_with_concurrent_readers,
}
