//! The logic side of the bus: client commands arriving on `tern.logic.rpc`
//! (queue group `logic`) and events on `tern.logic.events`. This is the edge
//! where handler errors become reply codes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use tern_public::bus::{BusError, BusMessage, Subscription, LOGIC_QUEUE};
use tern_public::proto::bus::ConnRequest;

use crate::error::{LogicError, Result};
use crate::{dispatch, events, Logic};

/// Logic's subscriptions on the bus, ready to serve.
pub struct LogicServer {
    logic: Arc<Logic>,
    rpc: Subscription,
    events: Subscription,
}

impl LogicServer {
    /// Subscribes to the command and event subjects (queue group `logic`).
    /// Once this returns, requests published on the bus reach this node.
    pub async fn subscribe(logic: Arc<Logic>) -> Result<LogicServer, BusError> {
        let subjects = &logic.cfg.subjects;
        let rpc = logic
            .bus
            .subscribe(&subjects.logic_rpc(), Some(LOGIC_QUEUE))
            .await?;
        let events = logic
            .bus
            .subscribe(&subjects.logic_events(), Some(LOGIC_QUEUE))
            .await?;
        Ok(LogicServer { logic, rpc, events })
    }

    /// Serves commands and events until `shutdown` resolves, then stops
    /// taking new ones and waits for those in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let LogicServer {
            logic,
            mut rpc,
            events,
        } = self;
        let limit = Arc::new(Semaphore::new(logic.cfg.max_concurrent_requests));
        // Requests, events and the sweeper: all awaited before this returns.
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        tracker.spawn({
            let logic = logic.clone();
            let stop = stop.clone();
            async move { events::sweep_dead_nodes(&logic, stop).await }
        });
        // Events (liveness, offline, re-announce) have their own loop and
        // limit: a flood of requests must not delay liveness past its TTL.
        tracker.spawn(serve_events(
            logic.clone(),
            events,
            tracker.clone(),
            stop.clone(),
        ));
        info!("logic serving");
        tokio::pin!(shutdown);
        let serve = |msg: BusMessage, permit| {
            let logic = logic.clone();
            tracker.spawn(async move {
                handle_request(&logic, msg).await;
                drop(permit);
            });
        };
        loop {
            // Take a permit first: at the limit, requests wait on the bus, not in memory.
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.expect("semaphore never closed"),
                () = &mut shutdown => break,
            };
            tokio::select! {
                Some(msg) = rpc.next() => serve(msg, permit),
                () = &mut shutdown => break,
                else => break,
            }
        }
        // Requests the bus already handed to this node would otherwise be
        // dropped with the subscription and wait out the client's timeout:
        // unsubscribe, then serve what is buffered (new ones go to the
        // other logic nodes).
        drain(&mut rpc, "requests", |msg| async {
            let permit = limit.clone().acquire_owned().await;
            serve(msg, permit.expect("semaphore never closed"));
        })
        .await;
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        info!("logic stopped");
    }
}

/// Events handled at once by one node.
const MAX_CONCURRENT_EVENTS: usize = 256;

async fn serve_events(
    logic: Arc<Logic>,
    mut events: Subscription,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_EVENTS));
    let serve = |msg: BusMessage, permit| {
        let logic = logic.clone();
        tracker.spawn(async move {
            events::handle(&logic, msg.payload).await;
            drop(permit);
        });
    };
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.expect("semaphore never closed"),
            () = stop.cancelled() => break,
        };
        tokio::select! {
            Some(msg) = events.next() => serve(msg, permit),
            () = stop.cancelled() => break,
            else => return,
        }
    }
    // A device-offline event dropped here would leave stale presence.
    drain(&mut events, "events", |msg| async {
        let permit = limit.clone().acquire_owned().await;
        serve(msg, permit.expect("semaphore never closed"));
    })
    .await;
}

/// How long a stopping node keeps serving what its subscriptions had
/// buffered; past the clients' request timeout an answer helps nobody.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Unsubscribes `sub` and hands every message it still yields to `serve`.
async fn drain<F, Fut>(sub: &mut Subscription, what: &str, mut serve: F)
where
    F: FnMut(BusMessage) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Err(e) = sub.drain().await {
        warn!(error = %e, what, "could not drain the subscription; buffered messages are dropped");
        return;
    }
    let mut served = 0u64;
    let rest = async {
        while let Some(msg) = sub.next().await {
            serve(msg).await;
            served += 1;
        }
    };
    if tokio::time::timeout(DRAIN_WAIT, rest).await.is_err() {
        warn!(
            what,
            "subscription still draining after {DRAIN_WAIT:?}; stopping"
        );
    }
    debug!(what, served, "subscription drained");
}

async fn handle_request(logic: &Logic, msg: BusMessage) {
    let Some(reply_to) = msg.reply else {
        warn!("request without a reply subject dropped");
        return;
    };
    let reply = match ConnRequest::decode(msg.payload) {
        Ok(req) => dispatch::dispatch(logic, req).await,
        Err(e) => dispatch::error_reply(&LogicError::bad_request(format!(
            "undecodable request: {e}"
        ))),
    };
    if let Err(e) = logic
        .bus
        .publish(&reply_to, reply.encode_to_vec().into())
        .await
    {
        warn!(error = %e, "could not send reply");
    }
}

#[cfg(test)]
mod tests;
