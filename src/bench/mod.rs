//! `tern bench`: load generators that measure what users of a chat server
//! care about. Targets must be loopback addresses; every run is bounded in
//! count and time.

mod connections;
mod conversations;
mod direct;
mod group;
mod http;
mod report;
mod room;
mod sync;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;

use tern_client::{Client, TlsConfig};

/// Most connections one bench process opens (the per-process file limit is ~20,000).
pub const MAX_CONNECTIONS: u32 = 19_000;
const PASSWORD: &str = "bench password";

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Connect every client over TLS, trusting only the CA certificate(s)
    /// in this PEM file (e.g. the server's self-signed certificate).
    #[arg(long, global = true, value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry.
    #[arg(long, global = true, default_value = "localhost")]
    pub tls_server_name: String,
}

/// How this bench process and its children reach the server: plain TCP,
/// or TLS as --tls-ca says. Set once at start, before any connection.
struct Transport {
    tls: Option<TlsConfig>,
    /// The flags that give a child process the same transport.
    child_args: Vec<std::ffi::OsString>,
}

static TRANSPORT: OnceLock<Transport> = OnceLock::new();

/// Connects one bench client, over TLS when the run asked for it.
pub(crate) async fn connect(
    addr: SocketAddr,
) -> Result<(Client, tokio::sync::mpsc::Receiver<tern_client::Event>), tern_client::ClientError> {
    let tls = TRANSPORT.get().and_then(|t| t.tls.as_ref());
    Client::connect_with(addr, tls).await
}

/// The flags a child process (worker, room members) needs to connect the
/// same way as this one.
pub(crate) fn transport_args() -> Vec<std::ffi::OsString> {
    TRANSPORT
        .get()
        .map(|t| t.child_args.clone())
        .unwrap_or_default()
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Opens N idle signed-in connections; reports the connect rate and the
    /// server's RSS growth per connection.
    Connections(connections::ConnectionsArgs),
    /// One-to-one messages: every user sends to random others as fast as the
    /// server answers; reports stored/s, delivered/s and latencies, and checks
    /// that every device saw its list exactly once, in order.
    Direct(direct::DirectArgs),
    /// One message to groups of several sizes: time per message and rows written.
    Group(group::GroupArgs),
    /// Live-room fan-out: one room whose members are spread over child
    /// processes, messages pushed through the admin API; reports
    /// deliveries/s and push latency.
    Room(room::RoomArgs),
    /// Requests per second of one admin API route over keep-alive connections.
    Http(http::HttpArgs),
    /// Catch-up of a long offline list: one SYNC page at the start, middle
    /// and end (must cost the same), and the whole list, each seq once.
    Sync(sync::SyncArgs),
    /// A chat app's first screen: CONV_LIST over many conversations,
    /// CONV_HISTORY at both ends of a long conversation, MARK_READ per second.
    Conversations(conversations::ConversationsArgs),
    /// One worker process of `bench direct` (started by it, not by hand).
    #[command(hide = true)]
    DirectWorker(direct::WorkerArgs),
    /// One member process of `bench room` (started by it, not by hand).
    #[command(hide = true)]
    RoomMembers(room::MembersArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let transport = match &args.tls_ca {
        None => Transport {
            tls: None,
            child_args: Vec::new(),
        },
        Some(ca) => Transport {
            tls: Some(TlsConfig::with_ca_file(&args.tls_server_name, ca)?),
            child_args: vec![
                "--tls-ca".into(),
                ca.into(),
                "--tls-server-name".into(),
                args.tls_server_name.clone().into(),
            ],
        },
    };
    let _ = TRANSPORT.set(transport);
    match args.scenario {
        Scenario::Connections(a) => connections::run(a).await,
        Scenario::Direct(a) => direct::run(a).await,
        Scenario::Group(a) => group::run(a).await,
        Scenario::Room(a) => room::run(a).await,
        Scenario::Http(a) => http::run(a).await,
        Scenario::Sync(a) => sync::run(a).await,
        Scenario::Conversations(a) => conversations::run(a).await,
        Scenario::DirectWorker(a) => direct::worker(a).await,
        Scenario::RoomMembers(a) => room::members(a).await,
    }
}

/// Refuses anything but loopback targets.
pub(crate) fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("{addr:?} is not an ip:port"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "bench targets must be loopback addresses (127.0.0.0/8, ::1), not {}",
            addr.ip()
        );
    }
    Ok(addr)
}

/// A comma-separated list of loopback addresses (e.g. a cluster's
/// connect nodes).
pub(crate) fn loopback_list(addrs: &str) -> anyhow::Result<Vec<SocketAddr>> {
    addrs.split(',').map(|s| loopback(s.trim())).collect()
}

/// What a device keeps to sign in again.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    pub user_id: u64,
    pub device_id: u64,
    pub token: String,
}

/// How long creating a scenario's users may take (argon2 hashes at about
/// 90 a second on 2 cores: 60,000 users take about 11 minutes).
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(1800);

/// A unique prefix so repeated runs against one server do not collide.
pub(crate) fn run_prefix(tag: &str) -> String {
    format!("b{}{tag}", rand::random::<u32>() % 1_000_000)
}

/// Resident set size of a process, from /proc.
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is --server-pid right?)"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS line")?;
    Ok(kb * 1024)
}

/// CPU time (user + system) the processes `pids` have used so far, from
/// /proc/PID/stat; summed, so a cluster's processes (connect, logic,
/// MariaDB, Redis, NATS) count as one server.
pub(crate) fn cpu_time(pids: &[u32]) -> anyhow::Result<Duration> {
    // /proc reports in USER_HZ, 100 on every Linux architecture tern runs on.
    const TICKS_PER_SEC: u64 = 100;
    let mut ticks = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat (is --server-pid right?)"))?;
        // Fields after the command name, which is in parentheses and may
        // itself hold spaces: state is field 3, utime 14, stime 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("malformed /proc/PID/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> anyhow::Result<u64> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .context("malformed /proc/PID/stat")
        };
        ticks += field(14)? + field(15)?;
    }
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in milliseconds, for `--json`.
pub(crate) fn percentiles_json(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |v: u64| v as f64 / 1000.0;
    serde_json::json!({
        "n": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// A bar on stderr that counts `done` against a time budget while a phase
/// runs; hidden when stderr is not a terminal or output is JSON.
pub(crate) fn progress(
    label: &'static str,
    length: Duration,
    done: Arc<std::sync::atomic::AtomicU64>,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(length.as_millis() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    let start = std::time::Instant::now();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while start.elapsed() < length {
            tick.tick().await;
            bar.set_position(start.elapsed().as_millis() as u64);
            bar.set_message(format!(
                "{}",
                done.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        bar.finish_and_clear();
    })
}

pub(crate) fn percentiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (n={})",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

/// Microseconds since the Unix epoch: send times written into message
/// content, comparable across the bench's processes.
pub(crate) fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}
