//! What the soak's users do, at a phone's pace: one-to-one and group
//! messages, recalls, reading conversations, live rooms, ACKs and network
//! changes; and the ledger
//! of everything the server confirmed, for the final check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use tern_client::proto::{ConvType, SendRequest};
use tern_client::{ClientError, Code, TEXT};

use crate::users::{Device, User};

/// Where a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    User(u64),
    Group(u64),
}

/// A message the server confirmed.
#[derive(Debug, Clone)]
pub struct Sent {
    pub sender: u64,
    /// The sender's n-th send: later sends must sit later in every list.
    pub index: u64,
    pub client_msg_id: String,
    pub conv: Conv,
    pub message_id: Vec<u8>,
}

/// Everything the soak was told by the server.
#[derive(Default)]
pub struct Ledger {
    pub sent: Vec<Sent>,
    /// Messages whose recall the server confirmed.
    pub recalled: HashSet<Vec<u8>>,
    /// Recalls whose answer was lost: done or not.
    pub maybe_recalled: HashSet<Vec<u8>>,
    pub group_members: HashMap<u64, Vec<u64>>,
    /// Counts of what was done, for the summary.
    pub counts: BTreeMap<&'static str, u64>,
    /// The longest a send took to be confirmed, retries included.
    pub slowest_send: Duration,
}

