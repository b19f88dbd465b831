//! Which local connection serves which device (DESIGN.md "connect").
//!
//! Every open connection has a [`ConnHandle`]: a queue of encoded frames,
//! bounded in frames and in bytes ([`QueuedBytes`]), and a close signal. Signed-in connections are also indexed by
//! device id; a second sign-in of the same device replaces the first, and
//! removal is compare-and-delete on the connection id so a stale close never
//! unbinds the newer connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::Notify;

use tern_public::proto::client::{KickReason, Kicked};
use tern_public::{Frame, FrameType};

use crate::close::Close;

mod frames;
mod queued;
use frames::{FrameQueue, Refused};
use queued::QueuedBytes;

/// How a connection is closed from outside its own task: the first
/// [`Close`] claimed wins, and the connection's task wakes to it.
#[derive(Default)]
pub(crate) struct CloseSignal {
    notify: Notify,
    close: OnceLock<Close>,
}

impl CloseSignal {
    /// Waits until the connection is told to close, and says why.
    pub(crate) async fn wait(&self) -> Close {
        loop {
            self.notify.notified().await;
            // A permit is only stored after a claim, but a stray wake-up
            // must not invent a reason.
            if let Some(&close) = self.close.get() {
                return close;
            }
        }
    }

    /// Re-raises a close that a writer observed but must leave to the main loop.
    pub(crate) fn rearm(&self) {
        self.notify.notify_one();
    }

    /// Claims the close for `close`; false if the connection is already closing.
    fn claim(&self, close: Close) -> bool {
        self.close.set(close).is_ok()
    }

    fn raise(&self) {
        // notify_one keeps a permit if the task is busy.
        self.notify.notify_one();
    }
}

/// What a connection's task and its handles share, in one allocation.
struct Shared {
    frames: FrameQueue,
    queued: QueuedBytes,
    signal: CloseSignal,
}

/// The outside view of one connection; its own task holds one too, and
/// takes the queued frames through it.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub conn_id: u64,
    shared: Arc<Shared>,
}

/// What happened to a frame offered to a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    /// The queue was full (in frames or in bytes): the connection is being
    /// closed; its device resyncs on reconnect.
    SlowConsumer,
    Closed,
}

impl ConnHandle {
    /// The handle of a new connection whose queue holds at most `frames`
    /// frames and `bytes` bytes (or one frame of any size when empty).
    pub(crate) fn bounded(conn_id: u64, frames: usize, bytes: usize) -> Self {
        ConnHandle {
            conn_id,
            shared: Arc::new(Shared {
                frames: FrameQueue::new(frames),
                queued: QueuedBytes::new(bytes),
                signal: CloseSignal::default(),
            }),
        }
    }

    /// A handle with no byte limit, for tests that count frames only.
    #[cfg(test)]
    pub(crate) fn new(conn_id: u64, frames: usize) -> Self {
        ConnHandle::bounded(conn_id, frames, usize::MAX)
    }

