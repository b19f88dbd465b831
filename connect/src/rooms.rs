//! Live rooms on one connect node. A connection may join several rooms
//! (bounded); the node subscribes to `tern.room.<id>` only while it has a
//! local member, so a room message reaches only nodes that serve the room.
//! Each message carries one pre-encoded ROOM_PUSH frame, written to every
//! local member but the sender.
//!
//! Membership lives in one table behind a short synchronous lock that is
//! never held across an await. The bus subscribe, a network round trip in
//! a cluster, runs in the room's own task outside that lock: while room X
//! subscribes, joins and leaves of other rooms and closes of any
//! connection (members of X included) go on; only joins of X wait, for the
//! subscribe's outcome. Each stretch of local membership of a room is one
//! *generation*: the task of an older one, still subscribing or draining
//! its last message, can neither go live nor fan out to a newer one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use tern_public::bus::{Bus, Subjects, Subscription};
use tern_public::proto::bus::RoomDeliver;
use tern_public::Code;

use crate::registry::ConnHandle;

/// Why a join was refused.
pub(crate) type JoinRefusal = (Code, String);

/// The rooms of this node and their local members.
pub(crate) struct Rooms {
    inner: Arc<Inner>,
}

/// What the rooms' tasks share with [`Rooms`].
struct Inner {
    table: Mutex<Table>,
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    node_id: String,
    max_rooms_per_conn: usize,
    /// Room messages received from the bus (all rooms).
    received: AtomicU64,
    /// The rooms' tasks: tracked so the node's shutdown waits for them.
    tasks: TaskTracker,
    /// Cancelled at shutdown; each room's own token is a child of it.
    stop: CancellationToken,
}

#[derive(Default)]
struct Table {
    rooms: HashMap<String, Room>,
    /// The rooms of each connection, those still subscribing included.
    by_conn: HashMap<u64, HashSet<String>>,
    next_generation: u64,
}

struct Room {
    generation: u64,
    members: HashMap<u64, ConnHandle>,
    /// Stops the room's task, which unsubscribes by dropping its subscription.
    stop: CancellationToken,
    /// `None` while the subscribe is in flight, then whether it succeeded.
    subscribed: watch::Receiver<Option<bool>>,
}

impl Room {
    fn is_live(&self) -> bool {
        *self.subscribed.borrow() == Some(true)
    }
}

impl Rooms {
    /// The rooms of a node; their tasks are tracked by `tasks` and end
    /// when `stop` is cancelled.
    pub(crate) fn new(
        bus: Arc<dyn Bus>,
        subjects: Subjects,
        node_id: String,
        max_rooms_per_conn: usize,
        tasks: TaskTracker,
        stop: CancellationToken,
    ) -> Rooms {
        Rooms {
            inner: Arc::new(Inner {
                table: Mutex::default(),
                bus,
                subjects,
                node_id,
                max_rooms_per_conn,
                received: AtomicU64::new(0),
                tasks,
                stop,
            }),
        }
    }

    /// Adds a connection to a room; the room's first local member starts
    /// the node's subscription to it. Returns once the node is subscribed,
    /// so room messages sent after the reply reach the member.
    pub(crate) async fn join(&self, room_id: &str, conn: ConnHandle) -> Result<(), JoinRefusal> {
        let mut subscribed = {
            let mut table = self.inner.lock();
            // A closing connection takes itself out of its rooms once; one
            // added after that would stay a member forever.
            if conn.is_closed() {
                return Ok(());
            }
            let conn_id = conn.conn_id;
            let mine = table.by_conn.get(&conn_id);
            let already = mine.is_some_and(|r| r.contains(room_id));
            let max = self.inner.max_rooms_per_conn;
            if !already && mine.map_or(0, HashSet::len) >= max {
                return Err((
                    Code::TooLarge,
                    format!("a connection may be in at most {max} rooms"),
                ));
            }
            if !table.rooms.contains_key(room_id) {
                let room = self.inner.open_room(&mut table, room_id);
                table.rooms.insert(room_id.to_owned(), room);
            }
            let room = table.rooms.get_mut(room_id).expect("inserted above");
            room.members.insert(conn_id, conn);
            let subscribed = room.subscribed.clone();
            table
                .by_conn
                .entry(conn_id)
                .or_default()
                .insert(room_id.to_owned());
            subscribed
        };
        let outcome = subscribed.wait_for(Option::is_some).await.map(|v| *v);
        match outcome {
            Ok(Some(true)) => Ok(()),
            Ok(_) => Err((Code::Unavailable, "service unavailable, retry".to_owned())),
            // The room's task ended before the subscribe did: every member
            // left (this one included: a leave or close overtook its join)
            // or the node is stopping. The connection is not a member, as
            // if it had joined and then left.
            Err(_) => Ok(()),
        }
    }

    /// Removes a connection from a room; the node unsubscribes when the
    /// room has no local member left. Returns whether it was a member.
    pub(crate) fn leave(&self, room_id: &str, conn_id: u64) -> bool {
        let mut table = self.inner.lock();
        leave_locked(&mut table, room_id, conn_id)
    }

    /// Removes a closing connection from all its rooms. The caller closes
    /// the connection's queue first (see [`ConnHandle::is_closed`]), so a
    /// join still on its way cannot add it back afterwards.
    pub(crate) fn leave_all(&self, conn_id: u64) {
        let mut table = self.inner.lock();
        let Some(rooms) = table.by_conn.remove(&conn_id) else {
            return;
        };
        for room_id in rooms {
            leave_locked(&mut table, &room_id, conn_id);
        }
    }

