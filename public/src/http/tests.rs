//! The bounds of the serving loop, over real sockets on 127.0.0.1 with
//! short timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::*;

/// Long enough that nothing in a passing test comes near it.
const WITHIN: Duration = Duration::from_secs(5);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n";

/// Answers "ok"; `/slow` first says it started and waits to be released.
#[derive(Clone, Default)]
struct App {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl Service<Request<Incoming>> for App {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            if req.uri().path() == "/slow" {
                app.started.notify_one();
                app.release.notified().await;
            }
            Ok(Response::new("ok".to_owned()))
        })
    }
}

struct Server {
    addr: SocketAddr,
    app: App,
    stop: CancellationToken,
    task: JoinHandle<()>,
    metrics: HttpMetrics,
}

async fn start(cfg: HttpConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = App::default();
    let stop = CancellationToken::new();
    let metrics = cfg.metrics.clone();
    let task = tokio::spawn(serve(
        listener,
        app.clone(),
        cfg,
        stop.clone().cancelled_owned(),
    ));
    Server {
        addr,
        app,
        stop,
        task,
        metrics,
    }
}

fn cfg(header: u64, idle: u64) -> HttpConfig {
    HttpConfig {
        header_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        ..HttpConfig::default()
    }
}

/// Reads one "ok" response.
async fn response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Waits (at most [`WITHIN`]) for the server to close `s`; returns how long it took.
async fn closed(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WITHIN, s.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after {WITHIN:?}"),
            Ok(Ok(0) | Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn half_sent_headers_are_closed_after_the_header_timeout() {
    let server = start(cfg(300, 60_000)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n").await.unwrap();
    let took = closed(&mut s).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert_eq!(server.metrics.closed_count("header_timeout"), 1);
}

#[tokio::test]
async fn headers_dribbled_byte_by_byte_are_bounded_as_a_whole() {
    let server = start(cfg(300, 60_000)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // One byte every 50 ms would send the whole request in 1.3 s; no byte
    // resets the timer, so the connection closes first, unanswered.
    for b in b"GET / HTTP/1.1\r\nhost: t\r\n\r\n" {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = Vec::new();
    let read = tokio::time::timeout(WITHIN, s.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the connection is still open after {WITHIN:?}"
    );
    assert!(
        got.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // The idle timeout longer than the header timeout: a request starting
    // on a kept-alive connection is bounded by the header timeout, the
    // wait before it by the idle timeout.
    let server = start(cfg(200, 600)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    response(&mut s).await;
    let took = closed(&mut s).await;
    assert!(took >= Duration::from_millis(550), "closed after {took:?}");
    assert_eq!(server.metrics.closed_count("idle_timeout"), 1);
    assert_eq!(server.metrics.closed_count("header_timeout"), 0);

    // Used before the idle timeout, it serves the next request.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        s.write_all(REQUEST).await.unwrap();
        response(&mut s).await;
    }
}

#[tokio::test]
async fn a_request_that_moves_no_byte_for_the_idle_timeout_is_closed() {
    let server = start(cfg(60_000, 300)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    server.app.started.notified().await;
    let took = closed(&mut s).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert_eq!(server.metrics.closed_count("stalled"), 1);
}

#[tokio::test]
async fn past_the_connection_limit_a_connection_waits_until_one_closes() {
    let server = start(HttpConfig {
        max_connections: 2,
        ..HttpConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        response(&mut s).await;
        held.push(s);
    }
    // The kernel completes the handshake; the server does not accept it.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the limit: {early:?}");
    drop(held.pop());
    let answer = tokio::time::timeout(WITHIN, response(&mut third)).await;
    assert!(answer.is_ok(), "not served once a connection closed");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let server = start(cfg(60_000, 60_000)).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(REQUEST).await.unwrap();
    response(&mut idle).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    server.app.started.notified().await;

    server.stop.cancel();
    closed(&mut idle).await;
    server.app.release.notify_one();
    response(&mut busy).await;
    closed(&mut busy).await;
    tokio::time::timeout(WITHIN, server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_drops_what_is_still_open_after_the_grace() {
    let server = start(HttpConfig {
        shutdown_grace: Duration::from_millis(300),
        ..cfg(60_000, 60_000)
    })
    .await;
    // A half-sent request and a request whose handler never ends.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(REQUEST).await.unwrap();
    response(&mut half).await;
    half.write_all(b"GET / HTTP/1.1\r\nhos").await.unwrap();
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    server.app.started.notified().await;

    let t = Instant::now();
    server.stop.cancel();
    tokio::time::timeout(WITHIN, server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    closed(&mut half).await;
    closed(&mut busy).await;
    assert!(server.metrics.closed_count("shutdown_grace") >= 1);
}
