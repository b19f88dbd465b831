//! Live rooms on one connect node. A connection may join several rooms
//! (bounded); the node subscribes to `tern.room.<id>` only while it has a
//! local member, so a room message reaches only nodes that serve the room.
//! Each message carries one pre-encoded ROOM_PUSH frame, written to every
//! local member but the sender.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use tern_public::bus::Subscription;
use tern_public::proto::bus::RoomDeliver;
use tern_public::Code;

use crate::registry::ConnHandle;
use crate::server::Shared;

/// The rooms of this node and their local members.
#[derive(Default)]
pub(crate) struct Rooms {
    state: Mutex<State>,
    /// Serialises joins and leaves, so a room's subscription is created
    /// and dropped exactly once per stretch of local membership.
    changes: tokio::sync::Mutex<()>,
    /// Room messages received from the bus (all rooms).
    pub received: AtomicU64,
}

#[derive(Default)]
struct State {
    rooms: HashMap<String, Room>,
    by_conn: HashMap<u64, HashSet<String>>,
}

struct Room {
    members: HashMap<u64, ConnHandle>,
    /// Consumes the room's subscription; aborting it unsubscribes.
    task: JoinHandle<()>,
}

/// Why a join was refused.
pub(crate) type Refusal = (Code, String);

impl Rooms {
    /// Adds a connection to a room, subscribing the node to it first when
    /// it is the room's first local member.
    pub(crate) async fn join(
        &self,
        shared: &Arc<Shared>,
        room_id: &str,
        conn: ConnHandle,
    ) -> Result<(), Refusal> {
        let _serial = self.changes.lock().await;
        {
            let mut st = self.state.lock().expect("rooms lock poisoned");
            let mine = st.by_conn.get(&conn.conn_id);
            if mine.is_some_and(|r| r.contains(room_id)) {
                return Ok(());
            }
            let max = shared.cfg.max_rooms_per_conn;
            if mine.map_or(0, HashSet::len) >= max {
                return Err((
                    Code::TooLarge,
                    format!("a connection may be in at most {max} rooms"),
                ));
            }
            if let Some(room) = st.rooms.get_mut(room_id) {
                room.members.insert(conn.conn_id, conn.clone());
                st.by_conn
                    .entry(conn.conn_id)
                    .or_default()
                    .insert(room_id.to_owned());
                return Ok(());
            }
        }
        let subject = shared.cfg.subjects.room(room_id);
        let sub = shared.bus.subscribe(&subject, None).await.map_err(|e| {
            warn!(room_id, error = %e, "could not subscribe to a room");
            (Code::Unavailable, "service unavailable, retry".to_owned())
        })?;
        let task = tokio::spawn(fan_out(shared.clone(), room_id.to_owned(), sub));
        let mut st = self.state.lock().expect("rooms lock poisoned");
        st.rooms.insert(
            room_id.to_owned(),
            Room {
                members: HashMap::from([(conn.conn_id, conn.clone())]),
                task,
            },
        );
        st.by_conn
            .entry(conn.conn_id)
            .or_default()
            .insert(room_id.to_owned());
        Ok(())
    }

    /// Removes a connection from a room; the node unsubscribes when the
    /// room has no local member left. Returns whether it was a member.
    pub(crate) async fn leave(&self, room_id: &str, conn_id: u64) -> bool {
        let _serial = self.changes.lock().await;
        let mut st = self.state.lock().expect("rooms lock poisoned");
        leave_locked(&mut st, room_id, conn_id)
    }

    /// Removes a closing connection from all its rooms.
    pub(crate) async fn leave_all(&self, conn_id: u64) {
        let _serial = self.changes.lock().await;
        let mut st = self.state.lock().expect("rooms lock poisoned");
        let rooms: Vec<String> = st
            .by_conn
            .get(&conn_id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        for room_id in rooms {
            leave_locked(&mut st, &room_id, conn_id);
        }
    }

    pub(crate) fn is_member(&self, room_id: &str, conn_id: u64) -> bool {
        let st = self.state.lock().expect("rooms lock poisoned");
        st.by_conn
            .get(&conn_id)
            .is_some_and(|r| r.contains(room_id))
    }

    /// Rooms with at least one local member, and how many each has.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let st = self.state.lock().expect("rooms lock poisoned");
        st.rooms
            .iter()
            .map(|(id, r)| (id.clone(), r.members.len()))
            .collect()
    }

    fn members(&self, room_id: &str) -> Vec<ConnHandle> {
        let st = self.state.lock().expect("rooms lock poisoned");
        st.rooms
            .get(room_id)
            .map(|r| r.members.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn leave_locked(st: &mut State, room_id: &str, conn_id: u64) -> bool {
    let was = st
        .by_conn
        .get_mut(&conn_id)
        .is_some_and(|r| r.remove(room_id));
    if st.by_conn.get(&conn_id).is_some_and(HashSet::is_empty) {
        st.by_conn.remove(&conn_id);
    }
    if let Some(room) = st.rooms.get_mut(room_id) {
        room.members.remove(&conn_id);
        if room.members.is_empty() {
            if let Some(room) = st.rooms.remove(room_id) {
                room.task.abort();
            }
        }
    }
    was
}

/// Writes each room message to every local member but the sender.
async fn fan_out(shared: Arc<Shared>, room_id: String, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        shared.rooms.received.fetch_add(1, Ordering::Relaxed);
        let d = match RoomDeliver::decode(msg.payload) {
            Ok(d) => d,
            Err(e) => {
                warn!(room_id, error = %e, "undecodable room message");
                continue;
            }
        };
        let from_here = d.except_node_id == shared.cfg.node_id;
        for conn in shared.rooms.members(&room_id) {
            if from_here && conn.conn_id == d.except_conn_id {
                continue;
            }
            // A full queue closes that connection (slow consumer), not the room.
            let _ = conn.push(d.frame.clone());
        }
    }
    debug!(room_id, "room subscription ended");
}
