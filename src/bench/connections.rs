//! `tern bench connections`: idle signed-in connections and what they cost
//! the server.

use std::time::{Duration, Instant};

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};

use tern_client::Client;

use super::{loopback, register_users, rss_bytes, run_prefix, secs, MAX_CONNECTIONS};

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
}

pub async fn run(a: ConnectionsArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let users = a.count.div_ceil(a.devices_per_user);
    eprintln!(
        "creating {} devices ({users} users; one password hash each)…",
        a.count
    );
    let t = Instant::now();
    let creds: Vec<_> = register_users(addr, &run_prefix("c"), users, a.devices_per_user, 16)
        .await?
        .into_iter()
        .flatten()
        .take(a.count as usize)
        .collect();
    eprintln!("  done in {:.1} s", secs(t.elapsed()));

    let before = rss_bytes(a.server_pid)?;
    let t = Instant::now();
    let clients: Vec<_> = stream::iter(creds)
        .map(|c| async move {
            let (client, events) = Client::connect(addr).await?;
            client.sign_in(c.user_id, c.device_id, &c.token).await?;
            anyhow::Ok((client, events))
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let open_time = t.elapsed();
    // Let the server finish whatever the sign-ins started before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes(a.server_pid)?;
    tokio::time::sleep(Duration::from_secs(a.hold_secs)).await;
    let after_hold = rss_bytes(a.server_pid)?;

    let n = clients.len() as f64;
    let grown = after.saturating_sub(before) as f64;
    println!("connections:          {}", clients.len());
    println!(
        "connect + sign-in:    {:.0} /s ({:.2} s)",
        n / secs(open_time),
        secs(open_time)
    );
    println!("server RSS before:    {:.1} MiB", before as f64 / 1048576.0);
    println!(
        "server RSS after:     {:.1} MiB (after holding {} s: {:.1} MiB)",
        after as f64 / 1048576.0,
        a.hold_secs,
        after_hold as f64 / 1048576.0
    );
    println!("RSS per connection:   {:.1} KiB", grown / n / 1024.0);
    drop(clients);
    Ok(())
}
