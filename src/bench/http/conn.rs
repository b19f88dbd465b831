//! The small admin API client the benches use: one keep-alive HTTP/1.1
//! connection over hyper's low-level client (no connection pool needed).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Longest one admin API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; the admin API's answers are small.
const MAX_BODY: usize = 1024 * 1024;

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