    /// Whether the connection may speak in the room: a member, and the
    /// node is subscribed to it.
    pub(crate) fn is_member(&self, room_id: &str, conn_id: u64) -> bool {
        let table = self.inner.lock();
        table
            .rooms
            .get(room_id)
            .is_some_and(|r| r.is_live() && r.members.contains_key(&conn_id))
    }

    /// Rooms the node is subscribed to, and how many local members each has.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let table = self.inner.lock();
        table
            .rooms
            .iter()
            .filter(|(_, r)| r.is_live())
            .map(|(id, r)| (id.clone(), r.members.len()))
            .collect()
    }

    /// Room messages this node has received from the bus, all rooms.
    pub(crate) fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("rooms lock poisoned")
    }

    /// A new generation of `room_id`, with its task started: subscribing,
    /// then fanning out.
    fn open_room(self: &Arc<Self>, table: &mut Table, room_id: &str) -> Room {
        table.next_generation += 1;
        let generation = table.next_generation;
        let stop = self.stop.child_token();
        let (done, subscribed) = watch::channel(None);
        self.tasks.spawn(serve_room(
            self.clone(),
            room_id.to_owned(),
            generation,
            stop.clone(),
            done,
        ));
        Room {
            generation,
            members: HashMap::new(),
            stop,
            subscribed,
        }
    }

    /// Members of this generation of the room, or none if it is gone.
    fn members(&self, room_id: &str, generation: u64) -> Vec<ConnHandle> {
        let table = self.lock();
        match table.rooms.get(room_id) {
            Some(r) if r.generation == generation => r.members.values().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The subscription of this generation failed or ended: its members
    /// are members no more, and the next join starts over.
    fn subscribe_failed(&self, room_id: &str, generation: u64) {
        let mut table = self.lock();
        let Some(room) = table.rooms.get(room_id) else {
            return;
        };
        if room.generation != generation {
            return;
        }
        let members: Vec<u64> = room.members.keys().copied().collect();
        for conn_id in members {
            leave_locked(&mut table, room_id, conn_id);
        }
    }
}

fn leave_locked(table: &mut Table, room_id: &str, conn_id: u64) -> bool {
    let was = table
        .by_conn
        .get_mut(&conn_id)
        .is_some_and(|r| r.remove(room_id));
    if table.by_conn.get(&conn_id).is_some_and(HashSet::is_empty) {
        table.by_conn.remove(&conn_id);
    }
    if let Some(room) = table.rooms.get_mut(room_id) {
        room.members.remove(&conn_id);
        if room.members.is_empty() {
            if let Some(room) = table.rooms.remove(room_id) {
                // Whether still subscribing or live, the task ends; a join
                // coming next opens a new generation with its own task.
                room.stop.cancel();
            }
        }
    }
    was
}

/// One generation of a room: subscribes (no lock held), tells the joiners
/// how that went, then writes each room message to every local member but
/// the sender until the room empties or the node stops.
async fn serve_room(
    rooms: Arc<Inner>,
    room_id: String,
    generation: u64,
    stop: CancellationToken,
    done: watch::Sender<Option<bool>>,
) {
    let subject = rooms.subjects.room(&room_id);
    let subscribed = tokio::select! {
        biased;
        () = stop.cancelled() => return,
        r = rooms.bus.subscribe(&subject, None) => r,
    };
    let sub = match subscribed {
        Ok(sub) => sub,
        Err(e) => {
            warn!(room_id, error = %e, "could not subscribe to a room");
            rooms.subscribe_failed(&room_id, generation);
            done.send_replace(Some(false));
            return;
        }
    };
    {
        // Under the lock, so no leave can empty the room between the check
        // and the room going live; emptied meanwhile, dropping `sub`
        // unsubscribes at once.
        let table = rooms.lock();
        match table.rooms.get(&room_id) {
            Some(r) if r.generation == generation => {
                done.send_replace(Some(true));
            }
            _ => return,
        }
    }
    fan_out(&rooms, &room_id, generation, &stop, sub).await;
}

async fn fan_out(
    rooms: &Inner,
    room_id: &str,
    generation: u64,
    stop: &CancellationToken,
    mut sub: Subscription,
) {
    loop {
        let msg = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            msg = sub.next() => match msg {
                Some(msg) => msg,
                None => {
                    // The bus ended the subscription: the members would
                    // hear nothing more. They are members no more (a
                    // ROOM_SEND tells them to join again, which subscribes
                    // anew) rather than of a room gone silent.
                    warn!(room_id, "room subscription ended by the bus; its members must join again");
                    rooms.subscribe_failed(room_id, generation);
                    break;
                }
            },
        };
        rooms.received.fetch_add(1, Ordering::Relaxed);
        let d = match RoomDeliver::decode(msg.payload) {
            Ok(d) => d,
            Err(e) => {
                warn!(room_id, error = %e, "undecodable room message");
                continue;
            }
        };
        let from_here = d.except_node_id == rooms.node_id;
        for conn in rooms.members(room_id, generation) {
            if from_here && conn.conn_id == d.except_conn_id {
                continue;
            }
            // A full queue closes that connection (slow consumer), not the room.
            let _ = conn.push(d.frame.clone());
        }
    }
    debug!(room_id, "room subscription ended");
}

#[cfg(test)]
mod tests;
