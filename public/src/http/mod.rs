//! The serving loop of tern's HTTP ports: a logic node's admin API and
//! health endpoints, and a connect node's `/metrics`. HTTP/1.1 over hyper,
//! with the bounds hyper leaves to whoever accepts the connections:
//!
//! - a request's headers must arrive whole within the header timeout,
//!   counted from the connection's start or from the first byte of a later
//!   request on it;
//! - a kept-alive connection that starts no new request within the idle
//!   timeout is closed, and so is one that moves no byte for that long
//!   while a request is in flight or its response is written (a client
//!   that stops reading holds nothing past it);
//! - at most `max_connections` are open: the loop stops accepting until one
//!   closes, so further clients wait in the kernel's listen backlog and are
//!   served in turn rather than refused;
//! - once `shutdown` resolves the listener closes, idle connections close
//!   at once, requests in flight get the shutdown grace to finish, and what
//!   is still open then is dropped, so the process always exits.
//!
//! hyper's own `header_read_timeout` is left off: in hyper 1.x it also runs
//! from the end of one response to the headers of the next request, so it
//! cannot tell a slow request (short bound) from an idle keep-alive
//! connection (longer bound). [`conn::Clock`] keeps both.

mod conn;
mod metrics;
#[cfg(test)]
mod tests;

pub use metrics::HttpMetrics;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::{debug, warn};

use conn::{Clock, Tracked, Watched};

/// The bounds of one HTTP port.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time a request's headers have to arrive whole.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request, or move
    /// no byte while a request is in flight.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time requests in flight get to finish after `shutdown`.
    pub shutdown_grace: Duration,
    /// Where the port counts its connections and the bounds they hit.
    pub metrics: HttpMetrics,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1000,
            shutdown_grace: Duration::from_secs(10),
            metrics: HttpMetrics::default(),
        }
    }
}

/// Pause after an accept error that is not about one connection (such as
/// running out of file descriptors), so the loop does not spin on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Least time between two warnings that the connection limit is reached.
const LIMIT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `service` on `listener` within the bounds of `cfg` until
/// `shutdown` resolves, then shuts down within `cfg.shutdown_grace`.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    cfg: HttpConfig,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let stop = CancellationToken::new();
    let mut conns = JoinSet::new();
    let mut warned_at: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        while let Some(done) = conns.try_join_next() {
            log_panic(done);
        }
        // Taken before accepting: at the limit nothing more is accepted
        // until a connection closes.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                cfg.metrics.limit_reached();
                if warned_at.is_none_or(|t| t.elapsed() >= LIMIT_WARN_EVERY) {
                    warn!(
                        max = cfg.max_connections,
                        "HTTP connection limit reached; new connections wait until one closes"
                    );
                    warned_at = Some(Instant::now());
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                conns.spawn(serve_conn(
                    stream,
                    service.clone(),
                    cfg.clone(),
                    stop.clone(),
                    permit,
                ));
            }
            Err(e) if is_per_connection(&e) => debug!(error = %e, "HTTP accept"),
            Err(e) => {
                warn!(error = %e, "HTTP accept failed; retrying");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(cfg.shutdown_grace, async {
        while let Some(done) = conns.join_next().await {
            log_panic(done);
        }
    })
    .await;
    if drained.is_err() {
        cfg.metrics
            .closed_by_n("shutdown_grace", conns.len() as u64);
        warn!(
            open = conns.len(),
            grace = ?cfg.shutdown_grace,
            "HTTP connections still open after the shutdown grace; dropping them"
        );
        conns.shutdown().await;
    }
}

/// Serves one connection until it ends, a bound closes it, or the server
/// stops; the permit is its place under the connection limit.
async fn serve_conn<S, B>(
    stream: TcpStream,
    service: S,
    cfg: HttpConfig,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _open = cfg.metrics.opened();
    // Small responses go out at once rather than behind Nagle's delay.
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new(cfg.header_timeout, cfg.idle_timeout));
    let io = TokioIo::new(Watched::new(stream, clock.clone()));
    let svc_clock = clock.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let done = svc_clock.request_started();
        let mut service = service.clone();
        async move {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
            let res = service.call(req).await?;
            Ok::<_, Infallible>(res.map(|body| Tracked::new(body, done)))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            why = clock.expired() => {
                debug!(why = why.label(), "HTTP connection closed");
                cfg.metrics.closed_by(why.label());
                return;
            }
            () = stop.cancelled(), if !stopping => {
                // Closes it now if idle, else after the response in flight.
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

/// Accept errors that concern one connection only: the next accept works.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            warn!(error = %e, "an HTTP connection task panicked");
        }
    }
}
