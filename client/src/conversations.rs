//! A device's copy of its user's conversation index (docs/protocol.md
//! "Conversations"), kept by applying list entries in seq order.
//!
//! [`ConversationView::load`] reads every CONV_LIST page; after that each
//! list entry the device receives goes through [`ConversationView::apply`],
//! which follows the server's own rules, guarded by each conversation's
//! `change_seq` so that an entry the loaded row already reflects is not
//! counted twice. An entry of a conversation the view does not have, and a
//! recall (whose recalled message the view may not hold), ask for the
//! server's row instead: [`Applied::Refresh`], then
//! [`ConversationView::refresh`]. [`crate::Session`] does all of this for
//! an app that asks for it ([`crate::SessionOptions::conversations`]).

use std::collections::HashMap;

use prost::Message as _;

use tern_public::proto::client::{
    ConvPeerReadEvent, ConvReadEvent, ConvSettingsEvent, ConvType, Conversation, Message,
    MessageStatus,
};

use crate::{Client, ClientError};

/// Content types of client.proto's `SystemContentType` the view reads.
const FIRST_SYSTEM_CONTENT_TYPE: u32 = 1000;
const FRIEND_REQUESTED: u32 = 1001;
const MESSAGE_RECALLED: u32 = 1201;
const CONV_READ: u32 = 1301;
const CONV_PEER_READ: u32 = 1302;
const CONV_SETTINGS: u32 = 1303;
const MESSAGES_DELETED: u32 = 1304;
const CONV_CLEARED: u32 = 1305;

/// The mention of everyone in a group.
const MENTION_ALL: u64 = 0;

/// What applying one entry needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The view is up to date with the entry.
    Done,
    /// The view cannot apply it alone: read this conversation from the
    /// server ([`ConversationView::refresh`]).
    Refresh(ConvType, u64),
}

/// One user's conversations as a device sees them.
#[derive(Debug, Clone, Default)]
pub struct ConversationView {
    user_id: u64,
    by_key: HashMap<(i32, u64), Conversation>,
    /// Conversations an entry asked to read from the server.
    stale: std::collections::BTreeSet<(i32, u64)>,
}

impl ConversationView {
    /// An empty view of `user_id`'s conversations.
    pub fn new(user_id: u64) -> ConversationView {
        ConversationView {
            user_id,
            by_key: HashMap::new(),
            stale: Default::default(),
        }
    }

    /// Replaces the view with every conversation the server lists (hidden
    /// ones are not listed: they come back by [`Applied::Refresh`] when a
    /// message arrives in them). Returns the lowest `max_seq` of the pages:
    /// every entry after it may be applied.
    pub async fn load(&mut self, client: &Client) -> Result<u64, ClientError> {
        let mut by_key = HashMap::new();
        let mut after: Option<Conversation> = None;
        let mut lowest = u64::MAX;
        loop {
            let page = client.conv_list(after.as_ref(), 200).await?;
            lowest = lowest.min(page.max_seq);
            after = page.conversations.last().cloned();
            for c in page.conversations {
                by_key.insert((c.conv_type, c.conv_id), c);
            }
            if !page.has_more {
                break;
            }
        }
        self.by_key = by_key;
        self.stale.clear();
        Ok(lowest)
    }

    /// Reads one conversation from the server into the view.
    pub async fn refresh(
        &mut self,
        client: &Client,
        conv_type: ConvType,
        conv_id: u64,
    ) -> Result<(), ClientError> {
        let c = client.conv_get(conv_type, conv_id).await?;
        self.put(c);
        self.stale.remove(&(conv_type as i32, conv_id));
        Ok(())
    }

    /// The conversations [`ConversationView::apply`] asked to read from the
    /// server and that were not read since.
    pub fn stale(&self) -> Vec<(ConvType, u64)> {
        self.stale
            .iter()
            .map(|&(t, id)| (ConvType::try_from(t).unwrap_or(ConvType::User), id))
            .collect()
    }

    /// Records the server's answer for a stale conversation (`None`: the
    /// server has none).
    pub fn refreshed(&mut self, conv_type: ConvType, conv_id: u64, c: Option<Conversation>) {
        self.stale.remove(&(conv_type as i32, conv_id));
        if let Some(c) = c {
            self.put(c);
        }
    }

    /// Puts a conversation as the server answered it, unless the view
    /// already holds a newer state of it.
    pub fn put(&mut self, c: Conversation) {
        let key = (c.conv_type, c.conv_id);
        match self.by_key.get(&key) {
            Some(have) if have.change_seq > c.change_seq => {}
            _ => {
                self.by_key.insert(key, c);
            }
        }
    }

    /// Applies the next list entry of the user's (in seq order).
    pub fn apply(&mut self, m: &Message) -> Applied {
        let applied = self.apply_entry(m);
        if let Applied::Refresh(t, id) = applied {
            self.stale.insert((t as i32, id));
        }
        applied
    }