    /// Whether the connection's task has stopped taking frames: it is
    /// closing, and must not be added anywhere any more.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.frames.is_closed()
    }

    /// Queues an encoded frame without waiting; a queue full in frames or
    /// in bytes closes the connection. A sender never waits for a reader.
    pub(crate) fn push(&self, frame: Bytes) -> Push {
        let len = frame.len();
        if !self.shared.queued.take(len) {
            return self.slow_consumer();
        }
        match self.shared.frames.try_push(frame) {
            Ok(()) => Push::Queued,
            Err(Refused::Full) => {
                self.shared.queued.release(len);
                self.slow_consumer()
            }
            Err(Refused::Closed) => {
                self.shared.queued.release(len);
                Push::Closed
            }
        }
    }

    fn slow_consumer(&self) -> Push {
        if self.is_closed() {
            return Push::Closed;
        }
        // The first reason wins: a kicked connection stays kicked.
        self.shared.signal.claim(Close::SlowConsumer);
        self.shared.signal.raise();
        Push::SlowConsumer
    }

    /// Sends KICKED(reason) and closes the connection after flushing its
    /// queue. Only the first close of a connection sends a KICKED.
    pub(crate) fn kick(&self, reason: KickReason) {
        let close = Close::Kicked(reason);
        let shared = &self.shared;
        if !shared.signal.claim(close) {
            return;
        }
        if let Some(reason) = close.kick_reason() {
            let frame = Frame::from_message(
                FrameType::Kicked.as_u16(),
                &Kicked {
                    reason: reason as i32,
                },
            );
            // If the queue is full the client misses the reason, not the
            // close. The byte limit does not apply: the frame is tiny and
            // the last one.
            let frame = frame.to_bytes();
            let len = frame.len();
            shared.queued.force(len);
            if shared.frames.try_push(frame).is_err() {
                shared.queued.release(len);
            }
        }
        shared.signal.raise();
    }

    // === the connection's own side ===

    /// Bytes queued and not taken yet.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.shared.queued.get()
    }

    /// Takes the oldest queued frame, if any, and gives back its room.
    pub(crate) fn take(&self) -> Option<Bytes> {
        let frame = self.shared.frames.pop()?;
        self.shared.queued.release(frame.len());
        Some(frame)
    }

    /// Waits for a queued frame and takes it (cancel-safe).
    pub(crate) async fn next_frame(&self) -> Bytes {
        let frame = self.shared.frames.next().await;
        self.shared.queued.release(frame.len());
        frame
    }

    /// The connection takes no more frames: pushes from now on are refused.
    pub(crate) fn close_queue(&self) {
        self.shared.frames.close();
    }

    /// How the connection is told to close from outside.
    pub(crate) fn signal(&self) -> &CloseSignal {
        &self.shared.signal
    }
}

/// All connections of this node, and the signed-in ones by device.
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, ConnHandle>>,
    /// device_id -> (user_id, connection).
    devices: Mutex<HashMap<u64, (u64, ConnHandle)>>,
}

impl Registry {
    pub(crate) fn add(&self, handle: ConnHandle) {
        self.conns
            .lock()
            .expect("registry lock poisoned")
            .insert(handle.conn_id, handle);
    }

    pub(crate) fn remove(&self, conn_id: u64) {
        self.conns
            .lock()
            .expect("registry lock poisoned")
            .remove(&conn_id);
    }

    /// Binds a device to a connection; returns the connection it replaces, if any.
    pub(crate) fn bind(
        &self,
        user_id: u64,
        device_id: u64,
        handle: ConnHandle,
    ) -> Option<ConnHandle> {
        let mut devices = self.devices.lock().expect("registry lock poisoned");
        let new_id = handle.conn_id;
        devices
            .insert(device_id, (user_id, handle))
            .map(|(_, old)| old)
            .filter(|old| old.conn_id != new_id)
    }

    /// Compare-and-delete: unbinds the device only if `conn_id` still serves it.
    pub(crate) fn unbind(&self, device_id: u64, conn_id: u64) -> bool {
        let mut devices = self.devices.lock().expect("registry lock poisoned");
        if devices.get(&device_id).map(|(_, h)| h.conn_id) == Some(conn_id) {
            devices.remove(&device_id);
            true
        } else {
            false
        }
    }

    pub(crate) fn device(&self, device_id: u64) -> Option<ConnHandle> {
        self.devices
            .lock()
            .expect("registry lock poisoned")
            .get(&device_id)
            .map(|(_, h)| h.clone())
    }

