//! `tern bench room`: live-room fan-out from one connect node to many
//! members. The members live in child processes (`tern bench room-members`,
//! hidden) so that no process holds more than [`MAX_CONNECTIONS`] sockets;
//! the parent registers the devices, hands each child its share on stdin,
//! waits for every child's `ready`, pushes the messages through the admin
//! API, closes the children's stdin and collects one result from each.
//!
//! Child stdout protocol, one line each: `ready <connections>`, then after
//! the pushes `lat <micros> <count>` (zero or more) and
//! `done <connections> <deliveries> <complete> <closed> <first_us> <last_us>`.

mod members;

pub use members::{members, MembersArgs};

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use tern_public::frame::valid_room_id;

use super::http::ApiConn;
use super::{loopback, new_histogram, percentiles, register_users, run_prefix, secs};
use super::{Creds, MAX_CONNECTIONS};

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
    /// Bound on each phase: members joining, and deliveries arriving.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=1800))]
    pub timeout_secs: u64,
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
    let creds: Vec<Creds> = register_users(addr, &run_prefix("r"), users, a.devices_per_user, 16)
        .await?
        .into_iter()
        .flatten()
        .take(a.members as usize)
        .collect();
    eprintln!("  done in {:.1} s", secs(t.elapsed()));

    eprintln!("starting the member processes…");
    let t = Instant::now();
    let mut children = Vec::new();
    for chunk in creds.chunks(share as usize) {
        children.push(spawn_members(&a, chunk).await?);
    }
    for c in &mut children {
        let line = next_line(&mut c.stdout, timeout).await?;
        if !line.starts_with("ready ") {
            bail!("member process said {line:?} instead of ready");
        }
    }
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

    let path = format!("/api/v1/rooms/{}/messages", a.room);
    let mut post = new_histogram();
    let first_sent_us = unix_micros();
    for n in 0..a.messages {
        // The children measure push latency from this timestamp.
        let body = format!(
            r#"{{"content_type":1,"content":"bench {n} {}"}}"#,
            unix_micros()
        );
        let t = Instant::now();
        let (status, answer) = api.post_json(&path, body).await?;
        post.saturating_record(t.elapsed().as_micros().max(1) as u64);
        if status != hyper::StatusCode::ACCEPTED {
            bail!("POST {path}: {status} {}", String::from_utf8_lossy(&answer));
        }
        if a.interval_ms > 0 && n + 1 < a.messages {
            tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
        }
    }
    let pushed_in = Duration::from_micros(unix_micros().saturating_sub(first_sent_us));

    let processes = children.len();
    let mut total = Totals {
        conns: 0,
        deliveries: 0,
        complete: 0,
        closed: 0,
        last_us: 0,
        latency: new_histogram(),
    };
    for mut c in children {
        // EOF on stdin: all messages are out, stop after the grace period.
        drop(c.stdin);
        total.add(&mut c.stdout, timeout + GRACE * 2).await?;
        let _ = tokio::time::timeout(GRACE, c.child.wait()).await;
    }

    let expected = u64::from(a.members) * u64::from(a.messages);
    let span = Duration::from_micros(total.last_us.saturating_sub(first_sent_us));
    println!("members:           {}", a.members);
    println!("member processes:  {processes}");
    println!("messages:          {}", a.messages);
    println!("pushed in:         {:.3} s", secs(pushed_in));
    println!("deliveries:        {} of {expected}", total.deliveries);
    if total.deliveries < expected {
        println!(
            "missed:            {} ({} members incomplete, {} connections closed)",
            expected - total.deliveries,
            total.conns.saturating_sub(total.complete),
            total.closed
        );
    }
    println!(
        "deliveries/s:      {:.0} (first push sent -> last delivery: {:.3} s)",
        total.deliveries as f64 / secs(span),
        secs(span)
    );
    println!("POST -> 202:       {}", percentiles(&post));
    println!("POST -> ROOM_PUSH: {}", percentiles(&total.latency));
    if total.deliveries < expected {
        bail!("{} deliveries missed", expected - total.deliveries);
    }
    Ok(())
}

/// A running member process.
struct Members {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

async fn spawn_members(a: &RoomArgs, creds: &[Creds]) -> anyhow::Result<Members> {
    let exe = std::env::current_exe().context("finding the tern executable")?;
    let mut child = Command::new(exe)
        .args(["bench", "room-members"])
        .args(["--addr", &a.addr])
        .args(["--room", &a.room])
        .args(["--messages", &a.messages.to_string()])
        .args(["--timeout-secs", &a.timeout_secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a member process")?;
    let mut stdin = child.stdin.take().context("member stdin")?;
    let stdout = child.stdout.take().context("member stdout")?;
    let mut text = String::new();
    for c in creds {
        text.push_str(&format!("{} {} {}\n", c.user_id, c.device_id, c.token));
    }
    text.push_str("end\n");
    stdin.write_all(text.as_bytes()).await?;
    stdin.flush().await?;
    Ok(Members {
        child,
        stdin,
        stdout: BufReader::new(stdout).lines(),
    })
}

async fn next_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    within: Duration,
) -> anyhow::Result<String> {
    tokio::time::timeout(within, lines.next_line())
        .await
        .with_context(|| format!("no word from a member process within {within:?}"))??
        .context("a member process exited early")
}

/// The children's results, summed.
struct Totals {
    conns: u64,
    deliveries: u64,
    complete: u64,
    closed: u64,
    last_us: u64,
    latency: Histogram<u64>,
}

impl Totals {
    async fn add(
        &mut self,
        lines: &mut Lines<BufReader<ChildStdout>>,
        within: Duration,
    ) -> anyhow::Result<()> {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = next_line(lines, left).await?;
            let mut words = line.split_whitespace();
            let tag = words.next();
            let nums: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
            match (tag, nums.as_slice()) {
                (Some("lat"), &[us, count]) => self.latency.saturating_record_n(us, count),
                (Some("done"), &[conns, deliveries, complete, closed, _first, last]) => {
                    self.conns += conns;
                    self.deliveries += deliveries;
                    self.complete += complete;
                    self.closed += closed;
                    self.last_us = self.last_us.max(last);
                    return Ok(());
                }
                _ => bail!("unexpected line from a member process: {line:?}"),
            }
        }
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
