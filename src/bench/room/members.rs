//! The member side of `tern bench room`: one child process holding its
//! share of the room's connections.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, Notify};
use tokio::time::MissedTickBehavior;

use tern_client::Event;

use super::{GRACE, MAX_MESSAGES};
use crate::bench::{loopback, new_histogram, unix_micros, MAX_CONNECTIONS};

/// How often a joining process tells the parent how far it got.
const JOINED_EVERY: Duration = Duration::from_millis(250);

/// A member process: reads `<user_id> <device_id> <token>` lines up to `end`
/// on stdin, joins the room with each, counts ROOM_PUSH.
#[derive(Debug, Args)]
pub struct MembersArgs {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub room: String,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_MESSAGES))]
    pub messages: u32,
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=1800))]
    pub timeout_secs: u64,
}

/// What the member connections of one process saw.
struct Seen {
    deliveries: AtomicU64,
    complete: AtomicU64,
    closed: AtomicU64,
    first_us: AtomicU64,
    last_us: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    all_complete: Notify,
}

pub async fn members(a: MembersArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut creds = Vec::new();
    while let Some(line) = stdin.next_line().await? {
        if line == "end" {
            break;
        }
        if creds.len() >= MAX_CONNECTIONS as usize {
            bail!("more than {MAX_CONNECTIONS} members for one process");
        }
        let mut w = line.split_whitespace();
        let (Some(u), Some(d), Some(token)) = (w.next(), w.next(), w.next()) else {
            bail!("bad member line {line:?}");
        };
        creds.push((u.parse::<u64>()?, d.parse::<u64>()?, token.to_owned()));
    }
    let n = creds.len() as u64;
    let seen = Arc::new(Seen {
        deliveries: AtomicU64::new(0),
        complete: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        first_us: AtomicU64::new(u64::MAX),
        last_us: AtomicU64::new(0),
        latency: Mutex::new(new_histogram()),
        all_complete: Notify::new(),
    });
    let timeout = Duration::from_secs(a.timeout_secs);
    let room = a.room.as_str();
    let messages = a.messages;
    let joined = AtomicU64::new(0);
    let join = stream::iter(creds)
        .map(|(user_id, device_id, token)| {
            let seen = seen.clone();
            let joined = &joined;
            async move {
                let (client, events) = crate::bench::connect(addr).await?;
                client.sign_in(user_id, device_id, &token).await?;
                client.room_join(room).await?;
                let counter = count(events, room.to_owned(), messages, n, seen);
                tokio::spawn(counter);
                joined.fetch_add(1, Ordering::Relaxed);
                anyhow::Ok(client)
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>();
    let clients = tokio::time::timeout(timeout, telling_joined(join, &joined))
        .await
        .context("joining the room timed out")??;
    println!("ready {}", clients.len());

    // All messages are out once stdin closes; then wait a little for stragglers.
    let stop = async {
        let _ = stdin.next_line().await;
        tokio::time::sleep(GRACE).await;
    };
    tokio::select! {
        _ = seen.all_complete.notified() => {}
        _ = stop => {}
        _ = tokio::time::sleep(timeout) => {}
    }
    let latency = seen.latency.lock().expect("latency lock poisoned");
    for v in latency.iter_recorded() {
        println!("lat {} {}", v.value_iterated_to(), v.count_at_value());
    }
    let first = seen.first_us.load(Ordering::Relaxed);
    println!(
        "done {n} {} {} {} {} {}",
        seen.deliveries.load(Ordering::Relaxed),
        seen.complete.load(Ordering::Relaxed),
        seen.closed.load(Ordering::Relaxed),
        if first == u64::MAX { 0 } else { first },
        seen.last_us.load(Ordering::Relaxed),
    );
    drop(clients);
    Ok(())
}

/// Drives `join`, printing `joined <count>` every [`JOINED_EVERY`] so the
/// parent can show progress; in this task, so no such line follows `ready`.
async fn telling_joined<T>(join: impl Future<Output = T>, joined: &AtomicU64) -> T {
    tokio::pin!(join);
    let mut tick = tokio::time::interval(JOINED_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut join => return out,
            _ = tick.tick() => println!("joined {}", joined.load(Ordering::Relaxed)),
        }
    }
}

/// Counts one connection's ROOM_PUSH of `room` until it has `messages`.
async fn count(
    mut events: mpsc::Receiver<Event>,
    room: String,
    messages: u32,
    conns: u64,
    seen: Arc<Seen>,
) {
    let mut got = 0;
    while let Some(ev) = events.recv().await {
        match ev {
            Event::RoomPush(m) if m.room_id == room => {
                let now = unix_micros();
                seen.deliveries.fetch_add(1, Ordering::Relaxed);
                seen.first_us.fetch_min(now, Ordering::Relaxed);
                seen.last_us.fetch_max(now, Ordering::Relaxed);
                // The content ends with the parent's send time.
                let sent = std::str::from_utf8(&m.content)
                    .ok()
                    .and_then(|s| s.rsplit(' ').next())
                    .and_then(|w| w.parse::<u64>().ok());
                if let Some(sent) = sent {
                    seen.latency
                        .lock()
                        .expect("latency lock poisoned")
                        .saturating_record(now.saturating_sub(sent).max(1));
                }
                got += 1;
                if got == messages && seen.complete.fetch_add(1, Ordering::Relaxed) + 1 == conns {
                    seen.all_complete.notify_one();
                }
            }
            Event::Closed => {
                seen.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
    }
}
