//! Push notifications for devices that are not connected: where each
//! device wants them (its push token, types 96-97, and the admin API),
//! which entries notify whom ([`planner`]), and sending them through an
//! outbox in the database ([`sender`]) to the providers.
//!
//! The user's list is the source: after each commit the committing node
//! is told whose lists grew ([`Wake`]), and every node also sweeps for
//! users whose list is ahead of their push cursor, so a node that dies
//! between commit and planning loses nothing.

pub mod apns;
pub mod config;
pub mod fcm;
pub mod http;
pub(crate) mod planner;
pub mod provider;
pub(crate) mod sender;
pub mod webhook;

pub use sender::Providers;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use tokio::sync::Notify;
use tracing::warn;

use crate::tasks::Stage;

use tracing::info;

use tern_public::proto::client::PushTokenRequest;
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::domain::PushProvider;
use crate::error::{LogicError, Result};
use crate::store::{PushToken, Store, StoreError};
use crate::Logic;

/// APNs device tokens are hex; Apple says not to assume their length.
const APNS_TOKEN_LEN: std::ops::RangeInclusive<usize> = 16..=200;
/// FCM registration tokens are opaque and about 160 characters today.
const MAX_FCM_TOKEN: usize = 4096;
const MAX_WEBHOOK_TOKEN: usize = 1024;
/// A bundle id, possibly with APNs's suffix (".voip", ".complication").
const MAX_APNS_TOPIC: usize = 255;

/// Users past this many waiting to be planned are left to the sweep.
const MAX_WAKE: usize = 100_000;
/// Users planned at once.
const PLANNING: usize = 8;
/// Users per query that looks up which of them have a push cursor.
const LOOKUP_USERS: u32 = 500;
/// A sweep plans up to 500 users, from at most 20,000 cursors read in
/// pages of 2,000; the next goes on where it stopped, and starts over
/// after the last cursor. With N push cursors, a list that a dead node
/// left unplanned, or whose planning failed, is found again within about
/// N / 20,000 sweeps (by the next one, below 20,000 cursors).
const SWEEP: SweepLimits = SweepLimits {
    users: 500,
    page: 2_000,
    pages: 10,
};
/// How often the outbox depth gauge is read.
const DEPTH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Whose lists grew since the planner last looked: bounded, deduplicated.
#[derive(Default)]
pub(crate) struct Wake {
    users: Mutex<HashSet<u64>>,
    notify: Notify,
}

