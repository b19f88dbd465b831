//! One behaviour, two counters: every case runs in memory and on Redis (a
//! real server from tern-testkit), with two handles as two logic nodes
//! would hold; in memory both are the same.

use std::sync::Arc;
use std::time::Duration;

use tern_public::time::now_ms;

use super::*;
use crate::redis_conn::RedisConn;

const LONG: Duration = Duration::from_secs(3600);

/// Runs `case` again if a window boundary passed during it, so a count
/// that straddles two windows cannot fail the test.
async fn within_one_window<F, Fut>(window: Duration, case: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..3 {
        let start = window_index(now_ms(), window);
        let passed = case().await;
        if window_index(now_ms(), window) == start {
            assert!(passed);
            return;
        }
    }
    panic!("three window boundaries in a row");
}

async fn nodes_count_one_key_together(c1: &dyn WindowCounter, c2: &dyn WindowCounter) {
    let n = std::sync::atomic::AtomicU64::new(0);
    within_one_window(LONG, || async {
        let key = format!("k{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let counts = [
            c1.hit(&key, LONG).await.unwrap(),
            c2.hit(&key, LONG).await.unwrap(),
            c1.hit(&key, LONG).await.unwrap(),
            c2.hit("other", LONG).await.unwrap(),
        ];
        counts[..3] == [1, 2, 3] && counts[3] >= 1
    })
    .await;
}

async fn a_new_window_starts_from_zero(c1: &dyn WindowCounter, c2: &dyn WindowCounter) {
    let window = Duration::from_millis(200);
    let key = format!("w{}", now_ms());
    let first = c1.hit(&key, window).await.unwrap();
    let start = window_index(now_ms(), window);
    // Wait out the rest of this window: the boundary is the event.
    let next_ms = (start + 1) * window.as_millis() as u64;
    let left = next_ms.saturating_sub(now_ms() as u64);
    tokio::time::sleep(Duration::from_millis(left + 5)).await;
    assert!(first >= 1);
    assert_eq!(c2.hit(&key, window).await.unwrap(), 1);
}

/// Lockouts double with each one, up to the cap, whichever node sets them,
/// and are forgotten after the rule's memory.
async fn lockouts_grow_and_are_forgotten(c1: &dyn WindowCounter, c2: &dyn WindowCounter) {
    let rule = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_millis(250),
        memory: Duration::from_millis(300),
    };
    let key = format!("l{}", now_ms());
    assert_eq!(c1.locked_for(&key).await.unwrap(), None);
    let mut waits = Vec::new();
    for c in [c1, c2, c1, c2] {
        waits.push(c.lock_out(&key, rule).await.unwrap());
    }
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 200, 250, 250], "doubling up to the cap");
    let left = c2.locked_for(&key).await.unwrap().expect("locked out");
    assert!(
        left <= Duration::from_millis(250) && left > Duration::ZERO,
        "{left:?}"
    );
    assert_eq!(c1.locked_for("another").await.unwrap(), None);

    // Past the lockout and its memory, the next one is a first one again.
    tokio::time::sleep(rule.max + rule.memory + Duration::from_millis(50)).await;
    assert_eq!(c1.locked_for(&key).await.unwrap(), None);
    assert_eq!(c2.lock_out(&key, rule).await.unwrap(), rule.first);
}

#[test]
fn backoff_doubles_up_to_its_cap_without_overflow() {
    let rule = Backoff {
        first: Duration::from_secs(60),
        max: Duration::from_secs(900),
        memory: Duration::from_secs(3600),
    };
    let secs: Vec<u64> = (1..=6).map(|n| rule.nth(n).as_secs()).collect();
    assert_eq!(secs, [60, 120, 240, 480, 900, 900]);
    assert_eq!(rule.nth(u32::MAX), rule.max);
    assert_eq!(rule.nth(0), rule.first);
}

macro_rules! on_both_counters {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test]
            async fn memory() {
                let c = MemoryCounter::default();
                super::$case(&c, &c).await;
            }

            #[tokio::test]
            async fn redis() {
                let server = tern_testkit::redis_server();
                let conn = || async { RedisConn::connect(&server.url(), "t").await.unwrap() };
                let c1 = Arc::new(RedisCounter::new(conn().await));
                let c2 = Arc::new(RedisCounter::new(conn().await));
                super::$case(&*c1, &*c2).await;
            }
        }
    )*};
}

on_both_counters!(
    nodes_count_one_key_together,
    a_new_window_starts_from_zero,
    lockouts_grow_and_are_forgotten,
);

#[tokio::test]
async fn the_memory_counter_forgets_past_windows() {
    let c = MemoryCounter::default();
    let window = Duration::from_millis(1);
    for i in 0..50_000 {
        c.hit(&format!("k{i}"), window).await.unwrap();
    }
    let held = c.counts.lock().unwrap().by_key.len();
    assert!(held < 50_000, "{held} keys held");
}
