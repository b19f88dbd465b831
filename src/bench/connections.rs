//! `tern bench connections`: idle signed-in connections and what they cost
//! the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};

use super::report::{phase, register_devices, stop, Errors};
use super::{loopback, rss_bytes, run_prefix, secs, MAX_CONNECTIONS};

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// Server client address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=MAX_CONNECTIONS as i64))]
    pub count: u32,
    /// Devices per user (each connection is its own device).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub devices_per_user: u32,
    /// Pid of the server process whose RSS is measured.
    #[arg(long)]
    pub server_pid: u32,
    /// How long to hold the connections open after the last one signed in.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub hold_secs: u64,
    /// Bound on each phase: creating the devices, and connecting them.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub timeout_secs: u64,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: ConnectionsArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let timeout = Duration::from_secs(a.timeout_secs);
    let users = a.count.div_ceil(a.devices_per_user);
    eprintln!(
        "creating {} devices ({users} users; one password hash each)…",
        a.count
    );
    let t = Instant::now();
    let mut creds = register_devices(
        addr,
        &run_prefix("c"),
        users,
        a.devices_per_user,
        timeout,
        a.json,
    )
    .await?;
    creds.truncate(a.count as usize);
    eprintln!("  done in {:.1} s", secs(t.elapsed()));

    let before = rss_bytes(a.server_pid)?;
    let t = Instant::now();
    let signed_in = Arc::new(AtomicU64::new(0));
    // A socket that does not open aborts the run; a refused sign-in is
    // counted by its code.
    let open = stream::iter(creds)
        .map(|c| {
            let signed_in = signed_in.clone();
            async move {
                let (client, events) = crate::bench::connect(addr).await?;
                let signed = client.sign_in(c.user_id, c.device_id, &c.token).await;
                if signed.is_ok() {
                    signed_in.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(signed.map(|_| (client, events)))
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>();
    let timed = async { anyhow::Ok((open.await?, t.elapsed())) };
    let (outcomes, open_time) =
        phase("signed in", timeout, signed_in.clone(), a.json, timed).await?;
    let mut errors = Errors::default();
    let mut clients = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(client) => clients.push(client),
            Err(e) => errors.client(&e),
        }
    }
    // Let the server finish whatever the sign-ins started before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes(a.server_pid)?;
    let hold = Duration::from_secs(a.hold_secs);
    let bar = super::progress("holding", hold, signed_in, a.json);
    tokio::time::sleep(hold).await;
    stop(bar).await;
    let after_hold = rss_bytes(a.server_pid)?;

    let n = clients.len() as f64;
    let rate = n / secs(open_time);
    let per_conn = after.saturating_sub(before) as f64 / n.max(1.0);
    if a.json {
        let report = serde_json::json!({
            "scenario": "connections",
            "connections": clients.len(),
            "asked": a.count,
            "devices_per_user": a.devices_per_user,
            "connect_secs": secs(open_time),
            "connect_per_sec": rate,
            "hold_secs": a.hold_secs,
            "rss_before_bytes": before,
            "rss_after_bytes": after,
            "rss_after_hold_bytes": after_hold,
            "rss_per_connection_bytes": per_conn,
            "errors": errors.json(),
        });
        println!("{report}");
    } else {
        let mib = |b: u64| b as f64 / 1048576.0;
        println!("connections:          {}", clients.len());
        println!(
            "connect + sign-in:    {rate:.0} /s ({:.2} s)",
            secs(open_time)
        );
        println!("server RSS before:    {:.1} MiB", mib(before));
        println!(
            "server RSS after:     {:.1} MiB (after holding {} s: {:.1} MiB)",
            mib(after),
            a.hold_secs,
            mib(after_hold)
        );
        println!("RSS per connection:   {:.1} KiB", per_conn / 1024.0);
        println!("errors:               {errors}");
    }
    drop(clients);
    if !errors.is_empty() {
        anyhow::bail!("{} sign-ins failed: {errors}", errors.total());
    }
    Ok(())
}
