//! The end of a soak: every user's list and every device's stream against
//! the ledger of what the server confirmed.

use std::collections::{HashMap, HashSet};

use prost::Message as _;

use tern_client::proto::{Message, MessageStatus, RecallEvent, SystemContentType};

use crate::traffic::{Conv, Ledger, Sent};
use crate::users::Stream;

/// What one list held.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListStats {
    pub entries: u64,
    pub chat: u64,
    pub events: u64,
}

/// Whether `owner`'s list must hold `s`: the sender's, the receiver's, and
/// every member's of the group.
fn holds(owner: u64, s: &Sent, ledger: &Ledger) -> bool {
    s.sender == owner
        || match s.conv {
            Conv::User(to) => to == owner,
            Conv::Group(g) => ledger.group_members[&g].contains(&owner),
        }
}

/// Checks `owner`'s whole list: seqs 1..=n without a gap; each message id
/// once; every confirmed message that belongs here exactly once and
/// nothing else; each sender's messages in the order they were sent;
/// recalled ones emptied, with one recall event each.
pub fn check_list(owner: u64, list: &[Message], ledger: &Ledger) -> ListStats {
    for (i, m) in list.iter().enumerate() {
        assert_eq!(m.seq, i as u64 + 1, "user {owner}: seqs contiguous from 1");
    }
    let mut ids = HashSet::new();
    for m in list {
        assert!(
            ids.insert(m.id.to_vec()),
            "user {owner}: a message twice in the list (again at seq {})",
            m.seq
        );
    }
    let expected: HashMap<(u64, &str), &Sent> = ledger
        .sent
        .iter()
        .filter(|s| holds(owner, s, ledger))
        .map(|s| ((s.sender, s.client_msg_id.as_str()), s))
        .collect();
    let mut stats = ListStats {
        entries: list.len() as u64,
        ..Default::default()
    };
    let mut last_of_sender: HashMap<u64, u64> = HashMap::new();
    let mut recall_events: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut found = HashSet::new();
    for m in list {
        if m.content_type >= 1000 {
            stats.events += 1;
            if m.content_type == SystemContentType::MessageRecalled as u32 {
                let e = RecallEvent::decode(m.content.clone()).expect("a RecallEvent");
                *recall_events.entry(e.message_id.to_vec()).or_default() += 1;
            }
            continue;
        }
        let key = (m.sender_id, m.client_msg_id.as_str());
        let Some(sent) = expected.get(&key) else {
            panic!("user {owner}: message {key:?} at seq {} was never confirmed to its sender, or is not for this user", m.seq);
        };
        assert_eq!(
            m.id, sent.message_id,
            "user {owner}: {key:?} stored twice under different ids"
        );
        if let Some(before) = last_of_sender.insert(m.sender_id, sent.index) {
            assert!(
                before < sent.index,
                "user {owner}: sender {}'s send #{} sits after its send #{before}",
                m.sender_id,
                sent.index
            );
        }
        let recalled = m.status == MessageStatus::Recalled as i32;
        if ledger.recalled.contains(&sent.message_id) {
            assert!(
                recalled && m.content.is_empty(),
                "user {owner}: {key:?} recalled, not cleared"
            );
        } else if !ledger.maybe_recalled.contains(&sent.message_id) {
            assert!(!recalled, "user {owner}: {key:?} recalled, but no one did");
        }
        found.insert(key);
        stats.chat += 1;
    }
    let lost: Vec<_> = expected.keys().filter(|k| !found.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "user {owner}: lost {} messages: {lost:?}",
        lost.len()
    );
    for (id, n) in &recall_events {
        assert_eq!(*n, 1, "user {owner}: {n} recall events for one message");
        assert!(
            ledger.recalled.contains(id) || ledger.maybe_recalled.contains(id),
            "user {owner}: a recall event for a message no one recalled"
        );
    }
    for id in ids.iter().filter(|id| ledger.recalled.contains(*id)) {
        assert!(
            recall_events.contains_key(id),
            "user {owner}: a recalled message without its recall event"
        );
    }
    stats
}

/// A device's stream is the list: every entry once, in seq order, from
/// the first.
pub fn check_stream(owner: u64, device: u64, stream: &Stream, list: &[Message]) {
    if let Some(why) = stream.ended.lock().expect("stream lock").as_ref() {
        panic!("user {owner} device {device}: the session ended: {why}");
    }
    let got = stream.entries.lock().expect("stream lock");
    let want: Vec<(u64, Vec<u8>)> = list.iter().map(|m| (m.seq, m.id.to_vec())).collect();
    if *got != want {
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "user {owner} device {device}: the app saw {} entries, the list has {}; first difference at index {first_diff:?}",
            got.len(),
            want.len()
        );
    }
}

/// The check must be able to fail: a list with a message lost, one twice,
/// one out of order or a gap in the seqs is refused.
#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        for index in 0..3 {
            l.sent.push(Sent {
                sender: 1,
                index,
                client_msg_id: format!("1-{index}"),
                conv: Conv::User(2),
                message_id: vec![index as u8; 16],
            });
        }
        l
    }

    fn entry(seq: u64, index: u64) -> Message {
        Message {
            id: vec![index as u8; 16].into(),
            seq,
            sender_id: 1,
            client_msg_id: format!("1-{index}"),
            content_type: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_list_passes() {
        let list = [entry(1, 0), entry(2, 1), entry(3, 2)];
        assert_eq!(check_list(2, &list, &ledger()).chat, 3);
    }

    #[test]
    #[should_panic(expected = "lost 1 messages")]
    fn a_lost_message_fails() {
        check_list(2, &[entry(1, 0), entry(2, 2)], &ledger());
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn a_duplicate_fails() {
        check_list(
            2,
            &[entry(1, 0), entry(2, 1), entry(3, 1), entry(4, 2)],
            &ledger(),
        );
    }

    #[test]
    #[should_panic(expected = "sits after")]
    fn sends_out_of_order_fail() {
        check_list(2, &[entry(1, 0), entry(2, 2), entry(3, 1)], &ledger());
    }

    #[test]
    #[should_panic(expected = "seqs contiguous")]
    fn a_gap_fails() {
        check_list(2, &[entry(1, 0), entry(2, 1), entry(4, 2)], &ledger());
    }

    #[test]
    #[should_panic(expected = "the app saw")]
    fn a_stream_short_of_its_list_fails() {
        let list = [entry(1, 0), entry(2, 1)];
        let stream = Stream::default();
        stream.entries.lock().unwrap().push((1, vec![0; 16]));
        check_stream(2, 1, &stream, &list);
    }
}
