//! `tern bench conversations`: what a chat app's first screen costs.
//!
//! One reader owns `--conversations` group conversations (groups it
//! creates, each one event in its list) and one one-to-one conversation of
//! `--history` messages from a sender with several devices. Then it times:
//! - a CONV_LIST page at the top of the listing, and every page to the end;
//! - a CONV_HISTORY page at the newest and at the oldest end of the long
//!   conversation (the same cost wherever it starts);
//! - MARK_READ from several devices at once, each a real change (a group
//!   conversation read to its end for the first time: one CONV_READ entry).

use std::time::Instant;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};

use tern_client::proto::{ConvType, GroupCreateRequest, SendRequest};
use tern_client::Client;

use super::report::register_devices;
use super::{
    loopback, new_histogram, percentiles, percentiles_json, run_prefix, secs, Creds, SETUP_TIMEOUT,
};

#[derive(Debug, Args)]
pub struct ConversationsArgs {
    /// Server client address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Group conversations of the reader.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub conversations: u32,
    /// Messages in the reader's one long one-to-one conversation.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub history: u32,
    /// Conversations or entries per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub page: u32,
    /// Timed requests at each position.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeats: u32,
    /// Devices of the reader marking conversations read at once (and of the
    /// sender, filling the long conversation).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub devices: u32,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

async fn signed_in(addr: std::net::SocketAddr, c: &Creds) -> anyhow::Result<Client> {
    let (client, _events) = crate::bench::connect(addr).await?;
    client.sign_in(c.user_id, c.device_id, &c.token).await?;
    Ok(client)
}

pub async fn run(a: ConversationsArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let creds =
        register_devices(addr, &run_prefix("c"), 2, a.devices, SETUP_TIMEOUT, a.json).await?;
    let reader_id = creds[0].user_id;
    let (readers, senders): (Vec<Creds>, Vec<Creds>) =
        creds.into_iter().partition(|c| c.user_id == reader_id);
    let sender_id = senders[0].user_id;
    let parallel = a.devices as usize;

    eprintln!("creating {} group conversations…", a.conversations);
    let t = Instant::now();
    let per_device = a.conversations.div_ceil(a.devices);
    stream::iter(readers.iter().enumerate())
        .map(|(d, c)| async move {
            let client = signed_in(addr, c).await?;
            let first = d as u32 * per_device;
            for i in first..(first + per_device).min(a.conversations) {
                let req = GroupCreateRequest {
                    name: format!("g{i}"),
                    ..Default::default()
                };
                client.group_create(&req).await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!("  created in {:.1} s", secs(t.elapsed()));

    eprintln!("filling one conversation with {} messages…", a.history);
    let t = Instant::now();
    let per_device = a.history.div_ceil(a.devices);
    stream::iter(senders.iter().enumerate())
        .map(|(d, c)| async move {
            let client = signed_in(addr, c).await?;
            let first = d as u32 * per_device;
            for i in first..(first + per_device).min(a.history) {
                let req = SendRequest {
                    conv_type: ConvType::User as i32,
                    conv_id: reader_id,
                    content_type: 1,
                    content: format!("m{i}").into_bytes().into(),
                    client_msg_id: format!("h{i}"),
                    mentions: vec![],
                };
                client.send(&req).await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!("  filled in {:.1} s", secs(t.elapsed()));

    let reader = signed_in(addr, &readers[0]).await?;
    // The listing: its first page, timed; then every page, once.
    let mut first_page = new_histogram();
    for _ in 0..a.repeats {
        let t = Instant::now();
        let page = reader.conv_list(None, a.page).await?;
        first_page.record(t.elapsed().as_micros().max(1) as u64)?;
        if page.conversations.len() != a.page.min(a.conversations + 1) as usize {
            anyhow::bail!("a first page of {} conversations", page.conversations.len());
        }
    }
    let t = Instant::now();
    let (mut listed, mut after) = (0u64, None);
    loop {
        let page = reader.conv_list(after.as_ref(), a.page).await?;
        listed += page.conversations.len() as u64;
        after = page.conversations.last().cloned();
        if !page.has_more {
            break;
        }
    }
    let whole_list = t.elapsed();
    let expected = u64::from(a.conversations) + 1;
    if listed != expected {
        anyhow::bail!("the listing held {listed} conversations, expected {expected}");
    }

    // History: the newest page, and the page that ends at the conversation's
    // first entry, found by walking down once (untimed) in the largest pages.
    let mut before = 0;
    let oldest_cursor = loop {
        let page = reader
            .conv_history(ConvType::User, sender_id, before, 200)
            .await?;
        if page.next_before_seq == 0 {
            // Descending: the last `page` entries are the oldest; the cursor
            // is the entry just above them (or this page's own cursor).
            let above = page.messages.len().checked_sub(a.page as usize + 1);
            break above.map_or(before, |i| page.messages[i].seq);
        }
        before = page.next_before_seq;
    };
    let mut history = serde_json::Map::new();
    let mut history_text = Vec::new();
    for (name, before) in [("newest", 0), ("oldest", oldest_cursor)] {
        let mut h = new_histogram();
        for _ in 0..a.repeats {
            let t = Instant::now();
            let page = reader
                .conv_history(ConvType::User, sender_id, before, a.page)
                .await?;
            h.record(t.elapsed().as_micros().max(1) as u64)?;
            if page.messages.is_empty() {
                anyhow::bail!("an empty history page before {before}");
            }
        }
        history_text.push(format!("history page at {name:<6}: {}", percentiles(&h)));
        history.insert(name.to_owned(), percentiles_json(&h));
    }

    // MARK_READ: each device reads its share of the group conversations to the end.
    let mut to_mark = Vec::new();
    let mut after = None;
    loop {
        let page = reader.conv_list(after.as_ref(), 200).await?;
        to_mark.extend(
            page.conversations
                .iter()
                .filter(|c| c.conv_type == ConvType::Group as i32)
                .map(|c| c.conv_id),
        );
        after = page.conversations.last().cloned();
        if !page.has_more {
            break;
        }
    }
    let clients: Vec<Client> = stream::iter(&readers)
        .then(|c| signed_in(addr, c))
        .try_collect()
        .await?;
    let t = Instant::now();
    let share = to_mark.len().div_ceil(clients.len()).max(1);
    let marks: Vec<hdrhistogram::Histogram<u64>> =
        stream::iter(clients.iter().zip(to_mark.chunks(share)))
            .map(|(client, groups)| async move {
                let mut h = new_histogram();
                for &g in groups {
                    let t = Instant::now();
                    let c = client.mark_read(ConvType::Group, g, 0).await?;
                    h.record(t.elapsed().as_micros().max(1) as u64)?;
                    if c.read_seq != c.last_seq {
                        anyhow::bail!("group {g} read to {} of {}", c.read_seq, c.last_seq);
                    }
                }
                anyhow::Ok(h)
            })
            .buffer_unordered(parallel)
            .try_collect()
            .await?;
    let marking = t.elapsed();
    let mut mark = new_histogram();
    for h in &marks {
        mark.add(h)?;
    }
    let marks_per_sec = mark.len() as f64 / secs(marking).max(1e-9);

    if a.json {
        let report = serde_json::json!({
            "scenario": "conversations",
            "conversations": expected,
            "history_length": a.history,
            "page": a.page,
            "first_list_page": percentiles_json(&first_page),
            "whole_list_secs": secs(whole_list),
            "history_page": history,
            "mark_read": percentiles_json(&mark),
            "mark_read_per_sec": marks_per_sec,
        });
        println!("{report}");
    } else {
        println!("conversations:          {expected} (pages of {})", a.page);
        println!("first CONV_LIST page:   {}", percentiles(&first_page));
        println!("every page, once:       {:.2} s", secs(whole_list));
        for line in history_text {
            println!("{line}");
        }
        println!("MARK_READ:              {}", percentiles(&mark));
        println!(
            "MARK_READ per second:   {marks_per_sec:.0} ({} devices at once)",
            clients.len()
        );
    }
    Ok(())
}