impl Wake {
    pub(crate) fn users(&self, ids: impl Iterator<Item = u64>) {
        {
            let mut users = self.users.lock().expect("wake lock");
            for id in ids {
                if users.len() >= MAX_WAKE {
                    break;
                }
                users.insert(id);
            }
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<u64> {
        let mut users = self.users.lock().expect("wake lock");
        users.drain().collect()
    }
}

/// Starts the planner and the sender on `stage`, for as long as `logic`
/// lives and the stage runs.
pub(crate) fn start(logic: &Arc<Logic>, wake: Arc<Wake>, providers: Providers, stage: &Stage) {
    let send_now = Arc::new(Notify::new());
    let planner = Arc::downgrade(logic);
    let sender_wake = send_now.clone();
    let sweep_every = logic.cfg.push.sweep;
    stage.spawn(|stop| async move {
        let mut sweeps = tokio::time::interval(sweep_every);
        // The user whose cursor the sweep read last.
        let mut swept_to = 0;
        loop {
            let swept = tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notify.notified() => false,
                _ = sweeps.tick() => true,
            };
            let Some(logic) = planner.upgrade() else {
                return;
            };
            // A stop abandons a round; its users are planned by the sweep
            // of whichever node runs next.
            tokio::select! {
                () = stop.cancelled() => return,
                () = plan_round(&logic, &wake, swept.then_some(&mut swept_to)) => {}
            }
            sender_wake.notify_one();
        }
    });
    let sender: Weak<Logic> = Arc::downgrade(logic);
    stage.spawn(|stop| async move {
        let mut depth_at = tokio::time::Instant::now();
        loop {
            let Some(logic) = sender.upgrade() else { return };
            let cfg = &logic.cfg.push;
            let sent = tokio::select! {
                () = stop.cancelled() => return,
                n = sender::send_due(&logic.store, &providers, &logic.metrics, cfg.lease, cfg.concurrency) => n,
            };
            if depth_at.elapsed() >= DEPTH_EVERY {
                depth_at = tokio::time::Instant::now();
                if let Ok(depth) = logic.store.push_outbox_depth().await {
                    logic.metrics.push_outbox_depth.set(depth as i64);
                }
            }
            drop(logic);
            if sent == 0 {
                // Retries come due by the clock: look again within a second.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = send_now.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    });
}

/// Plans the users woken, and on a sweep (`swept_to`: where the last one
/// stopped) those whose list is ahead of their cursor.
async fn plan_round(logic: &Logic, wake: &Wake, swept_to: Option<&mut u64>) {
    let mut users = wake.take();
    if let Some(swept_to) = swept_to {
        users.extend(sweep(&logic.store, swept_to, SWEEP).await);
    }
    users.sort_unstable();
    users.dedup();
    let mut with_cursor = Vec::new();
    for chunk in users.chunks(LOOKUP_USERS as usize) {
        match logic.store.push_cursor_users(chunk).await {
            Ok(found) => with_cursor.extend(found),
            // The sweep finds them later.
            Err(e) => warn!(error = %e, "push planning: cursors not read"),
        }
    }
    futures::stream::iter(with_cursor)
        .for_each_concurrent(PLANNING, |user_id| async move {
            if let Err(e) = planner::plan_user(logic, user_id).await {
                warn!(error = %e, user_id, "push planning failed; the sweep retries");
            }
        })
        .await;
}

/// How much one sweep reads.
#[derive(Clone, Copy)]
struct SweepLimits {
    /// Lagging users found, past which it stops (after the page).
    users: usize,
    /// Cursors per query.
    page: u32,
    /// Queries.
    pages: usize,
}

/// Users whose list is ahead of their push cursor, read from the cursor
/// after user `from`'s on, within `limits`. `from` moves to where the next
/// sweep goes on: 0 once every cursor was read.
async fn sweep(store: &Store, from: &mut u64, limits: SweepLimits) -> Vec<u64> {
    let mut lagging: Vec<u64> = Vec::new();
    for _ in 0..limits.pages {
        let (found, next) = match store.push_lagging(*from, limits.page).await {
            Ok(page) => page,
            Err(e) => {
                warn!(error = %e, "push sweep failed");
                break;
            }
        };
        let room = limits.users - lagging.len();
        if found.len() > room {
            // Full: the next sweep goes on after the last user taken, and
            // reads the rest of this page again.
            lagging.extend_from_slice(&found[..room]);
            *from = lagging[lagging.len() - 1];
            break;
        }
        lagging.extend(found);
        *from = next.unwrap_or(0);
        if next.is_none() || lagging.len() == limits.users {
            break;
        }
    }
    lagging
}

/// PUSH_TOKEN_SET: this device's notifications go to `req`'s token.
pub(crate) async fn set_token(logic: &Logic, actor: &Actor, req: PushTokenRequest) -> Result<()> {
    let token = valid(actor, req)?;
    let stored = crate::retry::run(&logic.store, || async {
        logic
            .store
            .set_push_token(&token)
            .await
            .map_err(LogicError::Store)
    });
    match stored.await {
        Err(LogicError::Store(StoreError::NotFound)) => {
            Err(LogicError::Unauthenticated("the device was signed out"))
        }
        // The same token registered by two devices at the same moment.
        Err(LogicError::Store(StoreError::Conflict)) => Err(LogicError::Conflict(
            "the token is being registered by another device",
        )),
        other => other,
    }?;
    info!(
        user_id = token.user_id,
        device_id = token.device_id,
        provider = ?token.provider,
        "push token set"
    );
    Ok(())
}

/// PUSH_TOKEN_REMOVE: this device gets no more notifications. Removing
/// none is not an error.
pub(crate) async fn remove_token(logic: &Logic, actor: &Actor) -> Result<()> {
    let (user_id, device_id) = (actor.user_id(), actor.device_id());
    if logic.store.remove_push_token(user_id, device_id).await? {
        info!(user_id, device_id, "push token removed");
    }
    Ok(())
}

/// The token `req` asks for, checked as its provider documents it.
fn valid(actor: &Actor, req: PushTokenRequest) -> Result<PushToken> {
    let provider = PushProvider::from_wire(req.provider)
        .ok_or_else(|| LogicError::bad_request("provider must be APNS, FCM or WEBHOOK"))?;
    let token = req.token.trim();
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    let token = match provider {
        PushProvider::Apns => {
            let hex = token.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex || token.len() % 2 != 0 || !APNS_TOKEN_LEN.contains(&token.len()) {
                return Err(LogicError::bad_request(
                    "an APNs token is the device token in hex (16-200 digits)",
                ));
            }
            let topic_ok = req.apns_topic.len() <= MAX_APNS_TOPIC
                && req
                    .apns_topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !topic_ok {
                return Err(LogicError::bad_request(format!(
                    "apns_topic must be a bundle id: up to {MAX_APNS_TOPIC} of A-Z, a-z, 0-9, '.', '_', '-'"
                )));
            }
            token.to_ascii_lowercase()
        }
        PushProvider::Fcm | PushProvider::Webhook => {
            let max = match provider {
                PushProvider::Fcm => MAX_FCM_TOKEN,
                _ => MAX_WEBHOOK_TOKEN,
            };
            if token.is_empty() || token.len() > max || !printable(token) {
                return Err(LogicError::bad_request(format!(
                    "the token must be 1-{max} printable ASCII characters"
                )));
            }
            if !req.apns_topic.is_empty() || req.apns_sandbox {
                return Err(LogicError::bad_request(
                    "apns_topic and apns_sandbox are for APNs tokens only",
                ));
            }
            token.to_owned()
        }
    };
    Ok(PushToken {
        device_id: actor.device_id(),
        user_id: actor.user_id(),
        provider,
        token,
        apns_topic: req.apns_topic,
        apns_sandbox: req.apns_sandbox,
        updated_at: now_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_public::proto::client::PushProvider as Wire;

    fn req(provider: Wire, token: &str) -> PushTokenRequest {
        PushTokenRequest {
            provider: provider as i32,
            token: token.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sweeps_go_on_where_the_last_stopped_and_start_over_at_the_end() {
        use crate::store::push_tests::{device, token};
        let (s, _guard) = crate::store::tests::sqlite().await;
        let ids = crate::store::tests::users(&s, &["a", "u1", "u2", "u3", "u4", "u5"]).await;
        let (a, u) = (ids[0], &ids[1..]);
        for &user in u {
            let phone = device(&s, user).await;
            s.set_push_token(&token(user, phone, &format!("t{user}")))
                .await
                .unwrap();
            let msg = crate::store::messages::test_message(a, user, None);
            s.append(vec![Arc::new(msg)]).await.unwrap().unwrap();
        }
        // One page of two per sweep: five lagging users take three sweeps,
        // and the fourth starts over.
        let one_page = SweepLimits {
            users: 100,
            page: 2,
            pages: 1,
        };
        let mut from = 0;
        assert_eq!(sweep(&s, &mut from, one_page).await, [u[0], u[1]]);
        assert_eq!(sweep(&s, &mut from, one_page).await, [u[2], u[3]]);
        assert_eq!(sweep(&s, &mut from, one_page).await, [u[4]]);
        assert_eq!(from, 0);
        assert_eq!(sweep(&s, &mut from, one_page).await, [u[0], u[1]]);
        // Enough users found ends a sweep, within its page: the next goes
        // on after the last one taken.
        let three = SweepLimits {
            users: 3,
            page: 4,
            pages: 10,
        };
        let mut from = 0;
        assert_eq!(sweep(&s, &mut from, three).await, [u[0], u[1], u[2]]);
        assert_eq!(from, u[2]);
        assert_eq!(sweep(&s, &mut from, three).await, [u[3], u[4]]);
        assert_eq!(from, 0);
        // Exactly enough at the end of a page: the next page is where the
        // next sweep goes on.
        let two = SweepLimits {
            users: 2,
            page: 2,
            pages: 10,
        };
        let mut from = 0;
        assert_eq!(sweep(&s, &mut from, two).await, [u[0], u[1]]);
        assert_eq!(from, u[1]);
        assert_eq!(sweep(&s, &mut from, two).await, [u[2], u[3]]);
    }

    #[test]
    fn tokens_are_checked_as_their_provider_documents_them() {
        let me = Actor::AdminAs(7);
        let apns = valid(&me, req(Wire::Apns, &"AB".repeat(32))).unwrap();
        assert_eq!(
            apns.token,
            "ab".repeat(32),
            "APNs tokens are kept lower-case"
        );
        assert_eq!(apns.provider, PushProvider::Apns);
        assert!(valid(&me, req(Wire::Fcm, "fcm:token-1")).is_ok());
        assert!(valid(&me, req(Wire::Webhook, "gateway-42")).is_ok());
        for bad in [
            req(Wire::Unspecified, "x"),
            req(Wire::Apns, "not hex at all"),
            req(Wire::Apns, "abc"),
            req(Wire::Apns, &"ab".repeat(101)),
            req(Wire::Fcm, ""),
            req(Wire::Fcm, "has space"),
            req(Wire::Fcm, &"x".repeat(MAX_FCM_TOKEN + 1)),
            req(Wire::Webhook, &"x".repeat(MAX_WEBHOOK_TOKEN + 1)),
            PushTokenRequest {
                apns_topic: "com.example.app".into(),
                ..req(Wire::Fcm, "t")
            },
            PushTokenRequest {
                apns_topic: "com example".into(),
                ..req(Wire::Apns, &"ab".repeat(32))
            },
            PushTokenRequest {
                provider: 99,
                ..req(Wire::Fcm, "t")
            },
        ] {
            let shown = format!("{bad:?}");
            let err = valid(&me, bad).expect_err(&shown);
            assert!(matches!(err, LogicError::BadRequest(_)), "{shown}: {err}");
        }
    }
}