    fn apply_entry(&mut self, m: &Message) -> Applied {
        let key = (m.conv_type, m.conv_id);
        let conv_type = ConvType::try_from(m.conv_type).unwrap_or(ConvType::User);
        let Some(c) = self.by_key.get_mut(&key) else {
            return Applied::Refresh(conv_type, m.conv_id);
        };
        if m.seq <= c.change_seq {
            // The server's row already reflects it.
            return Applied::Done;
        }
        c.change_seq = m.seq;
        match m.content_type {
            CONV_READ => {
                if let Ok(e) = ConvReadEvent::decode(m.content.clone()) {
                    c.read_seq = e.read_seq;
                    c.unread = e.unread;
                    c.mentions = e.mentions;
                }
                Applied::Done
            }
            CONV_PEER_READ => {
                if let Ok(e) = ConvPeerReadEvent::decode(m.content.clone()) {
                    c.peer_read_seq = c.peer_read_seq.max(e.peer_read_seq);
                }
                Applied::Done
            }
            // Deleted entries leave the counts, and what a clear covers is
            // read: the server's row says how that came out.
            MESSAGES_DELETED | CONV_CLEARED => Applied::Refresh(conv_type, m.conv_id),
            CONV_SETTINGS => {
                if let Ok(e) = ConvSettingsEvent::decode(m.content.clone()) {
                    (c.pinned, c.muted, c.hidden) = (e.pinned, e.muted, e.hidden);
                }
                Applied::Done
            }
            ct => {
                c.last_seq = m.seq;
                c.last_message = Some(m.clone());
                let counts = m.sender_id != self.user_id
                    && (ct < FIRST_SYSTEM_CONTENT_TYPE || ct == FRIEND_REQUESTED)
                    && m.status == MessageStatus::Normal as i32;
                if ct < FIRST_SYSTEM_CONTENT_TYPE || counts {
                    c.hidden = false;
                }
                if counts {
                    c.unread += 1;
                    let me = self.user_id;
                    if m.mentions.iter().any(|&u| u == me || u == MENTION_ALL) {
                        c.mentions += 1;
                    }
                }
                // A recall may take a message out of the counts, and the
                // view may not hold it: the server's row says.
                if ct == MESSAGE_RECALLED {
                    Applied::Refresh(conv_type, m.conv_id)
                } else {
                    Applied::Done
                }
            }
        }
    }

    /// One conversation, hidden or not.
    pub fn get(&self, conv_type: ConvType, conv_id: u64) -> Option<&Conversation> {
        self.by_key.get(&(conv_type as i32, conv_id))
    }

    /// The conversations that are not hidden, as CONV_LIST orders them:
    /// pinned first, then newest entry first.
    pub fn list(&self) -> Vec<&Conversation> {
        let mut list: Vec<&Conversation> = self.by_key.values().filter(|c| !c.hidden).collect();
        list.sort_by_key(|c| std::cmp::Reverse((c.pinned, c.last_seq)));
        list
    }

    /// The badge: unread over the conversations that are not muted.
    pub fn total_unread(&self) -> u64 {
        self.by_key
            .values()
            .filter(|c| !c.muted)
            .map(|c| c.unread)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(conv_id: u64, last_seq: u64) -> Conversation {
        Conversation {
            conv_type: ConvType::User as i32,
            conv_id,
            last_seq,
            change_seq: last_seq,
            ..Default::default()
        }
    }

    fn entry(seq: u64, sender_id: u64, conv_id: u64, content_type: u32) -> Message {
        Message {
            seq,
            sender_id,
            conv_type: ConvType::User as i32,
            conv_id,
            content_type,
            ..Default::default()
        }
    }

    #[test]
    fn entries_count_once_and_own_ones_never() {
        let mut v = ConversationView::new(1);
        v.put(conv(2, 5));
        // Already in the loaded row: not counted again.
        assert_eq!(v.apply(&entry(5, 2, 2, 1)), Applied::Done);
        assert_eq!(v.get(ConvType::User, 2).unwrap().unread, 0);
        v.apply(&entry(6, 2, 2, 1));
        v.apply(&entry(7, 1, 2, 1));
        let mut mention = entry(8, 2, 2, 1);
        mention.mentions = vec![1];
        v.apply(&mention);
        let c = v.get(ConvType::User, 2).unwrap();
        assert_eq!((c.unread, c.mentions, c.last_seq), (2, 1, 8));
        assert_eq!(v.total_unread(), 2);
        // Unknown conversations and recalls ask the server.
        assert_eq!(
            v.apply(&entry(9, 3, 3, 1)),
            Applied::Refresh(ConvType::User, 3)
        );
        assert_eq!(
            v.apply(&entry(10, 2, 2, MESSAGE_RECALLED)),
            Applied::Refresh(ConvType::User, 2)
        );
    }

    #[test]
    fn state_entries_set_what_they_carry_and_stay_out_of_the_history() {
        let mut v = ConversationView::new(1);
        v.put(conv(2, 5));
        v.apply(&entry(6, 2, 2, 1));
        let mut read = entry(7, 1, 2, CONV_READ);
        read.content = ConvReadEvent {
            conv_type: ConvType::User as i32,
            conv_id: 2,
            read_seq: 6,
            unread: 0,
            mentions: 0,
        }
        .encode_to_vec()
        .into();
        v.apply(&read);
        let mut settings = entry(8, 1, 2, CONV_SETTINGS);
        settings.content = ConvSettingsEvent {
            conv_type: ConvType::User as i32,
            conv_id: 2,
            pinned: true,
            muted: true,
            hidden: false,
        }
        .encode_to_vec()
        .into();
        v.apply(&settings);
        let c = v.get(ConvType::User, 2).unwrap();
        assert_eq!(
            (c.read_seq, c.unread, c.last_seq, c.change_seq),
            (6, 0, 6, 8)
        );
        assert!(c.pinned && c.muted);
        // An older server answer does not undo newer entries.
        v.put(conv(2, 6));
        assert_eq!(v.get(ConvType::User, 2).unwrap().change_seq, 8);
    }
}
