//! `tern bench direct`: one-to-one messages under load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;

use tern_client::proto::{ConvType, SendRequest};
use tern_client::{Client, Event};

use super::{
    loopback, new_histogram, percentiles, percentiles_json, register_users, run_prefix, secs,
};

#[derive(Debug, Args)]
pub struct DirectArgs {
    /// Client address(es) of the server, comma separated (loopback only);
    /// users are spread over them, e.g. the connect nodes of a cluster.
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Users, one connection each; each sends to random others.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=5000))]
    pub users: u32,
    /// How long to send.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_secs: u64,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What one user's connection saw.
struct UserResult {
    sent: u64,
    /// client_msg_ids stored (answered OK) per receiver.
    stored_to: Vec<(u64, String)>,
    errors: HashMap<String, u64>,
    reply_latency: Histogram<u64>,
    push_latency: Histogram<u64>,
    pushes: u64,
}

pub async fn run(a: DirectArgs) -> anyhow::Result<()> {
    let addrs = a
        .addr
        .split(',')
        .map(|s| loopback(s.trim()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let addr = addrs[0];
    eprintln!("registering {} users…", a.users);
    let creds: Vec<_> = register_users(addr, &run_prefix("d"), a.users, 1, 16)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let ids: Arc<Vec<u64>> = Arc::new(creds.iter().map(|c| c.user_id).collect());
    let epoch = Instant::now();
    let send_until = epoch + Duration::from_secs(a.duration_secs) + Duration::from_secs(1);

    let mut sessions = Vec::new();
    let mut checkers = Vec::new();
    for (i, c) in creds.iter().enumerate() {
        let (client, events) = Client::connect(addrs[i % addrs.len()]).await?;
        client.sign_in(c.user_id, c.device_id, &c.token).await?;
        sessions.push((c.user_id, Arc::new(client), events));
        checkers.push((c.clone(), addrs[i % addrs.len()]));
    }
    eprintln!("sending for {} s…", a.duration_secs);
    let start = Instant::now();
    let send_until = send_until.min(start + Duration::from_secs(a.duration_secs));
    let stored = Arc::new(AtomicU64::new(0));
    let bar = super::progress("stored", send_until - start, stored.clone(), a.json);
    let mut tasks = Vec::new();
    for (me, client, events) in sessions {
        let ids = ids.clone();
        tasks.push(tokio::spawn(user(
            me,
            client,
            events,
            ids,
            epoch,
            send_until,
            stored.clone(),
        )));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    bar.abort();
    // Rates are over the sending window, not the wait for the last pushes.
    let elapsed = send_until - start;

    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let pushes: u64 = results.iter().map(|r| r.pushes).sum();
    let mut reply = new_histogram();
    let mut push = new_histogram();
    let mut errors: HashMap<String, u64> = HashMap::new();
    for r in &results {
        reply.add(&r.reply_latency)?;
        push.add(&r.push_latency)?;
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    // The truth is each user's list: every stored message exactly once,
    // whatever happened to the pushes.
    let (lost, duplicated, broken_lists) = check_lists(&checkers, &results).await?;
    let rate = |n: u64| n as f64 / secs(elapsed);
    if a.json {
        let report = serde_json::json!({
            "scenario": "direct",
            "users": a.users,
            "duration_secs": secs(elapsed),
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
            "errors": errors,
        });
        println!("{report}");
    } else {
        println!("users:             {}", a.users);
        println!("duration:          {:.2} s", secs(elapsed));
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
        println!("errors:            {errors:?}");
        println!(
            "lists exactly once, in order: {}",
            if broken_lists == 0 { "yes" } else { "NO" }
        );
    }
    if broken_lists > 0 || lost > 0 || duplicated > 0 || !errors.is_empty() {
        anyhow::bail!(
            "{lost} lost, {duplicated} duplicated, {broken_lists} lists with gaps, errors {errors:?}"
        );
    }
    Ok(())
}

/// Reads every user's list and compares it with what was stored for it:
/// (messages missing, messages present more than once, lists whose seqs
/// are not 1..n).
async fn check_lists(
    users: &[(super::Creds, std::net::SocketAddr)],
    results: &[UserResult],
) -> anyhow::Result<(u64, u64, u64)> {
    let mut expected: HashMap<u64, Vec<&str>> = HashMap::new();
    for r in results {
        for (to, cmid) in &r.stored_to {
            expected.entry(*to).or_default().push(cmid);
        }
    }
    let (mut lost, mut duplicated, mut broken) = (0, 0, 0);
    for (c, addr) in users {
        let (client, _events) = Client::connect(*addr).await?;
        client.sign_in(c.user_id, c.device_id, &c.token).await?;
        let list = client.sync_all(0).await?;
        if list.iter().enumerate().any(|(i, m)| m.seq != i as u64 + 1) {
            broken += 1;
        }
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for m in list.iter().filter(|m| m.sender_id != c.user_id) {
            *seen.entry(m.client_msg_id.as_str()).or_default() += 1;
        }
        for cmid in expected.get(&c.user_id).into_iter().flatten() {
            match seen.get(cmid) {
                None => lost += 1,
                Some(&n) if n > 1 => duplicated += n - 1,
                Some(_) => {}
            }
        }
    }
    Ok((lost, duplicated, broken))
}

async fn user(
    me: u64,
    client: Arc<Client>,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    ids: Arc<Vec<u64>>,
    epoch: Instant,
    until: Instant,
    stored: Arc<AtomicU64>,
) -> anyhow::Result<UserResult> {
    // Pushes: latency from the send time the sender wrote into the content.
    let receiver = tokio::spawn(async move {
        let mut latency = new_histogram();
        let mut pushes = 0;
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Push(m) => {
                    pushes += 1;
                    if let Ok(raw) = <[u8; 8]>::try_from(&m.content[..8.min(m.content.len())]) {
                        let sent_us = u64::from_be_bytes(raw);
                        let now_us = epoch.elapsed().as_micros() as u64;
                        latency.saturating_record(now_us.saturating_sub(sent_us).max(1));
                    }
                }
                Event::Closed => break,
                _ => {}
            }
        }
        (latency, pushes)
    });

    let mut result = UserResult {
        sent: 0,
        errors: HashMap::new(),
        reply_latency: new_histogram(),
        push_latency: new_histogram(),
        pushes: 0,
        stored_to: Vec::new(),
    };
    let mut n = 0u64;
    while Instant::now() < until {
        let to = loop {
            let to = ids[rand::thread_rng().gen_range(0..ids.len())];
            if to != me {
                break to;
            }
        };
        let t = Instant::now();
        let mut content = (epoch.elapsed().as_micros() as u64).to_be_bytes().to_vec();
        content.extend_from_slice(b" bench message");
        let req = SendRequest {
            conv_type: ConvType::User as i32,
            conv_id: to,
            content_type: 1,
            content: Bytes::from(content),
            client_msg_id: format!("{me}-{n}"),
            mentions: vec![],
        };
        n += 1;
        match client.send(&req).await {
            Ok(_) => {
                result.sent += 1;
                stored.fetch_add(1, Ordering::Relaxed);
                result.stored_to.push((to, req.client_msg_id.clone()));
                result
                    .reply_latency
                    .saturating_record(t.elapsed().as_micros() as u64);
            }
            Err(e) => {
                let key = e
                    .code()
                    .map_or_else(|| e.to_string(), |c| c.name().to_owned());
                *result.errors.entry(key).or_default() += 1;
            }
        }
    }
    // Give in-flight pushes time to land, then close and collect.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(client);
    let (latency, pushes) = receiver.await?;
    result.push_latency = latency;
    result.pushes = pushes;
    Ok(result)
}
