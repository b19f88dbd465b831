//! The queue of encoded frames others hand one connection (pushes, room
//! pushes, broadcasts, a KICKED).

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its bound in frames.
    Full,
    /// The connection stopped taking frames.
    Closed,
}

/// A bounded queue that holds no memory while it is empty: most
/// connections are idle almost all the time, and a channel's preallocated
/// blocks would cost each of them more than the rest of its state.
pub(crate) struct FrameQueue {
    frames: Mutex<Frames>,
    ready: Notify,
    cap: usize,
}

struct Frames {
    queue: VecDeque<Bytes>,
    closed: bool,
}

impl FrameQueue {
    /// A queue of at most `cap` frames.
    pub(crate) fn new(cap: usize) -> FrameQueue {
        FrameQueue {
            frames: Mutex::new(Frames {
                queue: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            cap,
        }
    }

    /// Queues `frame` without waiting.
    pub(crate) fn try_push(&self, frame: Bytes) -> Result<(), Refused> {
        {
            let mut f = self.frames.lock().expect("frame queue lock poisoned");
            if f.closed {
                return Err(Refused::Closed);
            }
            if f.queue.len() >= self.cap {
                return Err(Refused::Full);
            }
            f.queue.push_back(frame);
        }
        // Keeps a permit when the task is not waiting: no wake-up is lost.
        self.ready.notify_one();
        Ok(())
    }

    /// The oldest queued frame, if any.
    pub(crate) fn pop(&self) -> Option<Bytes> {
        let mut f = self.frames.lock().expect("frame queue lock poisoned");
        let frame = f.queue.pop_front();
        if f.queue.is_empty() && f.queue.capacity() > 0 {
            // Drained: give the slots back while the connection idles.
            f.queue = VecDeque::new();
        }
        frame
    }

    /// Waits for a frame. Cancel-safe: a frame is only taken when returned.
    pub(crate) async fn next(&self) -> Bytes {
        loop {
            if let Some(frame) = self.pop() {
                return frame;
            }
            self.ready.notified().await;
        }
    }

    /// Takes no frame from now on; those queued stay for [`FrameQueue::pop`].
    pub(crate) fn close(&self) {
        self.frames
            .lock()
            .expect("frame queue lock poisoned")
            .closed = true;
    }

    /// Whether [`FrameQueue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.frames
            .lock()
            .expect("frame queue lock poisoned")
            .closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_up_to_the_bound_and_not_after_close() {
        let q = FrameQueue::new(2);
        assert_eq!(q.try_push(Bytes::from_static(b"1")), Ok(()));
        assert_eq!(q.try_push(Bytes::from_static(b"2")), Ok(()));
        assert_eq!(q.try_push(Bytes::from_static(b"3")), Err(Refused::Full));
        assert_eq!(&q.next().await[..], b"1");
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.try_push(Bytes::from_static(b"4")), Err(Refused::Closed));
        assert_eq!(q.pop().as_deref(), Some(&b"2"[..]));
        assert_eq!(q.pop(), None);
    }

    #[tokio::test]
    async fn a_waiting_task_wakes_to_a_push() {
        let q = std::sync::Arc::new(FrameQueue::new(4));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.try_push(Bytes::from_static(b"x")).unwrap();
        assert_eq!(&waiter.await.unwrap()[..], b"x");
    }

    #[test]
    fn a_drained_queue_holds_no_slots() {
        let q = FrameQueue::new(8);
        q.try_push(Bytes::from_static(b"1")).unwrap();
        q.pop();
        assert_eq!(q.frames.lock().unwrap().queue.capacity(), 0);
    }
}
