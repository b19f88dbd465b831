//! `tern bench group`: messages to groups of several sizes with every
//! member online: send→reply (the store writes one list row per member),
//! send→push at the members, and deliveries per second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use tern_client::proto::{ConvType, GroupCreateRequest, SendRequest};
use tern_client::{Client, Code, Event};

use super::report::{register_devices, Errors};
use super::{
    loopback_list, new_histogram, percentiles, percentiles_json, run_prefix, secs, Creds,
    SETUP_TIMEOUT,
};

#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Client address(es) of the server, comma separated (loopback only):
    /// the sender uses the first, members take them in turn.
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Group sizes to measure, members including the sender.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub sizes: Vec<u32>,
    /// Messages sent to each group, one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub messages: u32,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Pushes of one group's messages seen by its members.
struct Seen {
    deliveries: AtomicU64,
    last_us: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

pub async fn run(a: GroupArgs) -> anyhow::Result<()> {
    let addrs = loopback_list(&a.addr)?;
    let addr = addrs[0];
    let largest = a.sizes.iter().copied().max().unwrap_or(0).clamp(2, 19_000);
    eprintln!("registering {largest} users…");
    let t = Instant::now();
    let users: Vec<Creds> =
        register_devices(addr, &run_prefix("g"), largest, 1, SETUP_TIMEOUT, a.json).await?;
    eprintln!("  done in {:.1} s", secs(t.elapsed()));
    let sender = &users[0];
    let (client, _events) = crate::bench::connect(addr).await?;
    client
        .sign_in(sender.user_id, sender.device_id, &sender.token)
        .await?;
    let epoch = Instant::now();

    let mut reports = Vec::new();
    let (mut all_errors, mut all_missing) = (Errors::default(), 0);
    if !a.json {
        println!("size  rows/msg  send->reply p50  send->push p50 / p99  deliveries/s  missing");
    }
    // users[1..friends] are the sender's friends (members always take a
    // prefix of the users).
    let mut friends = 1;
    for &size in &a.sizes {
        let size = size.clamp(2, largest) as usize;
        let members = &users[1..size];
        let req = GroupCreateRequest {
            name: format!("bench {size}"),
            member_ids: members.iter().map(|c| c.user_id).collect(),
            ..Default::default()
        };
        let group = match client.group_create(&req).await {
            // A friends-only server lets a user group only friends.
            Err(e) if e.code() == Some(Code::NotFriends) => {
                eprintln!("  the server groups only friends: befriending the members…");
                befriend(
                    &client,
                    sender.user_id,
                    &users[friends.min(size)..size],
                    &addrs,
                )
                .await?;
                friends = friends.max(size);
                client.group_create(&req).await?
            }
            made => made?,
        };
        let seen = Arc::new(Seen {
            deliveries: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
        });
        // Every member online, counting this group's chat pushes.
        let listeners: Vec<_> = stream::iter(members.iter().cloned().enumerate())
            .map(|(i, c)| {
                let seen = seen.clone();
                let addr = addrs[(i + 1) % addrs.len()];
                async move {
                    let (member, events) = crate::bench::connect(addr).await?;
                    member.sign_in(c.user_id, c.device_id, &c.token).await?;
                    let task = tokio::spawn(listen(events, group.group_id, epoch, seen));
                    anyhow::Ok((member, task))
                }
            })
            .buffer_unordered(64)
            .try_collect()
            .await?;

        let mut reply = new_histogram();
        let mut errors = Errors::default();
        let mut sent = 0u64;
        let started = epoch.elapsed().as_micros() as u64;
        for n in 0..a.messages {
            let mut content = (epoch.elapsed().as_micros() as u64).to_be_bytes().to_vec();
            content.extend_from_slice(b" bench group message");
            let send = SendRequest {
                conv_type: ConvType::Group as i32,
                conv_id: group.group_id,
                content_type: tern_client::TEXT,
                content: Bytes::from(content),
                client_msg_id: format!("{size}-{n}"),
                mentions: vec![],
            };
            let t = Instant::now();
            match client.send(&send).await {
                Ok(_) => {
                    sent += 1;
                    reply.saturating_record(t.elapsed().as_micros() as u64);
                }
                Err(e) => errors.client(&e),
            }
        }
        let expected = sent * members.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered = seen.deliveries.load(Ordering::Relaxed);
        let window = seen
            .last_us
            .load(Ordering::Relaxed)
            .saturating_sub(started)
            .max(1);
        let per_sec = delivered as f64 / (window as f64 / 1e6);
        let push = seen.latency.lock().await.clone();
        let missing = expected.saturating_sub(delivered);
        let rows = 1 + size;
        if a.json {
            reports.push(serde_json::json!({
                "size": size,
                "messages": a.messages,
                "sent": sent,
                "rows_per_message": rows,
                "send_to_reply": percentiles_json(&reply),
                "send_to_push": percentiles_json(&push),
                "deliveries": delivered,
                "deliveries_per_sec": per_sec,
                "missing": missing,
                "errors": errors.json(),
            }));
        } else {
            let ms = |h: &Histogram<u64>, q| h.value_at_quantile(q) as f64 / 1000.0;
            println!(
                "{size:>4}  {rows:>8}  {:>12.2} ms  {:>7.2} / {:>7.2} ms  {per_sec:>12.0}  {missing:>7}",
                ms(&reply, 0.5),
                ms(&push, 0.5),
                ms(&push, 0.99)
            );
            eprintln!("  {size}: send -> push {}", percentiles(&push));
            if !errors.is_empty() {
                eprintln!("  {size}: errors {errors}");
            }
        }
        all_errors.merge(&errors);
        all_missing += missing;
        for (member, task) in listeners {
            task.abort();
            drop(member);
        }
        if missing > 0 {
            eprintln!("  {size}: {missing} of {expected} pushes never arrived");
        }
    }
    if a.json {
        let report = serde_json::json!({
            "scenario": "group",
            "groups": reports,
            "errors": all_errors.json(),
        });
        println!("{report}");
    } else {
        println!("errors: {all_errors}");
    }
    if all_missing > 0 || !all_errors.is_empty() {
        anyhow::bail!(
            "{all_missing} pushes never arrived, {} sends failed: {all_errors}",
            all_errors.total()
        );
    }
    Ok(())
}

/// Makes `users` friends of the sender, signed in on `client`: its
/// requests first, then each user accepts on its own connection.
async fn befriend(
    client: &Client,
    sender: u64,
    users: &[Creds],
    addrs: &[SocketAddr],
) -> anyhow::Result<()> {
    stream::iter(users)
        .map(|c| client.friend_request(c.user_id, "bench"))
        .buffer_unordered(32)
        .try_collect::<()>()
        .await?;
    stream::iter(users.iter().enumerate())
        .map(|(i, c)| async move {
            let (member, _events) = crate::bench::connect(addrs[(i + 1) % addrs.len()]).await?;
            member.sign_in(c.user_id, c.device_id, &c.token).await?;
            member.friend_accept(sender).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}

async fn listen(
    mut events: tokio::sync::mpsc::Receiver<Event>,
    group_id: u64,
    epoch: Instant,
    seen: Arc<Seen>,
) {
    while let Some(ev) = events.recv().await {
        let Event::Push(m) = ev else { continue };
        if m.conv_id != group_id || m.content_type != 1 || m.content.len() < 8 {
            continue;
        }
        let now = epoch.elapsed().as_micros() as u64;
        let sent = u64::from_be_bytes(m.content[..8].try_into().expect("8 bytes"));
        seen.latency
            .lock()
            .await
            .saturating_record(now.saturating_sub(sent).max(1));
        seen.deliveries.fetch_add(1, Ordering::Relaxed);
        seen.last_us.fetch_max(now, Ordering::Relaxed);
    }
}
