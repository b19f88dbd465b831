//! `tern bench http`: requests per second of one admin API route over
//! keep-alive HTTP/1.1 connections. Also the small admin API client the
//! other benches use (hyper's low-level client; no connection pool needed).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::{loopback, new_histogram, percentiles, secs};

/// Longest one admin API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; the admin API's answers are small.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Server HTTP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub http: String,
    /// Bearer token of the admin API (<data-dir>/admin-token of `tern serve`).
    #[arg(long, env = "TERN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Route to GET, e.g. /api/v1/rooms or /healthz.
    #[arg(long, default_value = "/api/v1/rooms")]
    pub path: String,
    /// Keep-alive connections, each sending its requests one after another.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// How long to send.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_secs: u64,
    /// Stop after this many requests in all, even before the duration ends.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_requests: u64,
}

pub async fn run(a: HttpArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.http)?;
    if !a.path.starts_with('/') {
        bail!("--path must start with '/', not {:?}", a.path);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..a.connections {
        conns.push(ApiConn::open(addr, &a.admin_token).await?);
    }
    eprintln!(
        "GET {} on {} connections for {} s…",
        a.path, a.connections, a.duration_secs
    );
    let start = Instant::now();
    let until = start + Duration::from_secs(a.duration_secs);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let path = a.path.clone();
            let issued = issued.clone();
            tokio::spawn(worker(conn, path, until, issued, a.max_requests))
        })
        .collect();
    let mut latency = new_histogram();
    let (mut ok, mut not_ok, mut failed) = (0u64, 0u64, 0u64);
    let (mut first_status, mut first_error) = (None, None);
    for t in tasks {
        let r = t.await?;
        latency.add(&r.latency)?;
        ok += r.ok;
        not_ok += r.not_ok;
        first_status = first_status.or(r.first_status);
        if let Some(e) = r.error {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed();
    let done = ok + not_ok;
    println!("route:             GET {}", a.path);
    println!("connections:       {}", a.connections);
    println!("duration:          {:.2} s", secs(elapsed));
    println!(
        "requests:          {done} ({:.0} /s)",
        done as f64 / secs(elapsed)
    );
    println!("2xx:               {ok}");
    match first_status {
        Some(status) => println!("non-2xx:           {not_ok} (first: {status})"),
        None => println!("non-2xx:           0"),
    }
    println!("latency:           {}", percentiles(&latency));
    if failed > 0 {
        println!("failed connections: {failed} (first: {first_error:?})");
    }
    if ok == 0 {
        bail!("no 2xx answer (is --admin-token right?)");
    }
    Ok(())
}

/// What one connection did.
struct WorkerResult {
    ok: u64,
    not_ok: u64,
    first_status: Option<StatusCode>,
    latency: hdrhistogram::Histogram<u64>,
    /// Why the connection stopped early.
    error: Option<String>,
}

async fn worker(
    mut conn: ApiConn,
    path: String,
    until: Instant,
    issued: Arc<AtomicU64>,
    max: u64,
) -> WorkerResult {
    let mut r = WorkerResult {
        ok: 0,
        not_ok: 0,
        first_status: None,
        latency: new_histogram(),
        error: None,
    };
    while Instant::now() < until && issued.fetch_add(1, Ordering::Relaxed) < max {
        let t = Instant::now();
        match conn.get(&path).await {
            Ok((status, _)) => {
                r.latency
                    .saturating_record(t.elapsed().as_micros().max(1) as u64);
                if status.is_success() {
                    r.ok += 1;
                } else {
                    r.not_ok += 1;
                    r.first_status.get_or_insert(status);
                }
            }
            Err(e) => {
                r.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    r
}

// === impl ApiConn ===

/// One keep-alive HTTP/1.1 connection to the admin API.
pub(crate) struct ApiConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    auth: String,
    driver: JoinHandle<()>,
}

impl Drop for ApiConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl ApiConn {
    pub(crate) async fn open(addr: SocketAddr, admin_token: &str) -> anyhow::Result<ApiConn> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection future does the I/O; requests go through `sender`.
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(ApiConn {
            sender,
            host: addr.to_string(),
            auth: format!("Bearer {admin_token}"),
            driver,
        })
    }

    pub(crate) async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        self.call(Method::GET, path, None).await
    }

    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        json: String,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.call(Method::POST, path, Some(json)).await
    }

    /// Polls `GET /api/v1/rooms/{room}` until the room has `members` online
    /// or `within` passes (connect nodes report their counts periodically);
    /// returns the last count.
    pub(crate) async fn wait_room_online(
        &mut self,
        room: &str,
        members: u64,
        within: Duration,
    ) -> anyhow::Result<u64> {
        let until = Instant::now() + within;
        let path = format!("/api/v1/rooms/{room}");
        loop {
            let (status, body) = self.get(&path).await?;
            if !status.is_success() {
                bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
            }
            let online = json_u64(&body, "online").context("no \"online\" in the answer")?;
            if online >= members || Instant::now() >= until {
                return Ok(online);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        json: Option<String>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(AUTHORIZATION, &self.auth);
        if json.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(json.unwrap_or_default())))?;
        let call = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| anyhow!("reading the response body: {e}"))?
                .to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, call)
            .await
            .map_err(|_| anyhow!("no answer within {REQUEST_TIMEOUT:?}"))?
    }
}

/// A top-level unsigned number of a JSON object.
fn json_u64(body: &[u8], key: &str) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?[key].as_u64()
}
