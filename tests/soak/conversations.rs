//! The soak's model of the conversation index: what each conversation row
//! must hold, computed from the user's list alone by the rules of
//! docs/protocol.md, independently of the server's code.
//!
//! The server's rows are read first, then the list; a row reflects exactly
//! the entries of its conversation up to its `change_seq`, so the model is
//! computed over that prefix, and the check holds while traffic goes on.

use std::collections::{HashMap, HashSet};

use prost::Message as _;

use tern_client::proto::{
    ConvReadEvent, ConvType, Conversation, Message, RecallEvent, SystemContentType,
};

/// What the model says a conversation row holds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Row {
    last_seq: u64,
    change_seq: u64,
    read_seq: u64,
    unread: u64,
    mentions: u64,
}

fn state_event(content_type: u32) -> bool {
    (1300..1400).contains(&content_type)
}

fn counts(owner: u64, m: &Message) -> bool {
    m.status != tern_client::proto::MessageStatus::Deleted as i32
        && m.sender_id != owner
        && (m.content_type < 1000 || m.content_type == SystemContentType::FriendRequested as u32)
}

/// The row of one conversation from its entries, in seq order.
fn model(owner: u64, entries: &[&Message]) -> Row {
    let mut row = Row::default();
    let mut recalled: HashSet<Vec<u8>> = HashSet::new();
    for m in entries {
        row.change_seq = m.seq;
        if m.content_type == SystemContentType::ConvRead as u32 {
            let e = ConvReadEvent::decode(m.content.clone()).expect("a ConvReadEvent");
            row.read_seq = row.read_seq.max(e.read_seq);
        } else if !state_event(m.content_type) {
            row.last_seq = m.seq;
        }
        if m.content_type == SystemContentType::MessageRecalled as u32 {
            let e = RecallEvent::decode(m.content.clone()).expect("a RecallEvent");
            recalled.insert(e.message_id.to_vec());
        }
    }
    for m in entries {
        let unread = m.seq > row.read_seq
            && !state_event(m.content_type)
            && counts(owner, m)
            && !recalled.contains(m.id.as_ref());
        if unread {
            row.unread += 1;
            if m.mentions.iter().any(|&u| u == owner || u == 0) {
                row.mentions += 1;
            }
        }
    }
    row
}

/// Checks the server's conversation rows of `owner` (read before `list`)
/// against the model. `complete`: the rows were read with no traffic
/// going on, so every conversation with entries up to this head must be
/// among them (while traffic goes on, one can move past the pages).
pub fn check(owner: u64, complete: Option<u64>, convs: &[Conversation], list: &[Message]) {
    let mut by_conv: HashMap<(i32, u64), Vec<&Message>> = HashMap::new();
    for m in list {
        by_conv.entry((m.conv_type, m.conv_id)).or_default().push(m);
    }
    let listed: HashSet<(i32, u64)> = convs.iter().map(|c| (c.conv_type, c.conv_id)).collect();
    for c in convs {
        let key = (c.conv_type, c.conv_id);
        let entries: Vec<&Message> = by_conv
            .get(&key)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|m| m.seq <= c.change_seq)
                    .collect()
            })
            .unwrap_or_default();
        let want = model(owner, &entries);
        let got = Row {
            last_seq: c.last_seq,
            change_seq: c.change_seq,
            read_seq: c.read_seq,
            unread: c.unread,
            mentions: c.mentions,
        };
        assert_eq!(
            got,
            want,
            "user {owner}: conversation {:?} {} differs from the model of its list",
            ConvType::try_from(c.conv_type),
            c.conv_id
        );
    }
    // Every conversation the list had entries of when the rows were read
    // is listed (the soak hides none).
    let Some(max_seq) = complete else {
        return;
    };
    for (key, entries) in &by_conv {
        if entries
            .iter()
            .any(|m| m.seq <= max_seq && !state_event(m.content_type))
        {
            assert!(
                listed.contains(key),
                "user {owner}: conversation {key:?} has entries but is not listed"
            );
        }
    }
}

/// The whole index as one of `owner`'s devices reads it: every CONV_LIST
/// page, then the whole list; retried across failures for a while.
pub async fn read_and_check(owner: u64, session: &tern_client::Session, complete: bool) {
    let started = std::time::Instant::now();
    loop {
        match read(session).await {
            Ok((max_seq, convs, list)) => {
                check(owner, complete.then_some(max_seq), &convs, &list);
                return;
            }
            Err(e) if started.elapsed() < crate::SETTLE_WITHIN => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("user {owner}: the conversations cannot be read: {e}"),
        }
    }
}

type Read = (u64, Vec<Conversation>, Vec<Message>);

async fn read(session: &tern_client::Session) -> Result<Read, tern_client::ClientError> {
    let client = session.client().await?;
    let mut convs: Vec<Conversation> = Vec::new();
    let mut max_seq = u64::MAX;
    loop {
        let page = client.conv_list(convs.last(), 200).await?;
        max_seq = max_seq.min(page.max_seq);
        let more = page.has_more;
        convs.extend(page.conversations);
        if !more {
            break;
        }
    }
    let list = client.sync_all(0).await?;
    Ok((max_seq, convs, list))
}

/// A device's conversation view (kept by its Session across every
/// failure) against the server's rows, once the traffic is over and the
/// device has applied its whole list.
pub fn check_view(owner: u64, device: u64, view: &[Conversation], server: &[Conversation]) {
    let key = |c: &Conversation| {
        (
            c.conv_type,
            c.conv_id,
            c.last_seq,
            c.change_seq,
            c.read_seq,
            c.peer_read_seq,
            c.unread,
            c.mentions,
        )
    };
    let mut mine: Vec<_> = view.iter().map(key).collect();
    let mut theirs: Vec<_> = server.iter().map(key).collect();
    mine.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(
        mine, theirs,
        "user {owner} device {device}: the session's conversation view is not the server's"
    );
}

/// The check must be able to fail.
#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, sender_id: u64, content_type: u32) -> Message {
        Message {
            id: vec![seq as u8; 16].into(),
            seq,
            sender_id,
            conv_type: ConvType::User as i32,
            conv_id: 2,
            content_type,
            ..Default::default()
        }
    }

    fn row(last_seq: u64, read_seq: u64, unread: u64) -> Conversation {
        Conversation {
            conv_type: ConvType::User as i32,
            conv_id: 2,
            last_seq,
            change_seq: last_seq,
            read_seq,
            unread,
            ..Default::default()
        }
    }

    #[test]
    fn others_entries_after_the_read_position_count() {
        let list = [entry(1, 2, 1), entry(2, 1, 1), entry(3, 2, 1)];
        check(1, Some(3), &[row(3, 0, 2)], &list);
    }

    #[test]
    #[should_panic(expected = "differs from the model")]
    fn a_wrong_count_fails() {
        let list = [entry(1, 2, 1), entry(2, 1, 1), entry(3, 2, 1)];
        check(1, Some(3), &[row(3, 0, 3)], &list);
    }

    #[test]
    #[should_panic(expected = "not listed")]
    fn a_missing_conversation_fails() {
        check(1, Some(1), &[], &[entry(1, 2, 1)]);
    }
}
