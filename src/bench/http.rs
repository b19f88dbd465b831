//! `tern bench http`: requests per second of one admin API route over
//! keep-alive HTTP/1.1 connections. The admin API client itself, which the
//! other benches use too, is in `conn`.

mod conn;

pub(crate) use conn::ApiConn;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use hyper::StatusCode;

use super::report::{stop, Errors};
use super::{loopback, new_histogram, percentiles, percentiles_json, secs};

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
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: HttpArgs) -> anyhow::Result<()> {
    let addr = loopback(&a.http)?;
    if !a.path.starts_with('/') {
        bail!("--path must start with '/', not {:?}", a.path);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..a.connections {
        conns.push(ApiConn::open(addr, &a.admin_token).await?);
    }
    eprintln!(
        "GET {} on {} connections for {} s…",
        a.path, a.connections, a.duration_secs
    );
    let start = Instant::now();
    let length = Duration::from_secs(a.duration_secs);
    let until = start + length;
    let bar = super::progress("requests", length, answered.clone(), a.json);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let path = a.path.clone();
            let (issued, answered) = (issued.clone(), answered.clone());
            tokio::spawn(worker(conn, path, until, issued, answered, a.max_requests))
        })
        .collect();
    let mut latency = new_histogram();
    let mut errors = Errors::default();
    let (mut ok, mut not_ok, mut failed) = (0u64, 0u64, 0u64);
    let (mut first_status, mut first_error) = (None, None);
    for t in tasks {
        let r = t.await?;
        latency.add(&r.latency)?;
        errors.merge(&r.errors);
        ok += r.ok;
        not_ok += r.not_ok;
        first_status = first_status.or(r.first_status);
        if let Some(e) = r.error {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed();
    stop(bar).await;
    let done = ok + not_ok;
    let rate = done as f64 / secs(elapsed);
    if a.json {
        let report = serde_json::json!({
            "scenario": "http",
            "route": format!("GET {}", a.path),
            "connections": a.connections,
            "duration_secs": secs(elapsed),
            "requests": done,
            "requests_per_sec": rate,
            "ok_2xx": ok,
            "non_2xx": not_ok,
            "failed_connections": failed,
            "latency": percentiles_json(&latency),
            "errors": errors.json(),
        });
        println!("{report}");
    } else {
        println!("route:             GET {}", a.path);
        println!("connections:       {}", a.connections);
        println!("duration:          {:.2} s", secs(elapsed));
        println!("requests:          {done} ({rate:.0} /s)");
        println!("2xx:               {ok}");
        match first_status {
            Some(status) => println!("non-2xx:           {not_ok} (first: {status})"),
            None => println!("non-2xx:           0"),
        }
        println!("latency:           {}", percentiles(&latency));
        if failed > 0 {
            println!("failed connections: {failed} (first: {first_error:?})");
        }
        println!("errors:            {errors}");
    }
    if ok == 0 {
        bail!("no 2xx answer (is --admin-token right?); errors {errors}");
    }
    if !errors.is_empty() {
        bail!("{} requests failed: {errors}", errors.total());
    }
    Ok(())
}

/// What one connection did.
struct WorkerResult {
    ok: u64,
    not_ok: u64,
    first_status: Option<StatusCode>,
    latency: hdrhistogram::Histogram<u64>,
    /// Non-2xx answers by status, and the failure that stopped the connection.
    errors: Errors,
    /// Why the connection stopped early.
    error: Option<String>,
}

/// Sends GETs one after another until `until`, or until the workers
/// together issued `max` requests.
async fn worker(
    mut conn: ApiConn,
    path: String,
    until: Instant,
    issued: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    max: u64,
) -> WorkerResult {
    let mut r = WorkerResult {
        ok: 0,
        not_ok: 0,
        first_status: None,
        latency: new_histogram(),
        errors: Errors::default(),
        error: None,
    };
    while Instant::now() < until && issued.fetch_add(1, Ordering::Relaxed) < max {
        let t = Instant::now();
        match conn.get(&path).await {
            Ok((status, _)) => {
                r.latency
                    .saturating_record(t.elapsed().as_micros().max(1) as u64);
                answered.fetch_add(1, Ordering::Relaxed);
                if status.is_success() {
                    r.ok += 1;
                } else {
                    r.not_ok += 1;
                    r.errors.status(status);
                    r.first_status.get_or_insert(status);
                }
            }
            Err(e) => {
                // The connection is unusable after a failed exchange.
                r.errors.add(e.to_string());
                r.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    r
}
