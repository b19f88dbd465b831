//! The recorder under load: waits and records from other threads at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::Recorder;

/// A wait that returns while another thread records must not deadlock
/// with it: the wait's guard on the count and the recording's lock on the
/// items were once taken in opposite orders.
#[test]
fn waits_while_items_are_recorded_do_not_deadlock() {
    const WAITS: usize = 1_000;
    const MAX_ITEMS: usize = 50_000_000;
    let recorder = Arc::new(Recorder::<u8>::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (r, halt) = (recorder.clone(), stop.clone());
    let recording = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        for _ in 0..MAX_ITEMS {
            if halt.load(Ordering::Relaxed) || Instant::now() >= until {
                break;
            }
            r.push(0);
        }
    });
    let (done, finished) = mpsc::channel();
    let r = recorder.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            for _ in 0..WAITS {
                let next = *r.count.borrow() + 1;
                r.wait(next, "items").await;
            }
        });
        let _ = done.send(());
    });
    let waited = finished.recv_timeout(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    waited.expect("a wait and a recording deadlocked");
    recording.join().expect("the recording thread");
}
