//! One worker process of `tern bench direct` (started by it, not by hand):
//! holds its share of the users' connections, so a run can pass one
//! process's file limit, and sends for them.
//!
//! Protocol on stdin/stdout, one line each:
//! - in: `peers <id> <id>...` (every user of the run), then
//!   `<user_id> <device_id> <token> <addr> [<friend>,<friend>...]` per own
//!   user, then `end`; a user sends to its friends, or to any peer if the
//!   line lists none;
//! - out: `ready` once every own user is signed in;
//! - in: `go` (the clock starts);
//! - out: `progress <stored>` now and then, then `result <json>` and exit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::load::{self, UserResult};
use crate::bench::report::Errors;
use crate::bench::{loopback, new_histogram, MAX_CONNECTIONS};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_secs: u64,
    /// Sends per second of each user; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0.0)]
    pub rate_per_user: f64,
}

/// What a worker reports: its users' results merged, plus what it stored
/// for whom, for the parent's check of every list.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerResult {
    pub sent: u64,
    pub pushes: u64,
    pub errors: Errors,
    /// (receiver, client_msg_id) of every send answered OK.
    pub stored_to: Vec<(u64, String)>,
    pub reply_latency: Vec<(u64, u64)>,
    pub push_latency: Vec<(u64, u64)>,
}

impl WorkerResult {
    fn merge(users: Vec<UserResult>) -> WorkerResult {
        let mut reply = new_histogram();
        let mut push = new_histogram();
        let mut out = WorkerResult {
            sent: 0,
            pushes: 0,
            errors: Errors::default(),
            stored_to: Vec::new(),
            reply_latency: Vec::new(),
            push_latency: Vec::new(),
        };
        for u in users {
            out.sent += u.sent;
            out.pushes += u.pushes;
            out.stored_to.extend(u.stored_to);
            out.errors.merge(&u.errors);
            // Both histograms have the same bounds, so adding cannot fail.
            let _ = reply.add(&u.reply_latency);
            let _ = push.add(&u.push_latency);
        }
        out.reply_latency = counts(&reply);
        out.push_latency = counts(&push);
        out
    }
}

/// A histogram as (value, count) pairs, to cross a process boundary.
fn counts(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The histogram a worker sent as [`counts`].
pub fn histogram(counts: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(value, n) in counts {
        h.saturating_record_n(value, n);
    }
    h
}

pub async fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    if !(a.rate_per_user.is_finite() && a.rate_per_user >= 0.0) {
        bail!("--rate-per-user must be a number >= 0");
    }
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let first = stdin.next_line().await?.context("no peers line")?;
    let peers: Vec<u64> = first
        .strip_prefix("peers ")
        .context("the first line must list the peers")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("a peer id is not a number")?;
    let peers = Arc::new(peers);
    let mut users = Vec::new();
    while let Some(line) = stdin.next_line().await? {
        if line == "end" {
            break;
        }
        if users.len() >= MAX_CONNECTIONS as usize {
            bail!("more than {MAX_CONNECTIONS} users for one worker");
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let (&[u, d, token, addr], friends) = w.split_at(4.min(w.len())) else {
            bail!("bad user line {line:?}");
        };
        let targets = match friends {
            [] => peers.clone(),
            [list] => Arc::new(
                list.split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("a friend id is not a number")?,
            ),
            _ => bail!("bad user line {line:?}"),
        };
        let addr = loopback(addr)?;
        users.push((
            u.parse::<u64>()?,
            d.parse::<u64>()?,
            token.to_owned(),
            addr,
            targets,
        ));
    }

    let clients: Vec<_> = stream::iter(users)
        .map(|(user_id, device_id, token, addr, targets)| async move {
            let (client, events) = crate::bench::connect(addr).await?;
            client.sign_in(user_id, device_id, &token).await?;
            anyhow::Ok((user_id, targets, Arc::new(client), events))
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    match stdin.next_line().await? {
        Some(line) if line == "go" => {}
        other => bail!("expected go, got {other:?}"),
    }

    let until = Instant::now() + Duration::from_secs(a.duration_secs);
    let interval = (a.rate_per_user > 0.0).then(|| Duration::from_secs_f64(1.0 / a.rate_per_user));
    let stored = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(me, targets, client, events)| {
            let send = load::Send {
                me,
                targets,
                until,
                interval,
                stored: stored.clone(),
            };
            tokio::spawn(load::user(send, client, events))
        })
        .collect();
    let report = tokio::spawn({
        let stored = stored.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            let mut out = tokio::io::stdout();
            while Instant::now() < until {
                tick.tick().await;
                let line = format!("progress {}\n", stored.load(Ordering::Relaxed));
                if out.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                let _ = out.flush().await;
            }
        }
    });
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    // The users finish after `until`, so the reporter has stopped writing.
    report.await?;
    let result = serde_json::to_string(&WorkerResult::merge(results))?;
    stdout
        .write_all(format!("result {result}\n").as_bytes())
        .await?;
    stdout.flush().await?;
    Ok(())
}
