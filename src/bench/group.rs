//! `tern bench group`: the cost of one message to groups of several sizes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use tern_client::proto::{ConvType, GroupCreateRequest, GroupInfo, SendRequest};
use tern_client::Client;
use tern_public::FrameType;

use super::{loopback, new_histogram, percentiles, register_users, run_prefix, secs};

#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Server client address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Group sizes to measure, members including the sender.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,2000")]
    pub sizes: Vec<u32>,
    /// Messages sent to each group, one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub messages: u32,
}

pub async fn run(a: GroupArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.addr)?;
    let largest = a.sizes.iter().copied().max().unwrap_or(0).clamp(2, 100_000);
    eprintln!("registering {largest} users…");
    let t = Instant::now();
    let users: Vec<_> = register_users(addr, &run_prefix("g"), largest, 1, 16)
        .await?
        .into_iter()
        .flatten()
        .collect();
    eprintln!("  done in {:.1} s", secs(t.elapsed()));
    let sender = &users[0];
    let (client, _events) = Client::connect(addr).await?;
    client
        .sign_in(sender.user_id, sender.device_id, &sender.token)
        .await?;

    println!("size  messages  rows/message  median ms  (send -> reply)");
    for &size in &a.sizes {
        let size = size.clamp(2, largest);
        let members: Vec<u64> = users[1..size as usize].iter().map(|c| c.user_id).collect();
        let req = GroupCreateRequest {
            name: format!("bench {size}"),
            member_ids: members,
            ..Default::default()
        };
        let group: GroupInfo = client.request(FrameType::GroupCreate, &req).await?;
        let mut h = new_histogram();
        for n in 0..a.messages {
            let send = SendRequest {
                conv_type: ConvType::Group as i32,
                conv_id: group.group_id,
                content_type: 1,
                content: Bytes::from_static(b"bench group message"),
                client_msg_id: format!("{size}-{n}"),
                mentions: vec![],
            };
            let t = Instant::now();
            client.send(&send).await?;
            h.saturating_record(t.elapsed().as_micros() as u64);
        }
        // One messages row and one list row per member.
        let rows = 1 + size;
        let median = h.value_at_quantile(0.5) as f64 / 1000.0;
        println!(
            "{size:>4}  {:>8}  {rows:>12}  {median:>9.2}  {}",
            a.messages,
            percentiles(&h)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
