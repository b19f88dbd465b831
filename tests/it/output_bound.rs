//! A client that pipelines SYNCs and never reads costs the server a bounded
//! amount of memory: each connection's pending output is bounded in bytes
//! (`--write-queue-bytes`, 1 MiB by default) and its requests are not read
//! while it is full. Measured on the `tern` binary, by its resident set.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::SinkExt;
use prost::Message as _;

use crate::common::{self, register, Raw, PASSWORD};
use tern_client::proto::{AuthReply, DeviceInfo, LoginRequest, SyncReply, SyncRequest};
use tern_public::{Code, Frame, FrameType};

/// Connections that ask and never read.
const CONNECTIONS: usize = 60;
/// Users they sign in as: 20 devices each, under the 50-devices cap.
const USERS: usize = 3;
/// SYNCs each connection pipelines: more than the 32 a connection may have
/// in flight.
const SYNCS: u64 = 40;
/// Content of each stored message: 4 fit in a page under the 256 KiB frame
/// limit, so every SYNC from the start answers about 240 KB.
const CONTENT: usize = 60_000;
/// Messages in each user's list: two full pages.
const MESSAGES: usize = 8;
/// The default `--write-queue-bytes`.
const BOUND: u64 = 1024 * 1024;
/// Generous room per connection beyond the bound: buffers, what logic
/// allocates to build pages, and the allocator keeping freed memory
/// (about 2 MiB a connection in all is measured with the bound, 14 MiB
/// without it).
const OVERHEAD: u64 = 2 * 1024 * 1024;

/// The server process, killed when the test ends, passed or not.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's resident set in bytes, from /proc.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

/// A new device of `username` on a raw connection that never reads again
/// once signed in.
async fn login_raw(addr: SocketAddr, username: &str) -> Raw {
    let mut raw = Raw::connect(addr).await;
    let login = LoginRequest {
        username: username.into(),
        password: PASSWORD.into(),
        device: Some(DeviceInfo {
            platform: "test".into(),
            ..Default::default()
        }),
        device_id: 0,
    };
    raw.request(FrameType::Login.as_u16(), 1, login).await;
    let reply = raw.reply().await;
    assert_eq!(reply.code, Code::Ok.as_i32(), "login: {}", reply.message);
    AuthReply::decode(reply.payload).expect("AuthReply");
    raw
}

/// Sends `n` SYNCs from the start of the list in one go.
async fn pipeline_syncs(raw: &mut Raw, n: u64) {
    let body = SyncRequest {
        after_seq: 0,
        limit: 500,
    };
    for id in 0..n {
        let req = tern_client::proto::Request {
            request_id: 100 + id,
            payload: body.encode_to_vec().into(),
        };
        let frame = Frame::from_message(FrameType::Sync.as_u16(), &req);
        raw.framed.feed(frame).await.expect("queue a SYNC");
    }
    raw.framed.flush().await.expect("send the SYNCs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_pipeline_syncs_and_never_read_hold_the_server_under_its_output_bound() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("a UTF-8 temp path"),
        "--send-policy",
        "open",
        "--user-sends-per-second",
        "0",
        "--login-attempts-per-user-per-minute",
        "0",
        "--auth-attempts-per-address-per-minute",
        "0",
        // Storing the large messages goes faster than a client may send.
        "--bytes-per-second",
        "0",
    ];
    let (child, addr) = common::procs::spawn_tern(&args, "clients (TCP):");
    let server = Server(child);
    let pid = server.0.id();

    // Users whose lists start with large messages.
    let sender = register(addr, "sender").await;
    let mut owners = Vec::new();
    for u in 0..USERS {
        let owner = register(addr, &format!("big{u}")).await;
        for m in 0..MESSAGES {
            sender
                .client
                .send_text(owner.user_id, &"x".repeat(CONTENT), &format!("{u}-{m}"))
                .await
                .expect("store a large message");
        }
        owners.push(owner);
    }
    let mut raws = Vec::new();
    for i in 0..CONNECTIONS {
        raws.push(login_raw(addr, &format!("big{}", i % USERS)).await);
    }
    // Warm: a reading device syncs its whole list, so the baseline holds
    // what serving SYNCs needs anyway.
    for owner in &owners {
        let list = owner.client.sync_all(0).await.expect("sync");
        assert!(list.len() >= MESSAGES);
    }
    let baseline = rss(pid);

    for raw in &mut raws {
        pipeline_syncs(raw, SYNCS).await;
    }
    // The server answers what it reads until every connection is stopped:
    // its resident set stops growing. Sampled until flat for 1.5 s, within
    // 8 s (the write timeout closes the stuck connections after 15 s).
    let start = Instant::now();
    let mut samples: Vec<u64> = Vec::new();
    let stable = loop {
        samples.push(rss(pid));
        let recent = &samples[samples.len().saturating_sub(8)..];
        let flat = samples.len() >= 8
            && recent.iter().max().unwrap() - recent.iter().min().unwrap() < 2 * 1024 * 1024;
        if flat || start.elapsed() > Duration::from_secs(8) {
            break flat;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let peak = *samples.iter().max().unwrap();
    let limit = baseline + CONNECTIONS as u64 * (BOUND + OVERHEAD);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "output bound: baseline {:.0} MiB, peak {:.0} MiB ({:.2} MiB per connection), limit {:.0} MiB, flat: {stable}",
        mib(baseline),
        mib(peak),
        mib(peak.saturating_sub(baseline)) / CONNECTIONS as f64,
        mib(limit),
    );
    assert!(
        peak <= limit,
        "{CONNECTIONS} non-reading connections took the server from {:.0} MiB to {:.0} MiB; the bound allows {:.0} MiB",
        mib(baseline),
        mib(peak),
        mib(limit)
    );

    // Not a deadlock: a connection that starts reading gets every answer.
    let raw = &mut raws[0];
    for _ in 0..SYNCS {
        let reply = raw.reply().await;
        assert_eq!(reply.code, Code::Ok.as_i32(), "{}", reply.message);
        let page = SyncReply::decode(reply.payload).expect("SyncReply");
        assert_eq!(page.messages.len(), 4, "a page of about 240 KB");
    }
    drop(server);
}
