//! `tern bench sync`: catching up a long offline list. Fills one user's
//! list with N messages while its device is offline, then times a SYNC page
//! at the start, middle and end of the list (a fixed page must cost the same
//! wherever it starts) and the whole catch-up, checking every seq once.

use std::time::{Duration, Instant};

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};

use tern_client::proto::{ConvType, SendRequest};

use super::report::register_devices;
use super::{
    loopback, new_histogram, percentiles, percentiles_json, run_prefix, secs, SETUP_TIMEOUT,
};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Server client address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Messages in the offline list.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub messages: u32,
    /// Messages per SYNC page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page: u32,
    /// Timed SYNCs at each position.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeats: u32,
    /// Senders filling the list at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub senders: u32,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: SyncArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let users = register_devices(
        addr,
        &run_prefix("s"),
        a.senders + 1,
        1,
        SETUP_TIMEOUT,
        a.json,
    )
    .await?;
    let (reader, senders) = users.split_first().expect("at least two users");
    eprintln!("filling a list with {} messages…", a.messages);
    let t = Instant::now();
    let per_sender = a.messages.div_ceil(a.senders);
    stream::iter(senders.iter().enumerate())
        .map(|(s, c)| async move {
            let (client, _events) = crate::bench::connect(addr).await?;
            client.sign_in(c.user_id, c.device_id, &c.token).await?;
            let first = s as u32 * per_sender;
            for i in first..(first + per_sender).min(a.messages) {
                let req = SendRequest {
                    conv_type: ConvType::User as i32,
                    conv_id: reader.user_id,
                    content_type: 1,
                    content: format!("m{i}").into_bytes().into(),
                    client_msg_id: format!("s{i}"),
                    mentions: vec![],
                };
                client.send(&req).await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(a.senders as usize)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!("  filled in {:.1} s", secs(t.elapsed()));

    let (client, _events) = crate::bench::connect(addr).await?;
    let session = client
        .sign_in(reader.user_id, reader.device_id, &reader.token)
        .await?;
    let max = session.session.max_seq;
    if !a.json {
        println!("list length:       {max}");
        println!("page:              {}", a.page);
    }
    if max < u64::from(a.messages) {
        anyhow::bail!(
            "the list holds {max} entries, expected at least {}",
            a.messages
        );
    }
    let mut pages = serde_json::Map::new();
    for (name, after) in [
        ("start", 0),
        ("middle", max / 2),
        ("end", max.saturating_sub(u64::from(a.page))),
    ] {
        let mut h = new_histogram();
        for _ in 0..a.repeats {
            let t = Instant::now();
            let page = client.sync(after, a.page).await?;
            h.record(t.elapsed().as_micros().max(1) as u64)?;
            if page.messages.first().map(|m| m.seq) != Some(after + 1) {
                anyhow::bail!("a page after {after} did not start at {}", after + 1);
            }
        }
        pages.insert(name.to_owned(), percentiles_json(&h));
        if !a.json {
            println!("one page at {name:<6}: {}", percentiles(&h));
        }
    }
    let t = Instant::now();
    let all = tokio::time::timeout(Duration::from_secs(600), client.sync_all(0)).await??;
    let took = t.elapsed();
    let in_order = all.iter().enumerate().all(|(i, m)| m.seq == i as u64 + 1);
    let complete = in_order && all.len() as u64 == max;
    if a.json {
        let report = serde_json::json!({
            "scenario": "sync",
            "list_length": max,
            "page": a.page,
            "one_page": pages,
            "catch_up_secs": secs(took),
            "catch_up_per_sec": all.len() as f64 / secs(took),
            "every_seq_once_in_order": complete,
        });
        println!("{report}");
    } else {
        println!(
            "whole catch-up:    {} messages in {:.2} s ({:.0} /s)",
            all.len(),
            secs(took),
            all.len() as f64 / secs(took)
        );
        println!(
            "every seq once, in order: {}",
            if complete { "yes" } else { "NO" }
        );
    }
    if !in_order || all.len() as u64 != max {
        anyhow::bail!(
            "catch-up returned {} of {max} entries, or out of order",
            all.len()
        );
    }
    Ok(())
}
