//! One user's share of `tern bench direct`: send to random others until a
//! deadline, at a fixed rate or as fast as the server answers, and time
//! the pushes that arrive meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::Rng;
use tokio::sync::mpsc::Receiver;
use tokio::time::MissedTickBehavior;

use tern_client::proto::{ConvType, SendRequest};
use tern_client::{Client, Event};

use crate::bench::report::Errors;
use crate::bench::{new_histogram, unix_micros};

/// How long a user keeps its connection after sending, for the last pushes.
const PUSH_GRACE: Duration = Duration::from_secs(2);

/// What one user sends.
pub struct Send {
    pub me: u64,
    /// Whom to send to, drawn at random (`me` is skipped).
    pub targets: Arc<Vec<u64>>,
    pub until: Instant,
    /// Time between sends; `None` sends the next as soon as one is answered.
    pub interval: Option<Duration>,
    /// Sends answered OK, for the progress display.
    pub stored: Arc<AtomicU64>,
}

/// What one user's connection saw.
pub struct UserResult {
    pub sent: u64,
    /// (receiver, client_msg_id) of every send answered OK.
    pub stored_to: Vec<(u64, String)>,
    pub errors: Errors,
    pub reply_latency: Histogram<u64>,
    pub push_latency: Histogram<u64>,
    pub pushes: u64,
}

pub async fn user(
    s: Send,
    client: Arc<Client>,
    events: Receiver<Event>,
) -> anyhow::Result<UserResult> {
    let receiver = tokio::spawn(count_pushes(events));
    let mut result = UserResult {
        sent: 0,
        errors: Errors::default(),
        reply_latency: new_histogram(),
        push_latency: new_histogram(),
        pushes: 0,
        stored_to: Vec::new(),
    };
    // Users start at random points of the interval so a fixed rate is not
    // one burst per tick.
    let mut tick = s.interval.map(|every| {
        let offset = every.mul_f64(rand::thread_rng().gen::<f64>());
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
        t.set_missed_tick_behavior(MissedTickBehavior::Skip);
        t
    });
    let mut n = 0u64;
    loop {
        if let Some(t) = &mut tick {
            t.tick().await;
        }
        if Instant::now() >= s.until {
            break;
        }
        let to = loop {
            let to = s.targets[rand::thread_rng().gen_range(0..s.targets.len())];
            if to != s.me || s.targets.len() == 1 {
                break to;
            }
        };
        let mut content = unix_micros().to_be_bytes().to_vec();
        content.extend_from_slice(b" bench message");
        let req = SendRequest {
            conv_type: ConvType::User as i32,
            conv_id: to,
            content_type: tern_client::TEXT,
            content: Bytes::from(content),
            client_msg_id: format!("{}-{n}", s.me),
            mentions: vec![],
        };
        n += 1;
        let t = Instant::now();
        match client.send(&req).await {
            Ok(_) => {
                result.sent += 1;
                s.stored.fetch_add(1, Ordering::Relaxed);
                result.stored_to.push((to, req.client_msg_id));
                result
                    .reply_latency
                    .saturating_record(t.elapsed().as_micros() as u64);
            }
            Err(e) => result.errors.client(&e),
        }
    }
    tokio::time::sleep(PUSH_GRACE).await;
    drop(client);
    let (latency, pushes) = receiver.await?;
    result.push_latency = latency;
    result.pushes = pushes;
    Ok(result)
}

/// Counts PUSH events and times each from the send time its sender wrote
/// into the content, until the connection closes.
async fn count_pushes(mut events: Receiver<Event>) -> (Histogram<u64>, u64) {
    let mut latency = new_histogram();
    let mut pushes = 0;
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Push(m) => {
                pushes += 1;
                if let Ok(raw) = <[u8; 8]>::try_from(&m.content[..8.min(m.content.len())]) {
                    let sent_us = u64::from_be_bytes(raw);
                    latency.saturating_record(unix_micros().saturating_sub(sent_us).max(1));
                }
            }
            Event::Closed => break,
            _ => {}
        }
    }
    (latency, pushes)
}
