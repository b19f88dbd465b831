//! Offline push under load (issue 18, "Measure"): how many notifications
//! one standalone node sends to the local APNs stand-in per second, and
//! what push costs the SEND path, push on against push off. Benchmarks,
//! not checks: every test is `#[ignore]`d, so CI does not run them. Run
//! them alone, in release, to see the figures:
//!
//! ```text
//! cargo test --release --test it bench_push -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each run starts a fresh `tern` process (this build's binary, SQLite in
//! a new data directory, every budget off), so its CPU time, read from
//! /proc/PID/stat, is the server's alone: the stand-in and the clients run
//! in this process, on the same 2 cores. The machine is shared and noisy,
//! so each figure is a median of several runs, and the two setups compared
//! alternate run by run. Every load is bounded in count and in time, on
//! loopback.

mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tern_client::{Client, PushTarget};
use tern_testkit::push::ApnsStandIn;

use crate::common::*;
use server::Tern;

/// Users whose one device is offline with an APNs token.
const RECIPIENTS: usize = 200;
/// Users sending, each with one SEND in flight.
const SENDERS: usize = 50;
/// Messages per run, spread evenly over the recipients: one notification
/// each. Enough for a second or more of sending without push, so that the
/// CPU time (counted in 10 ms ticks) and the rate are not the noise.
const MESSAGES: usize = 20_000;
/// Runs of the notification rate.
const RUNS: usize = 3;
/// Runs of each setup, push off and on, in the comparison.
const PAIRS: usize = 5;
/// Registrations in flight while setting up (argon2 runs on a small pool).
const REGISTERING: usize = 8;
/// A run's sending stops after this, whatever is left.
const SEND_LIMIT: Duration = Duration::from_secs(60);
/// The stand-in is awaited this many notifications at a time; each wait
/// fails the run after 10 s, so a run's notifications are bounded too.
const STEP: usize = 1_000;

/// A run's users: the senders signed in, each recipient's one device
/// offline with an APNs token.
struct Users {
    senders: Vec<Arc<Client>>,
    /// Kept so the senders' connections stay as they are.
    _events: Vec<tokio::sync::mpsc::Receiver<tern_client::Event>>,
    recipients: Vec<u64>,
}

async fn users(t: &Tern) -> Users {
    let addr = t.addr;
    let recipients: Vec<u64> = futures::stream::iter(0..RECIPIENTS)
        .map(|i| async move {
            let d = register(addr, &format!("rcpt{i}")).await;
            let token = format!("{:064x}", i + 1);
            let target = PushTarget::Apns {
                token,
                topic: String::new(),
                sandbox: false,
            };
            d.client.set_push_token(target).await.expect("a push token");
            d.user_id
        })
        .buffered(REGISTERING)
        .collect()
        .await;
    let senders: Vec<Device> = futures::stream::iter(0..SENDERS)
        .map(|i| async move { register(addr, &format!("sender{i}")).await })
        .buffered(REGISTERING)
        .collect()
        .await;
    // Every recipient's device offline before the first message: only the
    // senders are online.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, stats, _) = http::call(t.http, "GET", "/api/v1/stats", None).await;
        if stats["online_connections"].as_u64() == Some(SENDERS as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "still online: {stats}");
        // Presence changes as connections close: poll it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (senders, events) = senders.into_iter().map(|d| (d.client, d.events)).unzip();
    Users {
        senders,
        _events: events,
        recipients,
    }
}

/// What a run's sending did.
struct Sent {
    stored: usize,
    /// From the first SEND to the last reply.
    secs: f64,
    /// The server's CPU over that window.
    cpu: Duration,
    /// When it started and ended, and the server's CPU time then.
    started: (Instant, Duration),
    ended: (Instant, Duration),
}

