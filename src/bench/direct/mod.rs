//! `tern bench direct`: one-to-one messages under load. The users'
//! connections live in worker processes ([`worker`]), so a run can hold more
//! than one process's file limit; this process registers the users, starts
//! the workers together, merges what they saw and then reads every user's
//! list back to check that each stored message is there exactly once.

mod friends;
mod load;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::report::{register_devices, stop, Errors};
use super::{
    loopback_list, new_histogram, percentiles, percentiles_json, run_prefix, secs, Creds,
    MAX_CONNECTIONS, SETUP_TIMEOUT,
};
pub use worker::{worker, WorkerArgs};

/// Most users of one run (registration alone takes minutes at this size).
const MAX_USERS: u32 = 60_000;

#[derive(Debug, Args)]
pub struct DirectArgs {
    /// Client address(es) of the server, comma separated (loopback only);
    /// users are spread over them, e.g. the connect nodes of a cluster.
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Users, one connection each; each sends to random friends.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=MAX_USERS as i64))]
    pub users: u32,
    /// How long to send.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_secs: u64,
    /// Target messages per second over all users; 0 sends as fast as the
    /// server answers (each user waits for one reply before the next send).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub rate: u32,
    /// Friends per user, rounded up to even: each user befriends its
    /// neighbours on a ring of the run's users before sending, then sends
    /// to random friends. 0 sends to random users
    /// of the run and needs a server started with `--send-policy open`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub friends: u32,
    /// Worker processes holding the connections; raised to what the users
    /// need at 19,000 connections per process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub workers: u32,
    /// Pids of the server's processes, comma separated (standalone: one;
    /// a cluster: every node, MariaDB, Redis and NATS): the run then
    /// reports their CPU time per stored message over the sending window.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: DirectArgs) -> anyhow::Result<()> {
    let addrs = loopback_list(&a.addr)?;
    let workers = a.workers.max(a.users.div_ceil(MAX_CONNECTIONS));
    eprintln!("registering {} users…", a.users);
    let creds = register_devices(
        addrs[0],
        &run_prefix("d"),
        a.users,
        1,
        SETUP_TIMEOUT,
        a.json,
    )
    .await?;
    // Each user's connection goes to the next address in turn.
    let users: Vec<(Creds, SocketAddr)> = creds
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, addrs[i % addrs.len()]))
        .collect();
    let peers: Vec<u64> = users.iter().map(|(c, _)| c.user_id).collect();
    let friends = if a.friends == 0 {
        vec![Vec::new(); users.len()]
    } else {
        eprintln!("making friends ({} per user)…", a.friends);
        friends::ring(&users, a.friends.div_ceil(2) as usize).await?
    };
    let friends_per_user =
        friends.iter().map(Vec::len).sum::<usize>() as f64 / friends.len() as f64;
    let rate_per_user = f64::from(a.rate) / f64::from(a.users);

    eprintln!("signing in through {workers} worker process(es)…");
    let share = users.len().div_ceil(workers as usize);
    let mut procs = Vec::new();
    for (part, friends) in users.chunks(share).zip(friends.chunks(share)) {
        procs.push(Worker::spawn(&a, rate_per_user, &peers, part, friends).await?);
    }
    let ready_within = Duration::from_secs(60) + Duration::from_millis(20 * share as u64);
    for w in &mut procs {
        match w.next_line(ready_within).await?.as_str() {
            "ready" => {}
            other => bail!("a worker said {other:?} instead of ready"),
        }
    }
    eprintln!("sending for {} s…", a.duration_secs);
    let pids = a.server_pid.clone();
    let cpu_before = super::cpu_time(&pids)?;
    let start = Instant::now();
    for w in &mut procs {
        w.stdin.write_all(b"go\n").await?;
        w.stdin.flush().await?;
    }
    let stored = Arc::new(AtomicU64::new(0));
    let bar = super::progress(
        "stored",
        Duration::from_secs(a.duration_secs),
        stored.clone(),
        a.json,
    );
    let collect_within = Duration::from_secs(a.duration_secs + 60);
    let results: Vec<worker::WorkerResult> = stream::iter(procs)
        .map(|w| w.result(stored.clone(), collect_within))
        .buffer_unordered(workers as usize)
        .try_collect()
        .await?;
    // The window ends when every worker has its last push: the CPU it took
    // to store and deliver what was sent, and nothing of the check below.
    let cpu = super::cpu_time(&pids)?.saturating_sub(cpu_before);
    stop(bar).await;
    // Rates are over the sending window, not the wait for the last pushes.
    let elapsed = Duration::from_secs(a.duration_secs).min(start.elapsed());

    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let cpu_us_per_msg =
        (!pids.is_empty() && sent > 0).then(|| cpu.as_secs_f64() * 1e6 / sent as f64);
    let pushes: u64 = results.iter().map(|r| r.pushes).sum();
    let mut reply = new_histogram();
    let mut push = new_histogram();
    let mut errors = Errors::default();
    for r in &results {
        reply.add(worker::histogram(&r.reply_latency))?;
        push.add(worker::histogram(&r.push_latency))?;
        errors.merge(&r.errors);
    }
    // The truth is each user's list: every stored message exactly once,
    // whatever happened to the pushes.
    eprintln!("reading every list back…");
    let (lost, duplicated, broken_lists) = check_lists(&users, &results).await?;
    let rate = |n: u64| n as f64 / secs(elapsed);
    if a.json {
        let report = serde_json::json!({
            "scenario": "direct",
            "users": a.users,
            "workers": workers,
            "friends_per_user": friends_per_user,
            "duration_secs": secs(elapsed),
            "target_per_sec": a.rate,
            "stored": sent,
            "stored_per_sec": rate(sent),
            "delivered_pushes": pushes,
            "delivered_per_sec": rate(pushes),
            "pushes_missed": sent.saturating_sub(pushes),
            "lost": lost,
            "duplicated": duplicated,
            "lists_in_order": broken_lists == 0,
            "send_to_reply": percentiles_json(&reply),
            "send_to_push": percentiles_json(&push),
            "errors": errors.json(),
            "server_cpu_secs": (!pids.is_empty()).then_some(cpu.as_secs_f64()),
            "server_cpu_us_per_msg": cpu_us_per_msg,
        });
        println!("{report}");
    } else {
        let target = match a.rate {
            0 => "as fast as answered".to_owned(),
            r => format!("{r} /s"),
        };
        println!("users:             {} in {workers} worker(s)", a.users);
        match a.friends {
            0 => println!("sending to:        any user"),
            _ => println!("sending to:        {friends_per_user:.1} friends each"),
        }
        println!("duration:          {:.2} s", secs(elapsed));
        println!("target:            {target}");
        println!("stored:            {sent} ({:.0} /s)", rate(sent));
        println!("delivered (push):  {pushes} ({:.0} /s)", rate(pushes));
        println!(
            "pushes missed:     {} (caught up by SYNC)",
            sent.saturating_sub(pushes)
        );
        println!("lost:              {lost}");
        println!("duplicated:        {duplicated}");
        println!("send -> reply:     {}", percentiles(&reply));
        println!("send -> push:      {}", percentiles(&push));
        println!("errors:            {errors}");
        if let Some(us) = cpu_us_per_msg {
            println!(
                "server CPU:        {:.2} s, {us:.0} µs per stored message",
                cpu.as_secs_f64()
            );
        }
        println!(
            "lists exactly once, in order: {}",
            if broken_lists == 0 { "yes" } else { "NO" }
        );
    }
    if broken_lists > 0 || lost > 0 || duplicated > 0 || !errors.is_empty() {
        anyhow::bail!(
            "{lost} lost, {duplicated} duplicated, {broken_lists} lists with gaps, errors {errors}"
        );
    }
    Ok(())
}

