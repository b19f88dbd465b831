//! `tern bench room`: live-room fan-out from one connect node to many
//! members. The members live in child processes (`tern bench room-members`,
//! hidden) so that no process holds more than [`MAX_CONNECTIONS`] sockets;
//! the parent registers the devices, hands each child its share on stdin,
//! waits for every child's `ready`, pushes the messages through the admin
//! API, closes the children's stdin and collects one result from each.
//!
//! Child stdout protocol, one line each: `joined <connections so far>`
//! (zero or more while joining), `ready <connections>`, then after the
//! pushes `lat <micros> <count>` (zero or more) and
//! `done <connections> <deliveries> <complete> <closed> <first_us> <last_us>`.

mod children;
mod members;

pub use members::{members, MembersArgs};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use hdrhistogram::Histogram;

use tern_public::frame::valid_room_id;

use super::http::ApiConn;
use super::report::{phase, register_devices, Errors};
use super::MAX_CONNECTIONS;
use super::{
    loopback, new_histogram, percentiles, percentiles_json, run_prefix, secs, unix_micros,
};
use children::{spawn_members, wait_ready, Totals};

/// Most messages one run pushes. More than the server's per-connection
/// write queue (512 by default) back to back may close slow members; a run
/// reports such closed connections.
const MAX_MESSAGES: i64 = 1000;
/// How long a child keeps counting after the parent says all messages are out.
const GRACE: Duration = Duration::from_secs(5);
/// How long the parent waits for the server's online count to match.
const ONLINE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct RoomArgs {
    /// Server client address (loopback only); all members connect here.
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Server HTTP address (loopback only) for the admin API.
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub http: String,
    /// Bearer token of the admin API (<data-dir>/admin-token of `tern serve`).
    #[arg(long, env = "TERN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Room members, one connection (and device) each.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub members: u32,
    /// Member processes the connections are split over.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub processes: u32,
    /// Messages pushed to the room, one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=MAX_MESSAGES))]
    pub messages: u32,
    /// Pause between pushes; 0 pushes back to back (throughput), a pause
    /// longer than one fan-out shows the latency of an unloaded room.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub interval_ms: u64,
    /// Room id (1-64 of a-z A-Z 0-9 _ -).
    #[arg(long, default_value = "bench-room")]
    pub room: String,
    /// Devices per user (each costs a password hash to create).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub devices_per_user: u32,
    /// Bound on each phase: creating the devices, members joining, pushing,
    /// and deliveries arriving.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=1800))]
    pub timeout_secs: u64,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: RoomArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let http = loopback(&a.http)?;
    if !valid_room_id(&a.room) {
        bail!("--room must be 1-64 of a-z A-Z 0-9 _ -, not {:?}", a.room);
    }
    let share = a.members.div_ceil(a.processes);
    if share > MAX_CONNECTIONS {
        bail!("{share} members per process is over {MAX_CONNECTIONS}; raise --processes");
    }
    let timeout = Duration::from_secs(a.timeout_secs);
    if u64::from(a.messages) * a.interval_ms >= a.timeout_secs * 1000 {
        bail!("--messages x --interval-ms must be shorter than --timeout-secs");
    }

    let users = a.members.div_ceil(a.devices_per_user);
    eprintln!("creating {} devices ({users} users)…", a.members);
    let t = Instant::now();
    let prefix = run_prefix("r");
    let mut creds =
        register_devices(addr, &prefix, users, a.devices_per_user, timeout, a.json).await?;
    creds.truncate(a.members as usize);
    eprintln!("  done in {:.1} s", secs(t.elapsed()));

    eprintln!("starting the member processes…");
    let t = Instant::now();
    let mut children = Vec::new();
    for chunk in creds.chunks(share as usize) {
        children.push(spawn_members(&a, chunk).await?);
    }
    let joined = Arc::new(AtomicU64::new(0));
    let ready = wait_ready(&mut children, &joined, timeout);
    phase("joined", timeout, joined.clone(), a.json, ready).await?;
    eprintln!(
        "  {} members joined in {:.1} s",
        a.members,
        secs(t.elapsed())
    );

    let mut api = ApiConn::open(http, &a.admin_token).await?;
    let online = api
        .wait_room_online(&a.room, a.members.into(), ONLINE_WAIT)
        .await?;
    if online != u64::from(a.members) {
        eprintln!(
            "  note: the server reports {online} online after {ONLINE_WAIT:?}, not {}",
            a.members
        );
    }

    let accepted = Arc::new(AtomicU64::new(0));
    let pushing = push(&a, http, api, &accepted);
    let pushes = phase("pushed", timeout, accepted.clone(), a.json, pushing).await?;
    let processes = children.len();
    let mut total = Totals::new();
    for c in children {
        total.collect(c, timeout + GRACE * 2).await?;
    }

    let expected = u64::from(a.members) * pushes.accepted;
    let missed = expected.saturating_sub(total.deliveries);
    let incomplete = total.conns.saturating_sub(total.complete);
    let span = Duration::from_micros(total.last_us.saturating_sub(pushes.first_sent_us));
    let per_sec = total.deliveries as f64 / secs(span);
    let errors = &pushes.errors;
    if a.json {
        let report = serde_json::json!({
            "scenario": "room",
            "members": a.members,
            "member_processes": processes,
            "online_reported": online,
            "messages": a.messages,
            "accepted": pushes.accepted,
            "interval_ms": a.interval_ms,
            "pushed_in_secs": secs(pushes.took),
            "deliveries": total.deliveries,
            "expected_deliveries": expected,
            "missed": missed,
            "members_incomplete": incomplete,
            "connections_closed": total.closed,
            "deliveries_per_sec": per_sec,
            "first_push_to_last_delivery_secs": secs(span),
            "post_to_202": percentiles_json(&pushes.post),
            "post_to_room_push": percentiles_json(&total.latency),
            "errors": errors.json(),
        });
        println!("{report}");
    } else {
        println!("members:           {}", a.members);
        println!("member processes:  {processes}");
        println!("messages:          {}", a.messages);
        println!("pushed in:         {:.3} s", secs(pushes.took));
        println!("deliveries:        {} of {expected}", total.deliveries);
        if missed > 0 {
            println!(
                "missed:            {missed} ({incomplete} members incomplete, {} connections closed)",
                total.closed
            );
        }
        println!(
            "deliveries/s:      {per_sec:.0} (first push sent -> last delivery: {:.3} s)",
            secs(span)
        );
        println!("POST -> 202:       {}", percentiles(&pushes.post));
        println!("POST -> ROOM_PUSH: {}", percentiles(&total.latency));
        println!("errors:            {errors}");
    }
    if missed > 0 || !errors.is_empty() {
        bail!(
            "{missed} deliveries missed, {} pushes refused: {errors}",
            errors.total()
        );
    }
    Ok(())
}