/// Every sender sends its share of [`MESSAGES`], one at a time, each to
/// the next recipient in turn; fails on any error.
async fn send_all(t: &Tern, users: &Users) -> Sent {
    let per_sender = MESSAGES / SENDERS;
    let recipients = Arc::new(users.recipients.clone());
    let started = (Instant::now(), t.cpu());
    let deadline = started.0 + SEND_LIMIT;
    let mut sends = tokio::task::JoinSet::new();
    for (i, client) in users.senders.iter().enumerate() {
        let (client, recipients) = (client.clone(), recipients.clone());
        sends.spawn(async move {
            let mut stored = 0;
            for j in 0..per_sender {
                if Instant::now() >= deadline {
                    break;
                }
                let to = recipients[(i * per_sender + j) % recipients.len()];
                let id = format!("{i}-{j}");
                match client.send_text(to, "hello", &id).await {
                    Ok(_) => stored += 1,
                    Err(e) => panic!("send {id} failed: {e}"),
                }
            }
            stored
        });
    }
    let mut stored = 0;
    while let Some(n) = sends.join_next().await {
        stored += n.expect("a sender");
    }
    let ended = (Instant::now(), t.cpu());
    assert_eq!(stored, per_sender * SENDERS, "sending ran out of time");
    Sent {
        stored,
        secs: (ended.0 - started.0).as_secs_f64(),
        cpu: ended.1 - started.1,
        started,
        ended,
    }
}

/// When the stand-in accepted its first and its `n`th notification, and
/// the server's CPU time then.
struct Notified {
    first: (Instant, Duration),
    last: (Instant, Duration),
}

async fn watch(apns: &ApnsStandIn, t: &Tern, n: usize) -> Notified {
    apns.wait_accepted(1).await;
    let first = (Instant::now(), t.cpu());
    let mut k = 0;
    while k < n {
        k = (k + STEP).min(n);
        apns.wait_accepted(k).await;
    }
    let last = (Instant::now(), t.cpu());
    let got = apns.accepted();
    let distinct: std::collections::HashSet<&str> = got
        .iter()
        .map(|r| r.headers["apns-collapse-id"].as_str())
        .collect();
    assert_eq!(
        (got.len(), distinct.len()),
        (n, n),
        "one notification per message"
    );
    Notified { first, last }
}

/// One run: a fresh server, with push to a fresh stand-in or without
/// push; the same users (the recipients' tokens set either way) and
/// messages.
struct Run {
    sent: Sent,
    notified: Option<Notified>,
    /// Notifications accepted when the last SEND was answered.
    accepted_by_send_end: usize,
}

async fn run(push: bool) -> Run {
    // Started either way, so that this process does the same in both.
    let apns = ApnsStandIn::start().await;
    let t = Tern::start(push.then_some(&apns)).await;
    let users = users(&t).await;
    if !push {
        let sent = send_all(&t, &users).await;
        return Run {
            sent,
            notified: None,
            accepted_by_send_end: 0,
        };
    }
    let sending = async {
        let sent = send_all(&t, &users).await;
        (sent, apns.accepted().len())
    };
    let ((sent, accepted_by_send_end), notified) =
        tokio::join!(sending, watch(&apns, &t, MESSAGES));
    Run {
        sent,
        notified: Some(notified),
        accepted_by_send_end,
    }
}

// === figures ===

fn us_per(cpu: Duration, n: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / n as f64
}

/// Notifications per second (first to last accepted), the server's CPU
/// per notification over that window and over the whole run (sending
/// included), and, once sending is over, the rate and CPU of the backlog
/// alone.
struct PushFigures {
    per_sec: f64,
    cpu_us: f64,
    cpu_us_whole: f64,
    drain: Option<(f64, f64)>,
    /// The sending: seconds, and notifications accepted by its end.
    send_secs: f64,
    accepted_by_send_end: usize,
}

impl PushFigures {
    fn of(r: &Run) -> PushFigures {
        let n = r.notified.as_ref().expect("a run with push");
        let (intervals, window) = (MESSAGES - 1, n.last.0 - n.first.0);
        let backlog = MESSAGES - r.accepted_by_send_end;
        let drain_secs = (n.last.0 - r.sent.ended.0).as_secs_f64();
        // Under a tenth of the run left: too few to time on their own.
        let drain = (backlog >= MESSAGES / 10).then(|| {
            let cpu = n.last.1 - r.sent.ended.1;
            (backlog as f64 / drain_secs, us_per(cpu, backlog))
        });
        PushFigures {
            per_sec: intervals as f64 / window.as_secs_f64(),
            cpu_us: us_per(n.last.1 - n.first.1, intervals),
            cpu_us_whole: us_per(n.last.1 - r.sent.started.1, MESSAGES),
            drain,
            send_secs: r.sent.secs,
            accepted_by_send_end: r.accepted_by_send_end,
        }
    }