/// A running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn spawn(
        a: &DirectArgs,
        rate_per_user: f64,
        peers: &[u64],
        users: &[(Creds, SocketAddr)],
        friends: &[Vec<u64>],
    ) -> anyhow::Result<Worker> {
        let exe = std::env::current_exe().context("finding the tern executable")?;
        let mut child = Command::new(exe)
            .args(["bench", "direct-worker"])
            .args(super::transport_args())
            .args(["--duration-secs", &a.duration_secs.to_string()])
            .args(["--rate-per-user", &rate_per_user.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a worker process")?;
        let mut stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut text = String::from("peers");
        for id in peers {
            text.push_str(&format!(" {id}"));
        }
        text.push('\n');
        for ((c, addr), friends) in users.iter().zip(friends) {
            let friends: Vec<String> = friends.iter().map(u64::to_string).collect();
            text.push_str(&format!(
                "{} {} {} {addr} {}\n",
                c.user_id,
                c.device_id,
                c.token,
                friends.join(",")
            ));
        }
        text.push_str("end\n");
        stdin.write_all(text.as_bytes()).await?;
        stdin.flush().await?;
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    async fn next_line(&mut self, within: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(within, self.stdout.next_line())
            .await
            .with_context(|| format!("no word from a worker within {within:?}"))??
            .context("a worker exited early (its error is above)")
    }

    /// Follows the worker's progress into `stored` until its result.
    async fn result(
        mut self,
        stored: Arc<AtomicU64>,
        within: Duration,
    ) -> anyhow::Result<worker::WorkerResult> {
        let deadline = Instant::now() + within;
        let mut seen = 0;
        loop {
            let line = self
                .next_line(deadline.saturating_duration_since(Instant::now()))
                .await?;
            if let Some(n) = line.strip_prefix("progress ") {
                let n: u64 = n.parse().context("bad progress line")?;
                stored.fetch_add(n.saturating_sub(seen), Ordering::Relaxed);
                seen = n.max(seen);
            } else if let Some(json) = line.strip_prefix("result ") {
                let result = serde_json::from_str(json).context("bad worker result")?;
                let status = self.child.wait().await?;
                if !status.success() {
                    bail!("a worker exited with {status}");
                }
                return Ok(result);
            } else {
                bail!("a worker said {line:?}");
            }
        }
    }
}

/// Reads every user's list and compares it with what was stored for it:
/// (messages missing, messages present more than once, lists whose seqs
/// are not 1..n).
async fn check_lists(
    users: &[(Creds, SocketAddr)],
    results: &[worker::WorkerResult],
) -> anyhow::Result<(u64, u64, u64)> {
    let mut expected: HashMap<u64, Vec<&str>> = HashMap::new();
    for r in results {
        for (to, cmid) in &r.stored_to {
            expected.entry(*to).or_default().push(cmid);
        }
    }
    let expected = &expected;
    let per_user: Vec<(u64, u64, u64)> = stream::iter(users)
        .map(|(c, addr)| async move {
            let (client, _events) = crate::bench::connect(*addr).await?;
            client.sign_in(c.user_id, c.device_id, &c.token).await?;
            let list = client.sync_all(0).await?;
            let broken = list.iter().enumerate().any(|(i, m)| m.seq != i as u64 + 1);
            let mut seen: HashMap<&str, u64> = HashMap::new();
            for m in list.iter().filter(|m| m.sender_id != c.user_id) {
                *seen.entry(m.client_msg_id.as_str()).or_default() += 1;
            }
            let (mut lost, mut duplicated) = (0, 0);
            for cmid in expected.get(&c.user_id).into_iter().flatten() {
                match seen.get(cmid) {
                    None => lost += 1,
                    Some(&n) => duplicated += n - 1,
                }
            }
            anyhow::Ok((lost, duplicated, u64::from(broken)))
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    Ok(per_user
        .iter()
        .fold((0, 0, 0), |t, u| (t.0 + u.0, t.1 + u.1, t.2 + u.2)))
}