/// What pushing the messages through the admin API did.
struct Pushes {
    /// Messages the server took (202).
    accepted: u64,
    /// Refusals by status, and failed exchanges.
    errors: Errors,
    /// POST -> 202.
    post: Histogram<u64>,
    first_sent_us: u64,
    took: Duration,
}

/// POSTs the messages one after another; a refused POST is counted, a
/// failed exchange is counted and the connection opened again.
async fn push(
    a: &RoomArgs,
    http: SocketAddr,
    mut api: ApiConn,
    accepted: &AtomicU64,
) -> anyhow::Result<Pushes> {
    let path = format!("/api/v1/rooms/{}/messages", a.room);
    let mut p = Pushes {
        accepted: 0,
        errors: Errors::default(),
        post: new_histogram(),
        first_sent_us: unix_micros(),
        took: Duration::ZERO,
    };
    for n in 0..a.messages {
        // The children measure push latency from this timestamp.
        let body = format!(
            r#"{{"content_type":1,"content":"bench {n} {}"}}"#,
            unix_micros()
        );
        let t = Instant::now();
        match api.post_json(&path, body).await {
            Ok((hyper::StatusCode::ACCEPTED, _)) => {
                p.post
                    .saturating_record(t.elapsed().as_micros().max(1) as u64);
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, _)) => p.errors.status(status),
            Err(e) => {
                p.errors.add(e.to_string());
                api = ApiConn::open(http, &a.admin_token).await?;
            }
        }
        if a.interval_ms > 0 && n + 1 < a.messages {
            tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
        }
    }
    p.accepted = accepted.load(Ordering::Relaxed);
    p.took = Duration::from_micros(unix_micros().saturating_sub(p.first_sent_us));
    Ok(p)
}
