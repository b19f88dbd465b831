//! Planning: which entries of a user's list notify which of its devices.
//! A user's entries past its push cursor are read, each that notifies
//! becomes one outbox row per offline device with a push token, and the
//! cursor moves past them, all in one transaction. The rules are pure
//! functions below, so each has a unit test.

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use tracing::debug;

use tern_public::proto::client::{ConvType, RecallEvent, SystemContentType};
use tern_public::time::now_ms;

use crate::error::Result;
use crate::store::conversations::{counts_as_unread, mentions_owner};
use crate::store::{ListEntry, OutboxRow};
use crate::Logic;

/// Entries read per step of one user's plan.
const STEP: u32 = 200;
/// The longest preview shown, in characters.
const PREVIEW_CHARS: usize = 120;
/// `content_type` of plain text (the SDK's TEXT).
const TEXT: u32 = 1;
/// What a notification says when previews are off, or for content that
/// has no text.
pub const NEW_MESSAGE: &str = "New message";
/// What replaces a recalled message's notification.
pub const RECALLED: &str = "Message recalled";

pub use crate::store::push_outbox_kinds::{ALERT, WITHDRAW};

/// What one entry asks of the user's offline devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    Nothing,
    /// Notify: a message or event that counts as unread, not muted (or
    /// mentioning the user).
    Alert,
    /// Withdraw the notification of this message (a recall by someone
    /// else).
    Withdraw(String),
}

/// The rule: what `entry` in `owner`'s list asks for, given whether its
/// conversation is muted for the owner.
pub(crate) fn plan(owner: u64, entry: &ListEntry, muted: bool) -> Plan {
    let m = &entry.message;
    if m.content_type == SystemContentType::MessageRecalled as u32 {
        if m.sender_id == owner {
            // The owner's own recall: their devices did it.
            return Plan::Nothing;
        }
        return match RecallEvent::decode(m.content.as_slice()) {
            Ok(e) => match uuid::Uuid::from_slice(&e.message_id) {
                Ok(id) => Plan::Withdraw(id.to_string()),
                Err(_) => Plan::Nothing,
            },
            Err(_) => Plan::Nothing,
        };
    }
    // Deleted for the owner, or recalled already: nothing to show.
    if m.status != 0 || !counts_as_unread(owner, m.sender_id, m.content_type) {
        return Plan::Nothing;
    }
    if muted && !mentions_owner(owner, &m.mentions) {
        return Plan::Nothing;
    }
    Plan::Alert
}

/// The body of an alert for `entry`: its text when previews are on and it
/// has some, else [`NEW_MESSAGE`].
pub(crate) fn body(entry: &ListEntry, preview: bool) -> String {
    let m = &entry.message;
    if m.content_type == SystemContentType::FriendRequested as u32 {
        return "wants to be your friend".into();
    }
    match std::str::from_utf8(&m.content) {
        Ok(text) if preview && m.content_type == TEXT && !text.trim().is_empty() => {
            let mut shown: String = text.chars().take(PREVIEW_CHARS).collect();
            if text.chars().count() > PREVIEW_CHARS {
                shown.push('…');
            }
            shown
        }
        _ => NEW_MESSAGE.into(),
    }
}

/// The title of an alert: the sender's nickname, and the group's name in
/// a group.
pub(crate) fn title(sender: &str, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("{sender} in {g}"),
        None => sender.to_owned(),
    }
}

/// Plans `user_id`'s entries past its cursor until none is left (or
/// another node is planning them). Returns the rows written.
pub(crate) async fn plan_user(logic: &Logic, user_id: u64) -> Result<usize> {
    let mut written = 0;
    loop {
        let Some((from, head)) = logic.store.push_cursor(user_id).await? else {
            return Ok(written);
        };
        if head <= from {
            return Ok(written);
        }
        let entries = logic.store.list_after(user_id, from, STEP).await?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(written);
        };
        let rows = rows_for(logic, user_id, &entries).await?;
        if !logic.store.plan_push(user_id, from, last, &rows).await? {
            debug!(user_id, "push cursor moved by another planner");
            return Ok(written);
        }
        written += rows.len();
        if last >= head {
            return Ok(written);
        }
    }
}