impl Ledger {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

pub type SharedLedger = Arc<Mutex<Ledger>>;

/// Longest one confirmed action may take across restarts before the soak
/// fails.
const CONFIRM_WITHIN: Duration = Duration::from_secs(90);

/// What `user` does until `deadline`: an action, then a pause a person
/// might take (0.15–0.45 s).
pub async fn act(user: User, ledger: SharedLedger, deadline: Instant, seed: u64) -> User {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sends = 0u64;
    let mut recent: Vec<(Vec<u8>, Instant)> = Vec::new();
    while Instant::now() < deadline {
        let device = &user.devices[rng.gen_range(0..user.devices.len())];
        match rng.gen_range(0..100) {
            50..=74 if !user.groups.is_empty() => {
                let g = user.groups[rng.gen_range(0..user.groups.len())];
                let id = send(&user, device, Conv::Group(g), sends, &ledger).await;
                recent.push((id, Instant::now()));
                sends += 1;
            }
            0..=74 => {
                let to = user.friends[rng.gen_range(0..user.friends.len())];
                let id = send(&user, device, Conv::User(to), sends, &ledger).await;
                recent.push((id, Instant::now()));
                sends += 1;
            }
            75..=79 => {
                // Well inside the two-minute recall window.
                recent.retain(|(_, at)| at.elapsed() < Duration::from_secs(60));
                if !recent.is_empty() {
                    let (id, _) = recent.swap_remove(rng.gen_range(0..recent.len()));
                    recall(device, id, &ledger).await;
                }
            }
            80..=89 => room(device, rng.gen_range(0..3), &ledger).await,
            90..=93 => ack(device, &ledger).await,
            94..=97 => {
                let conv = match rng.gen_range(0..user.friends.len() + user.groups.len()) {
                    i if i < user.friends.len() => Conv::User(user.friends[i]),
                    i => Conv::Group(user.groups[i - user.friends.len()]),
                };
                // All of it, or up to somewhere the device has reached.
                let head = device.stream.head();
                let up_to = match rng.gen_bool(0.5) {
                    true => 0,
                    false => rng.gen_range(0..=head),
                };
                mark_read(device, conv, up_to, &ledger).await;
            }
            _ => {
                // A network change: the app drops its connection.
                device.session.reconnect();
                ledger.lock().unwrap().count("client reconnects");
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(150..450))).await;
    }
    user
}

/// Sends until the server confirms (a retry carries the same
/// client_msg_id, so it is stored once); records it; returns its id.
async fn send(
    user: &User,
    device: &Device,
    conv: Conv,
    index: u64,
    ledger: &SharedLedger,
) -> Vec<u8> {
    let client_msg_id = format!("{}-{index}", user.id);
    let (conv_type, conv_id) = match conv {
        Conv::User(u) => (ConvType::User, u),
        Conv::Group(g) => (ConvType::Group, g),
    };
    let req = SendRequest {
        conv_type: conv_type as i32,
        conv_id,
        content_type: TEXT,
        content: format!("soak {client_msg_id}").into_bytes().into(),
        client_msg_id: client_msg_id.clone(),
        mentions: vec![],
    };
    let started = Instant::now();
    let reply = loop {
        match device.session.send(req.clone()).await {
            Ok(r) => break r,
            Err(e) if transient(&e) && started.elapsed() < CONFIRM_WITHIN => {
                ledger
                    .lock()
                    .unwrap()
                    .count("send attempts failed in transit");
                let wait = e.retry_after().unwrap_or(Duration::from_millis(100));
                tokio::time::sleep(wait).await;
            }
            Err(e) => panic!(
                "send {client_msg_id} failed for good after {:?}: {e}",
                started.elapsed()
            ),
        }
    };
    let mut l = ledger.lock().unwrap();
    // A send that took this long rode out a drop or a restart.
    let took = started.elapsed();
    if took > Duration::from_secs(1) {
        l.count("sends confirmed after a failure");
    }
    l.slowest_send = l.slowest_send.max(took);
    l.count(match conv {
        Conv::User(_) => "one-to-one messages",
        Conv::Group(_) => "group messages",
    });
    let message_id = reply.message_id.to_vec();
    l.sent.push(Sent {
        sender: user.id,
        index,
        client_msg_id,
        conv,
        message_id: message_id.clone(),
    });
    message_id
}

/// Recalls one of the user's own messages. A recall of a recalled message
/// changes nothing, so one whose answer is lost is sent again.
async fn recall(device: &Device, id: Vec<u8>, ledger: &SharedLedger) {
    let started = Instant::now();
    loop {
        let result = match device.session.client().await {
            Ok(c) => c.recall(id.clone()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                let mut l = ledger.lock().unwrap();
                l.recalled.insert(id);
                l.count("recalls");
                return;
            }
            Err(e) if transient(&e) && started.elapsed() < CONFIRM_WITHIN => {
                ledger.lock().unwrap().maybe_recalled.insert(id.clone());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("recall failed for good: {e}"),
        }
    }
}

/// Joins a live room and says something there. Rooms are not stored, and
/// a join is the connection's: a drop between the two is fine.
async fn room(device: &Device, n: u32, ledger: &SharedLedger) {
    let room = format!("soak-room-{n}");
    let Ok(client) = device.session.client().await else {
        return;
    };
    let joined = client.room_join(&room).await;
    let said = match joined {
        Ok(()) => client.room_send(&room, TEXT, "hello room").await,
        Err(e) => Err(e),
    };
    let mut l = ledger.lock().unwrap();
    match said {
        Ok(()) => l.count("room messages"),
        Err(e) if transient(&e) || e.code() == Some(Code::Forbidden) => {
            l.count("room messages lost to a drop")
        }
        Err(e) => panic!("room send failed: {e}"),
    }
}

/// ACKs what the device has; one lost in transit is fine (the next ACK
/// covers it).
async fn ack(device: &Device, ledger: &SharedLedger) {
    let seq = device.stream.head();
    if seq == 0 {
        return;
    }
    let result = match device.session.client().await {
        Ok(c) => c.ack(seq).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ledger.lock().unwrap().count("acks"),
        Err(e) if transient(&e) => {}
        Err(e) => panic!("ack {seq} failed: {e}"),
    }
}

/// Marks a conversation read; one not in the list yet, or a mark lost in
/// transit, is fine (the next one covers it).
async fn mark_read(device: &Device, conv: Conv, up_to: u64, ledger: &SharedLedger) {
    let (conv_type, conv_id) = match conv {
        Conv::User(u) => (ConvType::User, u),
        Conv::Group(g) => (ConvType::Group, g),
    };
    let result = match device.session.client().await {
        Ok(c) => c.mark_read(conv_type, conv_id, up_to).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => {
            assert!(c.read_seq <= c.last_seq, "read past the end: {c:?}");
            ledger.lock().unwrap().count("marks read");
        }
        Err(e) if transient(&e) || e.code() == Some(Code::NotFound) => {}
        Err(e) => panic!("mark read failed: {e}"),
    }
}

/// A failure in transit: the server may or may not have done it, and the
/// same request may be sent again.
fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Closed | ClientError::Timeout | ClientError::Io(_) => true,
        _ => matches!(e.code(), Some(Code::Unavailable | Code::RateLimited)),
    }
}
