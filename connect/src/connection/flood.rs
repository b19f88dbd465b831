//! Per-connection frame and byte budgets. Every frame a client sends takes
//! one token from a frames-per-second bucket and its length from a
//! bytes-per-second bucket; a frame over either budget is answered
//! RATE_LIMITED instead of being served. A connection that keeps going
//! over, more than `flood_close_after` refusals within one
//! [`WINDOW`], is closed as a flood. Each offender is logged at most once
//! per window.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tracing::info;

use crate::config::ConnectConfig;

/// How long refusals are counted before the count starts again, and how
/// often one offender is logged.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// What [`Budget::admit`] decided about one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Serve,
    /// Over budget: answer RATE_LIMITED; the label names which budget,
    /// and the wait is until it would take this frame.
    Refuse(&'static str, Duration),
    /// Over budget too often: close the connection.
    Close,
}

/// The clock of every connection's limiters: one per process, since making
/// one runs CPUID (a hypervisor trap in a VM), and a limiter that holds
/// none of its own is half the size.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SharedClock;

static CLOCK: OnceLock<DefaultClock> = OnceLock::new();

impl Clock for SharedClock {
    type Instant = <DefaultClock as Clock>::Instant;

    fn now(&self) -> Self::Instant {
        CLOCK.get_or_init(DefaultClock::default).now()
    }
}

/// A token bucket of one connection.
pub(crate) type Limiter = RateLimiter<
    NotKeyed,
    InMemoryState,
    SharedClock,
    NoOpMiddleware<<SharedClock as Clock>::Instant>,
>;

/// A limiter of `quota` on the shared clock.
pub(crate) fn limiter(quota: Quota) -> Limiter {
    RateLimiter::direct_with_clock(quota, SharedClock)
}

pub(crate) struct Budget {
    /// `None`: that budget is off (0 in the settings).
    frames: Option<Limiter>,
    bytes: Option<Limiter>,
    close_after: u32,
    refused: u32,
    window_start: Instant,
    logged_at: Option<Instant>,
}

impl Budget {
    /// The budgets of one connection.
    pub(crate) fn new(cfg: &ConnectConfig) -> Budget {
        let frames =
            NonZeroU32::new(cfg.frames_per_sec).map(|per_sec| limiter(Quota::per_second(per_sec)));
        let bytes = NonZeroU32::new(cfg.bytes_per_sec).map(|per_sec| {
            // The burst must hold the largest frame, or it could never pass.
            let burst = u32::try_from(cfg.max_frame_len + 64)
                .unwrap_or(u32::MAX)
                .max(per_sec.get());
            let burst = NonZeroU32::new(burst).expect("at least per_sec");
            let quota = Quota::per_second(per_sec).allow_burst(burst);
            limiter(quota)
        });
        Budget {
            frames,
            bytes,
            close_after: cfg.flood_close_after,
            refused: 0,
            window_start: Instant::now(),
            logged_at: None,
        }
    }

    /// Takes a frame of `len` bytes from the budgets.
    pub(crate) fn admit(&mut self, len: usize) -> Verdict {
        let len = NonZeroU32::new(u32::try_from(len).unwrap_or(u32::MAX).max(1)).expect("max(1)");
        // Only a refusal reads the clock: making one runs CPUID, which in a
        // VM is a trap to the hypervisor, far too dear for every frame.
        let frames = self.frames.as_ref().map_or(Ok(()), |f| {
            f.check()
                .map_err(|not_until| not_until.wait_time_from(f.clock().now()))
        });
        let bytes = match (&frames, &self.bytes) {
            (Ok(()), Some(b)) => match b.check_n(len) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(not_until)) => Err(not_until.wait_time_from(b.clock().now())),
                // Larger than the burst: cannot happen, the burst holds a largest frame.
                Err(_) => Err(WINDOW),
            },
            _ => Ok(()),
        };
        let (over, wait) = match (frames, bytes) {
            (Err(wait), _) => ("frames", wait),
            (_, Err(wait)) => ("bytes", wait),
            (Ok(()), Ok(())) => return Verdict::Serve,
        };
        let now = Instant::now();
        if now.duration_since(self.window_start) > WINDOW {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        if self
            .logged_at
            .is_none_or(|t| now.duration_since(t) > WINDOW)
        {
            self.logged_at = Some(now);
            info!(
                budget = over,
                "client over its frame budget; answering RATE_LIMITED"
            );
        }
        if self.refused > self.close_after {
            Verdict::Close
        } else {
            Verdict::Refuse(over, wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(frames: u32, bytes: u32, close_after: u32) -> ConnectConfig {
        ConnectConfig {
            frames_per_sec: frames,
            bytes_per_sec: bytes,
            flood_close_after: close_after,
            max_frame_len: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn frames_past_the_budget_are_refused_then_the_connection_closes() {
        let mut b = Budget::new(&cfg(5, 1_000_000, 3));
        for _ in 0..5 {
            assert_eq!(b.admit(10), Verdict::Serve);
        }
        for _ in 0..3 {
            assert!(
                matches!(b.admit(10), Verdict::Refuse("frames", wait) if wait > Duration::ZERO && wait <= Duration::from_millis(200))
            );
        }
        assert_eq!(b.admit(10), Verdict::Close);
    }

    #[test]
    fn zero_turns_a_budget_off() {
        let mut b = Budget::new(&cfg(0, 0, 1));
        for _ in 0..10_000 {
            assert_eq!(b.admit(1000), Verdict::Serve);
        }
    }

    #[test]
    fn bytes_past_the_budget_are_refused_but_one_largest_frame_always_fits() {
        // 100 bytes a second, but the burst holds a 1000-byte frame.
        let mut b = Budget::new(&cfg(1000, 100, 10));
        assert_eq!(b.admit(1000), Verdict::Serve);
        assert!(matches!(b.admit(100), Verdict::Refuse("bytes", _)));
    }
}
