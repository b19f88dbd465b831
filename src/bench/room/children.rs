//! The parent's side of the member processes: starting them, following
//! their joins until each is ready, and summing what they saw.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::RoomArgs;
use crate::bench::{new_histogram, Creds};

/// A running member process.
pub(super) struct Members {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Starts a member process and hands it `creds` on stdin.
pub(super) async fn spawn_members(a: &RoomArgs, creds: &[Creds]) -> anyhow::Result<Members> {
    let exe = std::env::current_exe().context("finding the tern executable")?;
    let mut child = Command::new(exe)
        .args(["bench", "room-members"])
        .args(crate::bench::transport_args())
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

/// Reads every child's `joined` lines until each says `ready`, keeping
/// `joined` at the sum of their latest counts; `within` bounds each line.
pub(super) async fn wait_ready(
    children: &mut [Members],
    joined: &AtomicU64,
    within: Duration,
) -> anyhow::Result<()> {
    let each = children.iter_mut().map(|c| async move {
        let mut mine = 0;
        loop {
            let line = next_line(&mut c.stdout, within).await?;
            let (tag, n) = line.split_once(' ').unwrap_or((&line, ""));
            let Ok(n) = n.parse::<u64>() else {
                bail!("member process said {line:?} instead of ready");
            };
            joined.fetch_add(n.saturating_sub(mine), Ordering::Relaxed);
            mine = mine.max(n);
            match tag {
                "joined" => {}
                "ready" => return anyhow::Ok(()),
                _ => bail!("member process said {line:?} instead of ready"),
            }
        }
    });
    futures::future::try_join_all(each).await?;
    Ok(())
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
pub(super) struct Totals {
    pub(super) conns: u64,
    pub(super) deliveries: u64,
    pub(super) complete: u64,
    pub(super) closed: u64,
    pub(super) last_us: u64,
    pub(super) latency: Histogram<u64>,
}

impl Totals {
    pub(super) fn new() -> Totals {
        Totals {
            conns: 0,
            deliveries: 0,
            complete: 0,
            closed: 0,
            last_us: 0,
            latency: new_histogram(),
        }
    }

    /// Tells the child all messages are out (EOF on its stdin), then adds
    /// its `lat` and `done` lines.
    pub(super) async fn collect(&mut self, c: Members, within: Duration) -> anyhow::Result<()> {
        let Members {
            mut child,
            stdin,
            mut stdout,
        } = c;
        drop(stdin);
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = next_line(&mut stdout, left).await?;
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
                    break;
                }
                _ => bail!("unexpected line from a member process: {line:?}"),
            }
        }
        let _ = tokio::time::timeout(super::GRACE, child.wait()).await;
        Ok(())
    }
}
