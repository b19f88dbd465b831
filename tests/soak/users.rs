//! The soak's users: two devices each, kept signed in by SDK Sessions,
//! with friends and groups, and what each device's Session handed to the
//! app.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use tern_client::proto::GroupCreateRequest;
use tern_client::{Client, Credentials, Session, SessionEvent, SessionOptions};

use crate::common::PASSWORD;
use crate::traffic::SharedLedger;

/// One device of a soak user and what its Session handed to the app.
pub struct Device {
    pub creds: Credentials,
    /// Shared with the checks that run while the traffic goes on.
    pub session: Arc<Session>,
    pub stream: Arc<Stream>,
}

/// The app's view of one device: every list entry in the order the
/// Session emitted it.
#[derive(Default)]
pub struct Stream {
    /// (seq, message id) of each `SessionEvent::Message`.
    pub entries: Mutex<Vec<(u64, Vec<u8>)>>,
    pub connects: AtomicU64,
    /// Why the Session gave up, if it did (it must not).
    pub ended: Mutex<Option<String>>,
    /// Woken at every new entry.
    pub changed: tokio::sync::Notify,
}

impl Stream {
    pub fn head(&self) -> u64 {
        let e = self.entries.lock().expect("stream lock");
        e.last().map_or(0, |(seq, _)| *seq)
    }
}

pub struct User {
    pub id: u64,
    pub devices: Vec<Device>,
    pub friends: Vec<u64>,
    pub groups: Vec<u64>,
}

fn options() -> SessionOptions {
    SessionOptions {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
        tls: None,
        conversations: true,
    }
}

/// Registers `n` users with two devices each: even users connect to the
/// nodes directly, odd ones through `proxied` (which the soak cuts), each
/// starting on a different node. Friends in a ring (two on each side);
/// groups of six, whose creator befriends each member first.
pub async fn setup(
    direct: &[SocketAddr],
    proxied: &[SocketAddr],
    n: usize,
    tag: &str,
) -> (Vec<User>, SharedLedger) {
    let mut users = Vec::new();
    for i in 0..n {
        let name = format!("{tag}{i}");
        let addr = direct[i % direct.len()];
        let mut creds = Vec::new();
        for first in [true, false] {
            let (client, _events) = Client::connect(addr).await.expect("connect");
            let auth = if first {
                client.register(&name, PASSWORD, &name).await
            } else {
                client.login(&name, PASSWORD, None).await
            }
            .expect("sign up");
            creds.push(Credentials {
                user_id: auth.user_id,
                device_id: auth.device_id,
                token: auth.token,
            });
        }
        let pool = if i % 2 == 0 { direct } else { proxied };
        let mut addrs = pool.to_vec();
        addrs.rotate_left(i % pool.len());
        let devices = creds.into_iter().map(|c| start(&addrs, c)).collect();
        users.push(User {
            id: 0,
            devices,
            friends: Vec::new(),
            groups: Vec::new(),
        });
        users[i].id = users[i].devices[0].creds.user_id;
    }
    for i in 0..n {
        for step in [1, 2] {
            let j = (i + step) % n;
            let (a, b) = (users[i].id, users[j].id);
            client(&users[i])
                .await
                .friend_request(b, "hi")
                .await
                .expect("friend request");
            client(&users[j])
                .await
                .friend_accept(a)
                .await
                .expect("friend accept");
            users[i].friends.push(b);
            users[j].friends.push(a);
        }
    }
    let ledger = SharedLedger::default();
    for g in 0..(n / 4).max(1) {
        let members: Vec<usize> = (0..6).map(|k| (g * 4 + k) % n).collect();
        // The default friends-only policy lets a user put only friends into
        // a group: the creator befriends the members the ring did not.
        let owner = members[0];
        let owner_id = users[owner].id;
        for &m in &members[1..] {
            let other = users[m].id;
            if m == owner || users[owner].friends.contains(&other) {
                continue;
            }
            client(&users[owner])
                .await
                .friend_request(other, "hi")
                .await
                .expect("friend request");
            client(&users[m])
                .await
                .friend_accept(owner_id)
                .await
                .expect("friend accept");
            users[owner].friends.push(other);
            users[m].friends.push(owner_id);
        }
        let req = GroupCreateRequest {
            name: format!("{tag} group {g}"),
            member_ids: members[1..].iter().map(|&m| users[m].id).collect(),
            ..Default::default()
        };
        let info = client(&users[members[0]])
            .await
            .group_create(&req)
            .await
            .expect("group create");
        for &m in &members {
            users[m].groups.push(info.group_id);
        }
        let ids = members.iter().map(|&m| users[m].id).collect();
        ledger
            .lock()
            .unwrap()
            .group_members
            .insert(info.group_id, ids);
    }
    (users, ledger)
}

async fn client(u: &User) -> Arc<Client> {
    u.devices[0].session.client().await.expect("signed in")
}

/// Starts a Session for `creds` and a task that records what it emits.
fn start(addrs: &[SocketAddr], creds: Credentials) -> Device {
    let (session, events) = Session::start(addrs.to_vec(), creds.clone(), 0, options());
    let stream = Arc::new(Stream::default());
    tokio::spawn(record(events, stream.clone()));
    Device {
        creds,
        session: Arc::new(session),
        stream,
    }
}

async fn record(mut events: mpsc::Receiver<SessionEvent>, stream: Arc<Stream>) {
    while let Some(e) = events.recv().await {
        match e {
            SessionEvent::Message(m) => {
                stream
                    .entries
                    .lock()
                    .expect("stream lock")
                    .push((m.seq, m.id.to_vec()));
                stream.changed.notify_waiters();
            }
            SessionEvent::Connected(_) => {
                stream.connects.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Ended(why) => {
                *stream.ended.lock().expect("stream lock") = Some(why);
            }
            // The session signs in with the new token itself.
            SessionEvent::Room(_)
            | SessionEvent::Disconnected
            | SessionEvent::TokenRefreshed { .. } => {}
        }
    }
}