    fn print(&self, label: &str) {
        let drain = match self.drain {
            Some((rate, cpu)) => format!("{rate:.0} /s at {cpu:.0} µs each"),
            None => "none left".into(),
        };
        println!(
            "{label}: {:.0} notifications/s and {:.0} µs of tern CPU each, first to last accepted \
             (SENDs included; {:.0} µs from the first SEND); sends took {:.2} s ({} notified \
             by then); the backlog after the sends: {drain}",
            self.per_sec, self.cpu_us, self.cpu_us_whole, self.send_secs, self.accepted_by_send_end
        );
    }
}

/// The median and the spread (min, max) of `v`.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

fn print_median(what: &str, v: Vec<f64>) -> f64 {
    let (median, min, max) = stats(v);
    println!("  {what}: median {median:.1} (spread {min:.1}–{max:.1})");
    median
}

fn setup_line() -> String {
    format!(
        "{RECIPIENTS} recipients with one offline APNs device each, {SENDERS} senders \
         with one SEND in flight each, {MESSAGES} one-to-one messages per run"
    )
}

/// Notifications per second one node sends to the APNs stand-in, and the
/// node's CPU per notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored in release"]
async fn notifications_per_second_per_node() {
    println!(
        "\nbench_push: notifications/s to the APNs stand-in ({})",
        setup_line()
    );
    let mut figures = Vec::new();
    for i in 1..=RUNS {
        let f = PushFigures::of(&run(true).await);
        f.print(&format!("run {i}"));
        figures.push(f);
    }
    println!("medians of {RUNS} runs:");
    print_median(
        "notifications/s",
        figures.iter().map(|f| f.per_sec).collect(),
    );
    print_median(
        "tern CPU µs per notification",
        figures.iter().map(|f| f.cpu_us).collect(),
    );
    print_median(
        "tern CPU µs per message and its notification, whole run",
        figures.iter().map(|f| f.cpu_us_whole).collect(),
    );
}

/// Stored messages per second and the server's CPU per message, push on
/// against push off, runs alternating (off, on, off, on, ...).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored in release"]
async fn send_throughput_push_on_against_off() {
    println!(
        "\nbench_push: SEND with push on against off ({})",
        setup_line()
    );
    // (stored/s, CPU µs per message over the sending, CPU µs per message
    // until its notification is sent) per setup.
    let mut off = Vec::new();
    let mut on = Vec::new();
    for i in 1..=PAIRS {
        for push in [false, true] {
            let r = run(push).await;
            let s = &r.sent;
            let rate = s.stored as f64 / s.secs;
            let cpu = us_per(s.cpu, s.stored);
            let until_pushed = match &r.notified {
                Some(n) => us_per(n.last.1 - s.started.1, s.stored),
                None => cpu,
            };
            let label = if push { "on " } else { "off" };
            println!(
                "run {i} push {label}: {} stored in {:.2} s = {rate:.0} /s, {cpu:.1} µs of tern CPU per message ({until_pushed:.1} µs until every notification is sent)",
                s.stored, s.secs
            );
            let into = if push { &mut on } else { &mut off };
            into.push((rate, cpu, until_pushed));
        }
    }
    println!("medians of {PAIRS} runs each:");
    let column = |v: &[(f64, f64, f64)], c: usize| -> Vec<f64> {
        v.iter().map(|r| [r.0, r.1, r.2][c]).collect()
    };
    for (c, what) in [
        "stored/s",
        "tern CPU µs per message, sending",
        "tern CPU µs per message, until notified",
    ]
    .iter()
    .enumerate()
    {
        let a = print_median(&format!("push off, {what}"), column(&off, c));
        let b = print_median(&format!("push on,  {what}"), column(&on, c));
        // Each on run against the off run just before it, too.
        let pairs: Vec<f64> = column(&on, c)
            .iter()
            .zip(column(&off, c))
            .map(|(b, a)| b / a)
            .collect();
        let (median, min, max) = stats(pairs);
        println!(
            "  on / off: {:.2} (of the medians); run by run: median {median:.2}, spread {min:.2}–{max:.2}",
            b / a
        );
    }
}