/// The outbox rows `entries` of `user_id`'s list make.
async fn rows_for(logic: &Logic, user_id: u64, entries: &[ListEntry]) -> Result<Vec<OutboxRow>> {
    let tokens = logic.store.push_tokens_of(user_id).await?;
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let online: HashSet<u64> = match logic.presence.locate(&[user_id]).await {
        Ok(online) => online.into_iter().map(|d| d.device_id).collect(),
        // Better a notification a connected device did not need than none.
        Err(_) => HashSet::new(),
    };
    let offline: Vec<u64> = tokens
        .iter()
        .map(|t| t.device_id)
        .filter(|d| !online.contains(d))
        .collect();
    if offline.is_empty() {
        return Ok(Vec::new());
    }
    let mut muted: HashMap<(i32, u64), bool> = HashMap::new();
    let mut plans = Vec::new();
    for e in entries {
        let key = (e.conv_type, e.conv_id);
        let is_muted = match muted.get(&key) {
            Some(m) => *m,
            None => {
                let m = (logic.store)
                    .conversation_muted(user_id, e.conv_type, e.conv_id)
                    .await?;
                muted.insert(key, m);
                m
            }
        };
        match plan(user_id, e, is_muted) {
            Plan::Nothing => {}
            p => plans.push((e, p)),
        }
    }
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let badge = logic.store.total_unread(user_id).await?;
    let names = Names::load(logic, plans.iter().map(|(e, _)| *e)).await?;
    let now = now_ms();
    let max_age = logic.cfg.push.max_age.as_millis() as i64;
    let mut rows = Vec::new();
    for (e, p) in plans {
        // Worth as long as the message is young: one planned late (push
        // turned on, a node back from an outage) is not news any more.
        let expires_at = e.message.created_at.saturating_add(max_age);
        if expires_at <= now {
            continue;
        }
        let (kind, message_id, title, body) = match p {
            Plan::Alert => (
                ALERT,
                message_uuid(&e.message.id),
                names.title(e),
                body(e, logic.cfg.push.preview),
            ),
            Plan::Withdraw(id) => (WITHDRAW, id, names.title(e), RECALLED.to_owned()),
            Plan::Nothing => continue,
        };
        for &device_id in &offline {
            rows.push(OutboxRow {
                user_id,
                device_id,
                message_id: message_id.clone(),
                kind,
                title: title.clone(),
                body: body.clone(),
                badge,
                conv_type: e.conv_type,
                conv_id: e.conv_id,
                seq: e.seq,
                created_at: now,
                expires_at,
            });
        }
    }
    Ok(rows)
}

fn message_uuid(id: &[u8]) -> String {
    uuid::Uuid::from_slice(id).map_or_else(|_| hex::encode(id), |u| u.to_string())
}

/// Senders' nicknames and groups' names for titles.
struct Names {
    users: HashMap<u64, String>,
    groups: HashMap<u64, String>,
}

impl Names {
    async fn load(logic: &Logic, entries: impl Iterator<Item = &ListEntry>) -> Result<Names> {
        let mut senders = HashSet::new();
        let mut groups = HashSet::new();
        for e in entries {
            senders.insert(e.message.sender_id);
            if e.conv_type == ConvType::Group as i32 {
                groups.insert(e.conv_id);
            }
        }
        let senders: Vec<u64> = senders.into_iter().collect();
        let users = logic
            .store
            .users_by_ids(&senders)
            .await?
            .into_iter()
            .map(|u| (u.id, u.nickname))
            .collect();
        let mut names = HashMap::new();
        for g in groups {
            if let Some(group) = logic.store.group(g).await? {
                names.insert(g, group.name);
            }
        }
        Ok(Names {
            users,
            groups: names,
        })
    }