    /// The connection of every signed-in device.
    pub(crate) fn bound_handles(&self) -> Vec<ConnHandle> {
        self.devices
            .lock()
            .expect("registry lock poisoned")
            .values()
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Every signed-in device: (conn_id, user_id, device_id).
    pub(crate) fn bound(&self) -> Vec<(u64, u64, u64)> {
        self.devices
            .lock()
            .expect("registry lock poisoned")
            .iter()
            .map(|(&device_id, (user_id, h))| (h.conn_id, *user_id, device_id))
            .collect()
    }

    /// Every open connection (for drain).
    pub(crate) fn all(&self) -> Vec<ConnHandle> {
        self.conns
            .lock()
            .expect("registry lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.conns.lock().expect("registry lock poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_bind_replaces_and_stale_unbind_keeps_the_newer() {
        let reg = Registry::default();
        let a = ConnHandle::new(1, 4);
        let b = ConnHandle::new(2, 4);
        assert!(reg.bind(70, 7, a).is_none());
        let old = reg.bind(70, 7, b).expect("replaced");
        assert_eq!(reg.bound(), vec![(2, 70, 7)]);
        assert_eq!(old.conn_id, 1);
        // The old connection closes later: it must not remove the new binding.
        assert!(!reg.unbind(7, 1));
        assert_eq!(reg.device(7).unwrap().conn_id, 2);
        assert!(reg.unbind(7, 2));
        assert!(reg.device(7).is_none());
    }

    #[tokio::test]
    async fn full_queue_marks_slow_consumer() {
        let h = ConnHandle::new(1, 2);
        assert_eq!(h.push(Bytes::from_static(b"1")), Push::Queued);
        assert_eq!(h.push(Bytes::from_static(b"2")), Push::Queued);
        assert_eq!(h.push(Bytes::from_static(b"3")), Push::SlowConsumer);
        assert_eq!(h.signal().wait().await, Close::SlowConsumer);
        assert_eq!(&h.next_frame().await[..], b"1");
    }

    #[tokio::test]
    async fn pushes_past_the_byte_limit_mark_slow_consumer_but_one_large_frame_fits() {
        let h = ConnHandle::bounded(1, 64, 100);
        // Empty: a frame larger than the whole limit still goes in.
        assert_eq!(h.push(Bytes::from(vec![0u8; 300])), Push::Queued);
        assert_eq!(h.queued_bytes(), 300);
        // Taken off by the connection: the room is back.
        h.next_frame().await;
        assert_eq!(h.queued_bytes(), 0);
        assert_eq!(h.push(Bytes::from(vec![0u8; 60])), Push::Queued);
        assert_eq!(h.push(Bytes::from(vec![0u8; 40])), Push::Queued);
        assert_eq!(h.push(Bytes::from(vec![0u8; 1])), Push::SlowConsumer);
        assert_eq!(h.queued_bytes(), 100, "a refused frame takes no room");
        assert_eq!(h.signal().wait().await, Close::SlowConsumer);
        // The KICKED of a kick is queued whatever the bytes.
        let h = ConnHandle::bounded(2, 64, 10);
        assert_eq!(h.push(Bytes::from(vec![0u8; 10])), Push::Queued);
        h.kick(KickReason::Draining);
        h.take().expect("the push");
        let queued = h.queued_bytes();
        assert_eq!(
            queued,
            h.take().expect("the KICKED").len(),
            "the KICKED's bytes are counted"
        );
    }

    #[tokio::test]
    async fn only_the_first_kick_sends_kicked() {
        let h = ConnHandle::new(1, 8);
        h.kick(KickReason::SignedInElsewhere);
        h.kick(KickReason::Draining);
        assert_eq!(
            h.signal().wait().await,
            Close::Kicked(KickReason::SignedInElsewhere)
        );
        assert!(h.take().is_some());
        assert!(h.take().is_none(), "a second KICKED was queued");
    }

    #[tokio::test]
    async fn kick_queues_kicked_frame_then_signals() {
        let h = ConnHandle::new(1, 2);
        h.kick(KickReason::SignedInElsewhere);
        assert_eq!(
            h.signal().wait().await,
            Close::Kicked(KickReason::SignedInElsewhere)
        );
        let frame = h.next_frame().await;
        assert_eq!(u16::from_be_bytes([frame[0], frame[1]]), 103);
    }
}
