//! The logic side of the bus: client commands arriving on `tern.logic.rpc`
//! (queue group `logic`) and events on `tern.logic.events`. This is the edge
//! where handler errors become reply codes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use tern_public::bus::{BusError, BusMessage, Subscription, LOGIC_QUEUE};
use tern_public::proto::bus::{Bind, ConnReply, ConnRequest};
use tern_public::{Code, FrameType};

use crate::error::{LogicError, Result};
use crate::metrics::{CommandLabels, CommandOnly};
use crate::{auth, events, friends, groups, messages, rooms, users, Logic};

/// The connection a command came from; identity is the connection's, never the payload's.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub node_id: String,
    pub conn_id: u64,
    /// 0 before sign-in.
    pub user_id: u64,
    pub device_id: u64,
    pub heartbeat_interval_secs: u32,
    /// The client's `ip:port` as the connect node saw it; empty for the admin API.
    pub remote_addr: String,
}

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
        Ok(req) => dispatch(logic, req).await,
        Err(e) => error_reply(&LogicError::bad_request(format!(
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

/// Runs one client command and encodes its outcome.
pub(crate) async fn dispatch(logic: &Logic, req: ConnRequest) -> ConnReply {
    let caller = Caller {
        node_id: req.node_id,
        conn_id: req.conn_id,
        user_id: req.user_id,
        device_id: req.device_id,
        heartbeat_interval_secs: req.heartbeat_interval_secs,
        remote_addr: req.remote_addr,
    };
    let ty = u16::try_from(req.r#type).ok().and_then(FrameType::from_u16);
    let started = std::time::Instant::now();
    let result = run(logic, &caller, ty, req.payload).await;
    let command = ty.map_or("unknown", FrameType::name);
    let code = result.as_ref().map_or_else(|e| e.code(), |_| Code::Ok);
    let m = &logic.metrics;
    m.requests
        .get_or_create(&CommandLabels {
            command,
            code: code.name(),
        })
        .inc();
    m.request_seconds
        .get_or_create(&CommandOnly { command })
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok((payload, bind)) => ConnReply {
            code: Code::Ok.as_i32(),
            message: String::new(),
            payload: payload.into(),
            bind,
            retry_after_ms: 0,
        },
        Err(e) => {
            debug!(ty = ?ty, code = %e.code(), error = %e, "command failed");
            error_reply(&e)
        }
    }
}

type Outcome = (Vec<u8>, Option<Bind>);

async fn run(
    logic: &Logic,
    caller: &Caller,
    ty: Option<FrameType>,
    payload: Bytes,
) -> Result<Outcome> {
    use FrameType::*;
    let ty = ty.ok_or_else(|| LogicError::bad_request("unknown command"))?;
    if !ty.is_auth() && caller.user_id == 0 {
        return Err(LogicError::Unauthenticated("sign in first"));
    }
    if ty.is_auth() && caller.user_id != 0 {
        return Err(LogicError::bad_request("already signed in"));
    }
    let signed_in = |(reply, bind): (Vec<u8>, Bind)| (reply, Some(bind));
    let p = payload;
    Ok(match ty {
        Register => auth::register(logic, caller, decode(p)?)
            .await
            .map(|(r, b)| signed_in((r.encode_to_vec(), b)))?,
        Login => auth::login(logic, caller, decode(p)?)
            .await
            .map(|(r, b)| signed_in((r.encode_to_vec(), b)))?,
        SignIn => auth::sign_in(logic, caller, decode(p)?)
            .await
            .map(|(r, b)| signed_in((r.encode_to_vec(), b)))?,
        Send => reply(messages::send(logic, caller, decode(p)?).await?),
        Sync => reply(messages::sync(logic, caller, decode(p)?).await?),
        Ack => empty(messages::ack(logic, caller, decode(p)?).await?),
        Recall => empty(messages::recall(logic, caller, decode(p)?).await?),
        FriendRequest => empty(friends::request(logic, caller, decode(p)?).await?),
        FriendAccept => empty(friends::accept(logic, caller, decode(p)?).await?),
        FriendDecline => empty(friends::decline(logic, caller, decode(p)?).await?),
        FriendDelete => empty(friends::delete(logic, caller, decode(p)?).await?),
        FriendList => reply(friends::list(logic, caller, decode(p)?).await?),
        FriendBlock => empty(friends::block(logic, caller, decode(p)?).await?),
        FriendUnblock => empty(friends::unblock(logic, caller, decode(p)?).await?),
        FriendSetRemark => empty(friends::set_remark(logic, caller, decode(p)?).await?),
        GroupCreate => reply(groups::create(logic, caller, decode(p)?).await?),
        GroupInfo => reply(groups::get_info(logic, caller, decode(p)?).await?),
        GroupUpdate => reply(groups::update(logic, caller, decode(p)?).await?),
        GroupListMine => reply(groups::list_mine(logic, caller, decode(p)?).await?),
        GroupMembers => reply(groups::members_page(logic, caller, decode(p)?).await?),
        GroupAddMembers => empty(groups::add_members(logic, caller, decode(p)?).await?),
        GroupRemoveMembers => empty(groups::remove_members(logic, caller, decode(p)?).await?),
        GroupQuit => empty(groups::quit(logic, caller, decode(p)?).await?),
        GroupDismiss => empty(groups::dismiss(logic, caller, decode(p)?).await?),
        GroupTransferOwner => empty(groups::transfer_owner(logic, caller, decode(p)?).await?),
        GroupSetRole => empty(groups::set_role(logic, caller, decode(p)?).await?),
        GroupMuteMember => empty(groups::mute_member(logic, caller, decode(p)?).await?),
        GroupMuteAll => reply(groups::mute_all(logic, caller, decode(p)?).await?),
        RoomSend => empty(rooms::send(logic, caller, decode(p)?).await?),
        UserGet => reply(users::get(logic, decode(p)?).await?),
        UserUpdate => reply(users::update(logic, caller, decode(p)?).await?),
        UserSearch => reply(users::search(logic, decode(p)?).await?),
        Heartbeat | RoomJoin | RoomLeave | Reply | Push | RoomPush | Kicked => {
            return Err(LogicError::bad_request(format!(
                "{} is not a logic command",
                ty.name()
            )))
        }
    })
}

fn reply(msg: impl prost::Message) -> Outcome {
    (msg.encode_to_vec(), None)
}

fn empty(_: ()) -> Outcome {
    (Vec::new(), None)
}

fn decode<M: prost::Message + Default>(payload: Bytes) -> Result<M> {
    M::decode(payload).map_err(|e| LogicError::bad_request(format!("payload does not decode: {e}")))
}

fn error_reply(e: &LogicError) -> ConnReply {
    ConnReply {
        code: e.code().as_i32(),
        message: e.public_message(),
        payload: Bytes::new(),
        bind: None,
        retry_after_ms: e.retry_after().map_or(0, retry_after_ms),
    }
}

/// A wait in whole milliseconds for the wire, at least 1 so it is not "unsaid".
pub(crate) fn retry_after_ms(d: std::time::Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests;