    fn title(&self, e: &ListEntry) -> String {
        let sender = match e.message.sender_id {
            crate::actor::SYSTEM_USER => "System",
            id => self.users.get(&id).map_or("Someone", String::as_str),
        };
        let group = (e.conv_type == ConvType::Group as i32)
            .then(|| self.groups.get(&e.conv_id).map(String::as_str))
            .flatten();
        title(sender, group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredMessage;

    const ME: u64 = 7;

    fn entry(sender: u64, content_type: u32, content: &[u8], mentions: &[u64]) -> ListEntry {
        ListEntry {
            seq: 3,
            conv_type: ConvType::Group as i32,
            conv_id: 9,
            message: StoredMessage {
                id: uuid::Uuid::now_v7().as_bytes().to_vec(),
                sender_id: sender,
                sender_device_id: 1,
                content_type,
                content: content.to_vec(),
                mentions: mentions.to_vec(),
                client_msg_id: String::new(),
                status: 0,
                created_at: 0,
            },
        }
    }

    #[test]
    fn what_notifies() {
        let text = entry(8, TEXT, b"hi", &[]);
        assert_eq!(plan(ME, &text, false), Plan::Alert);
        assert_eq!(plan(ME, &text, true), Plan::Nothing, "muted");
        let own = entry(ME, TEXT, b"hi", &[]);
        assert_eq!(plan(ME, &own, false), Plan::Nothing, "own message");
        for mention in [ME, crate::store::conversations::MENTION_ALL] {
            let e = entry(8, TEXT, b"hi", &[mention]);
            assert_eq!(plan(ME, &e, true), Plan::Alert, "a mention breaks mute");
        }
        let request = entry(8, SystemContentType::FriendRequested as u32, b"", &[]);
        assert_eq!(plan(ME, &request, false), Plan::Alert);
        let joined = entry(8, SystemContentType::GroupMembersAdded as u32, b"", &[]);
        assert_eq!(plan(ME, &joined, false), Plan::Nothing, "a mere change");
        let mut deleted = entry(8, TEXT, b"", &[]);
        deleted.message.status = 2;
        assert_eq!(plan(ME, &deleted, false), Plan::Nothing);
    }

    #[test]
    fn a_recall_by_someone_else_withdraws_the_message() {
        let id = uuid::Uuid::now_v7();
        let body = RecallEvent {
            message_id: id.as_bytes().to_vec().into(),
            recalled_by: 8,
        };
        let recalled = SystemContentType::MessageRecalled as u32;
        let e = entry(8, recalled, &body.encode_to_vec(), &[]);
        assert_eq!(plan(ME, &e, true), Plan::Withdraw(id.to_string()));
        let mine = entry(ME, recalled, &body.encode_to_vec(), &[]);
        assert_eq!(plan(ME, &mine, false), Plan::Nothing);
        let garbled = entry(8, recalled, b"\xff\xff", &[]);
        assert_eq!(plan(ME, &garbled, false), Plan::Nothing);
    }

    #[test]
    fn bodies_show_text_only_when_previews_are_on() {
        let text = entry(8, TEXT, "héllo".as_bytes(), &[]);
        assert_eq!(body(&text, true), "héllo");
        assert_eq!(body(&text, false), NEW_MESSAGE);
        let long = "x".repeat(PREVIEW_CHARS + 5);
        let shown = body(&entry(8, TEXT, long.as_bytes(), &[]), true);
        assert_eq!(shown.chars().count(), PREVIEW_CHARS + 1);
        let image = entry(8, 2, b"\x89PNG", &[]);
        assert_eq!(body(&image, true), NEW_MESSAGE);
        assert_eq!(title("ann", Some("crew")), "ann in crew");
        assert_eq!(title("ann", None), "ann");
    }
}
