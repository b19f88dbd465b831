//! `tern bench direct`: one-to-one messages under load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;

use tern_client::proto::{ConvType, SendRequest};
use tern_client::{Client, Event};

use super::{loopback, new_histogram, percentiles, register_users, run_prefix, secs};

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
}

/// What one user's connection saw.
struct UserResult {
    sent: u64,
    errors: HashMap<String, u64>,
    reply_latency: Histogram<u64>,
    push_latency: Histogram<u64>,
    /// Seqs of the user's list seen by this device: own sends (replies) and pushes.
    seqs: Vec<u64>,
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
    for (i, c) in creds.iter().enumerate() {
        let (client, events) = Client::connect(addrs[i % addrs.len()]).await?;
        client.sign_in(c.user_id, c.device_id, &c.token).await?;
        sessions.push((c.user_id, Arc::new(client), events));
    }
    eprintln!("sending for {} s…", a.duration_secs);
    let start = Instant::now();
    let send_until = send_until.min(start + Duration::from_secs(a.duration_secs));
    let mut tasks = Vec::new();
    for (me, client, events) in sessions {
        let ids = ids.clone();
        tasks.push(tokio::spawn(user(
            me, client, events, ids, epoch, send_until,
        )));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    // Rates are over the sending window, not the wait for the last pushes.
    let elapsed = send_until - start;

    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let pushes: u64 = results.iter().map(|r| r.pushes).sum();
    let mut reply = new_histogram();
    let mut push = new_histogram();
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut broken_lists = 0;
    for r in &results {
        reply.add(&r.reply_latency)?;
        push.add(&r.push_latency)?;
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
        let mut seqs = r.seqs.clone();
        seqs.sort_unstable();
        if seqs.iter().enumerate().any(|(i, &s)| s != i as u64 + 1) {
            broken_lists += 1;
        }
    }
    println!("users:             {}", a.users);
    println!("duration:          {:.2} s", secs(elapsed));
    println!(
        "stored:            {sent} ({:.0} /s)",
        sent as f64 / secs(elapsed)
    );
    println!(
        "delivered (push):  {pushes} ({:.0} /s)",
        pushes as f64 / secs(elapsed)
    );
    println!("lost pushes:       {}", sent.saturating_sub(pushes));
    println!("send -> reply:     {}", percentiles(&reply));
    println!("send -> push:      {}", percentiles(&push));
    println!("errors:            {errors:?}");
    println!(
        "lists exactly once, in order: {}",
        if broken_lists == 0 { "yes" } else { "NO" }
    );
    if broken_lists > 0 || !errors.is_empty() {
        anyhow::bail!("{broken_lists} lists with gaps or duplicates, errors {errors:?}");
    }
    Ok(())
}

async fn user(
    me: u64,
    client: Arc<Client>,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    ids: Arc<Vec<u64>>,
    epoch: Instant,
    until: Instant,
) -> anyhow::Result<UserResult> {
    // Pushes: latency from the send time the sender wrote into the content.
    let receiver = tokio::spawn(async move {
        let mut latency = new_histogram();
        let mut seqs = Vec::new();
        let mut pushes = 0;
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Push(m) => {
                    pushes += 1;
                    seqs.push(m.seq);
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
        (latency, seqs, pushes)
    });

    let mut result = UserResult {
        sent: 0,
        errors: HashMap::new(),
        reply_latency: new_histogram(),
        push_latency: new_histogram(),
        seqs: Vec::new(),
        pushes: 0,
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
            Ok(reply) => {
                result.sent += 1;
                result.seqs.push(reply.seq);
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
    let (latency, seqs, pushes) = receiver.await?;
    result.push_latency = latency;
    result.seqs.extend(seqs);
    result.pushes = pushes;
    Ok(result)
}
